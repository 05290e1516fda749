package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/convlstm-go/convlstm-go/server"
)

// doc is one parsed YAML document.
type doc = map[string]any

// load parses every document of a YAML file.
func load(t *testing.T, path string) []doc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []doc
	for {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML document", path)
	}
	return docs
}

// get walks a path of keys and indices, failing the test if it is absent.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok || m[k] == nil {
				t.Fatalf("missing %v (at %q)", path, k)
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				t.Fatalf("missing %v (at [%d])", path, k)
			}
			v = s[k]
		}
	}
	return v
}

func str(t *testing.T, v any, path ...any) string {
	t.Helper()
	return fmt.Sprint(get(t, v, path...))
}

// flag returns a flag's value from a container's args ("" if absent).
func flag(args []any, name string) string {
	for i, a := range args {
		s := fmt.Sprint(a)
		if s == name && i+1 < len(args) {
			return fmt.Sprint(args[i+1])
		}
		if strings.HasPrefix(s, name+"=") {
			return strings.TrimPrefix(s, name+"=")
		}
	}
	return ""
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	p, err := strconv.Atoi(addr[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("address %q has no port", addr)
	}
	return p
}

// checkContainer checks what every serving container must get right:
// the listen ports, the declared ports, the probes and a non-root,
// read-only, unprivileged security context.
func checkContainer(t *testing.T, c any, podSec any, wantPorts map[int]bool) {
	t.Helper()
	args, _ := get(t, c, "args").([]any)
	httpPort, grpcPort := server.DefaultHTTPPort, server.DefaultGRPCPort
	if a := flag(args, "--addr"); a != "" {
		httpPort = portOf(t, a)
	}
	if a := flag(args, "--grpc-addr"); a != "" {
		grpcPort = portOf(t, a)
	}
	if httpPort != server.DefaultHTTPPort || grpcPort != server.DefaultGRPCPort {
		t.Errorf("--addr/--grpc-addr ports %d/%d, want the server's defaults %d/%d", httpPort, grpcPort, server.DefaultHTTPPort, server.DefaultGRPCPort)
	}
	if m := flag(args, "--model"); !strings.Contains(m, "=") {
		t.Errorf("--model %q: want NAME=FILE", m)
	}
	named := map[string]int{}
	for _, p := range get(t, c, "ports").([]any) {
		n := get(t, p, "containerPort").(int)
		if n != httpPort && n != grpcPort {
			t.Errorf("containerPort %d is neither --addr (%d) nor --grpc-addr (%d)", n, httpPort, grpcPort)
		}
		if name, ok := p.(map[string]any)["name"]; ok {
			named[fmt.Sprint(name)] = n
		}
		delete(wantPorts, n)
	}
	if len(wantPorts) > 0 {
		t.Errorf("ports %v not declared", wantPorts)
	}
	for probe, path := range map[string]string{"readinessProbe": "/v2/health/ready", "livenessProbe": "/v2/health/live"} {
		if got := str(t, c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path %s, want %s", probe, got, path)
		}
		port := get(t, c, probe, "httpGet", "port")
		if s, ok := port.(string); ok {
			port = named[s]
		}
		if port != httpPort {
			t.Errorf("%s port %v, want the REST port %d", probe, port, httpPort)
		}
	}
	sec := get(t, c, "securityContext").(map[string]any)
	merged := map[string]any{}
	if ps, ok := podSec.(map[string]any); ok {
		for k, v := range ps {
			merged[k] = v
		}
	}
	for k, v := range sec {
		merged[k] = v
	}
	if merged["runAsNonRoot"] != true {
		t.Error("runAsNonRoot is not true")
	}
	if u, ok := merged["runAsUser"].(int); !ok || u == 0 {
		t.Errorf("runAsUser %v: want a non-zero uid", merged["runAsUser"])
	}
	if sec["allowPrivilegeEscalation"] != false || sec["readOnlyRootFilesystem"] != true {
		t.Errorf("securityContext %v: want allowPrivilegeEscalation false and readOnlyRootFilesystem true", sec)
	}
	if drop := fmt.Sprint(get(t, sec, "capabilities", "drop")); drop != "[ALL]" {
		t.Errorf("capabilities.drop %s, want [ALL]", drop)
	}
	// --threads should match the CPU the container gets.
	if th := flag(args, "--threads"); th != "" {
		if cpu := str(t, c, "resources", "limits", "cpu"); cpu != th {
			t.Errorf("--threads %s but the CPU limit is %s", th, cpu)
		}
	}
}

func TestDeployment(t *testing.T) {
	dep := load(t, "kubernetes/deployment.yaml")[0]
	svc := load(t, "kubernetes/service.yaml")[0]
	hpa := load(t, "kubernetes/hpa.yaml")[0]
	dr := load(t, "kubernetes/destinationrule.yaml")[0]
	if str(t, dep, "kind") != "Deployment" || str(t, svc, "kind") != "Service" || str(t, hpa, "kind") != "HorizontalPodAutoscaler" || str(t, dr, "kind") != "DestinationRule" {
		t.Fatal("manifests of the wrong kinds")
	}
	pod := get(t, dep, "spec", "template", "spec")
	c := get(t, pod, "containers", 0)
	checkContainer(t, c, get(t, pod, "securityContext"), map[int]bool{server.DefaultHTTPPort: true, server.DefaultGRPCPort: true})
	args := get(t, c, "args").([]any)
	// The grace period outlasts the drain.
	grace := time.Duration(get(t, pod, "terminationGracePeriodSeconds").(int)) * time.Second
	drain, err := time.ParseDuration(flag(args, "--shutdown-timeout"))
	if err != nil || grace <= drain {
		t.Errorf("terminationGracePeriodSeconds %v must exceed --shutdown-timeout %v", grace, drain)
	}
	// The model file is on a read-only mount.
	model := flag(args, "--model")
	file := model[strings.IndexByte(model, '=')+1:]
	mount := get(t, c, "volumeMounts", 0)
	if !strings.HasPrefix(file, str(t, mount, "mountPath")+"/") || get(t, mount, "readOnly") != true {
		t.Errorf("--model file %s is not under the read-only mount %v", file, mount)
	}
	// Service: selects the pods, targets their named ports.
	sel := get(t, svc, "spec", "selector").(map[string]any)
	labels := get(t, dep, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("service selector %s=%v does not match the pod labels %v", k, v, labels)
		}
	}
	named := map[string]int{}
	for _, p := range get(t, c, "ports").([]any) {
		named[str(t, p, "name")] = get(t, p, "containerPort").(int)
	}
	for _, p := range get(t, svc, "spec", "ports").([]any) {
		if _, ok := named[str(t, p, "targetPort")]; !ok {
			t.Errorf("service port %v targets %v, not a container port name %v", str(t, p, "name"), str(t, p, "targetPort"), named)
		}
		if str(t, p, "name") == "grpc" && !strings.Contains(str(t, p, "appProtocol"), "h2c") && !strings.Contains(str(t, p, "appProtocol"), "grpc") {
			t.Error("the gRPC service port does not say it is HTTP/2 (appProtocol)")
		}
	}
	// HPA scales this Deployment.
	if str(t, hpa, "spec", "scaleTargetRef", "name") != str(t, dep, "metadata", "name") || str(t, hpa, "spec", "scaleTargetRef", "kind") != "Deployment" {
		t.Error("the HPA does not target the Deployment")
	}
	if min := get(t, hpa, "spec", "minReplicas").(int); min < 2 {
		t.Errorf("HPA minReplicas %d: want at least 2 for availability", min)
	}
	// DestinationRule: the Service, hashed on the header clients send.
	if str(t, dr, "spec", "host") != str(t, svc, "metadata", "name") {
		t.Errorf("DestinationRule host %s is not the Service %s", str(t, dr, "spec", "host"), str(t, svc, "metadata", "name"))
	}
	if h := str(t, dr, "spec", "trafficPolicy", "loadBalancer", "consistentHash", "httpHeaderName"); !strings.EqualFold(h, server.SequenceHeader) {
		t.Errorf("DestinationRule hashes on %q; clients send %q", h, server.SequenceHeader)
	}
}

func TestKServe(t *testing.T) {
	rt := load(t, "kserve/servingruntime.yaml")[0]
	if str(t, rt, "apiVersion") != "serving.kserve.io/v1alpha1" || str(t, rt, "kind") != "ServingRuntime" {
		t.Fatal("not a ServingRuntime")
	}
	protos := fmt.Sprint(get(t, rt, "spec", "protocolVersions"))
	if !strings.Contains(protos, "v2") || !strings.Contains(protos, "grpc-v2") {
		t.Errorf("protocolVersions %s: want v2 and grpc-v2", protos)
	}
	c := get(t, rt, "spec", "containers", 0)
	if str(t, c, "name") != "kserve-container" {
		t.Error("KServe expects the container named kserve-container")
	}
	checkContainer(t, c, nil, map[int]bool{server.DefaultHTTPPort: true})
	if m := flag(get(t, c, "args").([]any), "--model"); m != "{{.Name}}=/mnt/models" {
		t.Errorf("--model %q: want the InferenceService's name and KServe's /mnt/models", m)
	}
	formats := map[string]bool{}
	for _, f := range get(t, rt, "spec", "supportedModelFormats").([]any) {
		formats[str(t, f, "name")] = true
	}
	for _, file := range []string{"kserve/inferenceservice.yaml", "kserve/inferenceservice-grpc.yaml"} {
		isvc := load(t, file)[0]
		if str(t, isvc, "apiVersion") != "serving.kserve.io/v1beta1" || str(t, isvc, "kind") != "InferenceService" {
			t.Fatalf("%s: not an InferenceService", file)
		}
		m := get(t, isvc, "spec", "predictor", "model")
		if str(t, m, "runtime") != str(t, rt, "metadata", "name") {
			t.Errorf("%s: runtime %s, want %s", file, str(t, m, "runtime"), str(t, rt, "metadata", "name"))
		}
		if !formats[str(t, m, "modelFormat", "name")] {
			t.Errorf("%s: modelFormat %s is not one the runtime supports", file, str(t, m, "modelFormat", "name"))
		}
		pv := str(t, m, "protocolVersion")
		if !strings.Contains(protos, pv) || !strings.HasPrefix(strings.TrimPrefix(pv, "grpc-"), "v2") {
			t.Errorf("%s: protocolVersion %s", file, pv)
		}
		if pv == "grpc-v2" {
			p := get(t, m, "ports", 0)
			if get(t, p, "containerPort") != server.DefaultGRPCPort || str(t, p, "name") != "h2c" {
				t.Errorf("%s: gRPC needs port h2c %d, got %v", file, server.DefaultGRPCPort, p)
			}
			if str(t, isvc, "metadata", "annotations", "serving.kserve.io/deploymentMode") != "RawDeployment" {
				t.Errorf("%s: sequence affinity needs RawDeployment", file)
			}
		}
		if !strings.Contains(str(t, m, "storageUri"), "://") {
			t.Errorf("%s: storageUri %s", file, str(t, m, "storageUri"))
		}
	}
}

// TestDockerfile reads the Dockerfile: a static (no cgo) build of the
// serve command, a distroless static base, a numeric non-root user, the
// server's ports exposed and serve as the entrypoint.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var froms, runs []string
	var user, expose string
	var entry []string
	sc := bufio.NewScanner(f)
	var line string
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			line += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		line += l
		fields := strings.Fields(line)
		line = ""
		if len(fields) == 0 {
			continue
		}
		rest := strings.TrimSpace(strings.TrimPrefix(strings.Join(fields, " "), fields[0]))
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			froms = append(froms, fields[1])
			user = "" // per stage
		case "RUN":
			runs = append(runs, rest)
		case "USER":
			user = rest
		case "EXPOSE":
			expose = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &entry); err != nil {
				t.Fatalf("ENTRYPOINT is not exec form: %v", err)
			}
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[len(froms)-1], "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %v: want a distroless static base", froms)
	}
	build := strings.Join(runs, "\n")
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "./cmd/convlstm-run") {
		t.Errorf("the build is not a static build of ./cmd/convlstm-run:\n%s", build)
	}
	uid := strings.Split(user, ":")[0]
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root uid", user)
	}
	for _, p := range []int{server.DefaultHTTPPort, server.DefaultGRPCPort} {
		if !strings.Contains(" "+expose+" ", fmt.Sprintf(" %d ", p)) {
			t.Errorf("EXPOSE %q lacks %d", expose, p)
		}
	}
	if len(entry) < 2 || filepath.Base(entry[0]) != "convlstm-run" || entry[1] != "serve" {
		t.Errorf("ENTRYPOINT %v: want convlstm-run serve", entry)
	}
	args := make([]any, len(entry))
	for i, e := range entry {
		args[i] = e
	}
	if portOf(t, flag(args, "--addr")) != server.DefaultHTTPPort || portOf(t, flag(args, "--grpc-addr")) != server.DefaultGRPCPort {
		t.Errorf("ENTRYPOINT %v listens elsewhere than EXPOSE", entry)
	}
}

// TestEveryManifestParses: no YAML file here is left untested by kind.
func TestEveryManifestParses(t *testing.T) {
	known := map[string]bool{"Deployment": true, "Service": true, "HorizontalPodAutoscaler": true, "DestinationRule": true, "ServingRuntime": true, "InferenceService": true}
	files, _ := filepath.Glob("*/*.yaml")
	if len(files) < 7 {
		t.Fatalf("found %d manifests: %v", len(files), files)
	}
	for _, f := range files {
		for _, d := range load(t, f) {
			if !known[str(t, d, "kind")] {
				t.Errorf("%s: kind %s is not checked by these tests", f, str(t, d, "kind"))
			}
			if str(t, d, "metadata", "name") == "" {
				t.Errorf("%s: no metadata.name", f)
			}
		}
	}
}
