package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/export"
)

// writeRandomModel writes a small ConvLSTM with random weights as
// safetensors and as an ONNX graph.
func writeRandomModel(t *testing.T, dir string) (st, onnx string) {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	m := &convlstm.Model{Gates: convlstm.GatesIFOG}
	in := 1
	for _, h := range []int{3, 2} {
		l := convlstm.Layer{LayerConfig: convlstm.LayerConfig{InputDim: in, HiddenDim: h, KernelH: 3, KernelW: 3, HasBias: true}}
		l.Weight = make([]float32, 4*h*(in+h)*9)
		for i := range l.Weight {
			l.Weight[i] = float32(rng.NormFloat64() * 0.2)
		}
		l.Bias = make([]float32, 4*h)
		m.Layers = append(m.Layers, l)
		in = h
	}
	st, onnx = filepath.Join(dir, "m.safetensors"), filepath.Join(dir, "m.onnx")
	var b bytes.Buffer
	if err := export.Safetensors(m, &b, export.SafetensorsOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(st, b.Bytes(), 0o644)
	b.Reset()
	if err := export.ONNX(m, &b, export.ONNXOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(onnx, b.Bytes(), 0o644)
	return st, onnx
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe runs `serve` with two models (safetensors and ONNX) on
// loopback, infers on both, then stops it as a signal would and checks it
// returns nil (exit status 0) with JSON logs.
func TestServe(t *testing.T) {
	st, onnx := writeRandomModel(t, t.TempDir())
	// A directory holding one model file, as KServe's /mnt/models.
	dir := filepath.Join(t.TempDir(), "models")
	os.Mkdir(dir, 0o755)
	os.Rename(st, filepath.Join(dir, "m.safetensors"))
	os.WriteFile(filepath.Join(dir, ".keep"), nil, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := serveFlags{models: []string{"native=" + dir, "graph=" + onnx}, addr: "127.0.0.1:0", grpcAddr: "127.0.0.1:0",
		threads: 1, maxBody: "1MiB", maxRequestMemory: "64MiB", maxStateMemory: "64MiB", maxBatch: 4, maxSequences: 8, sequenceIdle: time.Minute,
		maxQueue: 16, requestTimeout: 10 * time.Second, shutdownTimeout: 5 * time.Second, logFormat: "json", logLevel: "info"}
	addr := make(chan string, 1)
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, &logs, f, func(h, g string) { addr <- h }) }()
	url := "http://" + <-addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 10 s; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	body := `{"inputs":[{"name":"input","shape":[1,2,1,3,3],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,9,8,7,6,5,4,3,2,1]}],"outputs":[{"name":"output"}]}`
	var outs [2][]float32
	for i, model := range []string{"native", "graph"} {
		resp, err := http.Post(url+"/v2/models/"+model+"/infer", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var a struct {
			Outputs []struct {
				Shape []int     `json:"shape"`
				Data  []float32 `json:"data"`
			} `json:"outputs"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &a) != nil || len(a.Outputs) != 1 {
			t.Fatalf("%s: %d %s", model, resp.StatusCode, b)
		}
		outs[i] = a.Outputs[0].Data
	}
	// The ONNX graph and the native model are the same ConvLSTM.
	for i := range outs[0] {
		d := outs[0][i] - outs[1][i]
		if d < 0 {
			d = -d
		}
		if ref := outs[0][i]; float64(d) > 1e-5+1e-5*float64(max(ref, -ref)) {
			t.Fatalf("output %d: native %v, ONNX %v", i, outs[0][i], outs[1][i])
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after the signal, want nil (exit 0)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop 10 s after the signal")
	}
	for _, want := range []string{`"msg":"model loaded","model":"native"`, `"msg":"model loaded","model":"graph"`, `"msg":"shut down"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
}

func TestServeErrors(t *testing.T) {
	st, _ := writeRandomModel(t, t.TempDir())
	base := serveFlags{addr: "127.0.0.1:0", grpcAddr: "127.0.0.1:0", maxBody: "1MiB", maxRequestMemory: "1GiB", maxStateMemory: "1GiB", maxBatch: 1, maxSequences: 1, sequenceIdle: time.Second, maxQueue: 1, requestTimeout: time.Second, shutdownTimeout: time.Second, logFormat: "text", logLevel: "info"}
	for _, c := range []struct {
		models []string
		edit   func(*serveFlags)
		msg    string
	}{
		{nil, nil, "at least one --model"},
		{[]string{"nofile"}, nil, "NAME=FILE"},
		{[]string{"a=" + st, "a=" + st}, nil, "used twice"},
		{[]string{"a/b=" + st}, nil, "model name"},
		{[]string{"a=/nonexistent/x.pt"}, nil, "--model a"},
		{[]string{"a=" + filepath.Join(filepath.Dir(st), "m.onnx") + ",prefix=enc1"}, nil, "do not apply"},
		{[]string{"a=" + filepath.Dir(st)}, nil, "exactly one"},
		{[]string{"a=" + st}, func(f *serveFlags) { f.maxBody = "lots" }, "--max-body"},
		{[]string{"a=" + st}, func(f *serveFlags) { f.logFormat = "xml" }, "--log-format"},
		{[]string{"a=" + st}, func(f *serveFlags) { f.addr, f.grpcAddr = "", "" }, "nothing to serve"},
		{[]string{"a=" + st}, func(f *serveFlags) { f.addr = "256.0.0.1:1" }, "--addr"},
	} {
		f := base
		f.models = c.models
		if c.edit != nil {
			c.edit(&f)
		}
		err := runServe(context.Background(), io.Discard, f, nil)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: got %v, want an error with %q", c.models, err, c.msg)
		}
	}
	spec, err := parseModelSpec("m=/data/a,b.pt,prefix=enc1,gates=fiog", 2)
	if err != nil || spec.file != "/data/a,b.pt" || spec.opts.Prefix != "enc1" || spec.opts.Gates != "fiog" || spec.opts.Threads != 2 {
		t.Errorf("parseModelSpec: %+v %v", spec, err)
	}
	for in, want := range map[string]int64{"64MiB": 64 << 20, "1GiB": 1 << 30, "4096": 4096, "2M": 2 << 20} {
		if got, err := parseBytes("x", in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
