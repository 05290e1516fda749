package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand"
	"net"
	"net/http"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/runtime"
	pb "github.com/convlstm-go/convlstm-go/server/inferencepb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// randomModel builds a ConvLSTM with random weights (no files, no Python).
func randomModel(seed int64, in int, hidden []int, k int) *convlstm.Model {
	rng := rand.New(rand.NewSource(seed))
	m := &convlstm.Model{Gates: convlstm.GatesIFOG}
	for _, h := range hidden {
		l := convlstm.Layer{LayerConfig: convlstm.LayerConfig{InputDim: in, HiddenDim: h, KernelH: k, KernelW: k, HasBias: true}}
		l.Weight = make([]float32, 4*h*(in+h)*k*k)
		for i := range l.Weight {
			l.Weight[i] = float32(rng.NormFloat64() * 0.2)
		}
		l.Bias = make([]float32, 4*h)
		for i := range l.Bias {
			l.Bias[i] = float32(rng.NormFloat64() * 0.1)
		}
		m.Layers = append(m.Layers, l)
		in = h
	}
	return m
}

func randomFloats(seed int64, n int) []float32 {
	rng := rand.New(rand.NewSource(seed))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// reference runs the model directly, as `run` does: x (B,T,C,H,W) from
// zeros or the given state.
func reference(t *testing.T, m *convlstm.Model, x []float32, shape []int, initial []runtime.LayerState) *runtime.Result {
	t.Helper()
	r, err := runtime.New(m, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Forward(tensor.FromFloats(x, shape...), runtime.ForwardOptions{Initial: initial})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// sameBits reports the first index where got and want differ in bits.
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: value %d is %v, want %v (bit-identical)", what, i, got[i], want[i])
		}
	}
}

// testServer is a server on loopback ports with its clients.
type testServer struct {
	s    *Server
	url  string
	addr string // gRPC
	conn *grpc.ClientConn
	gc   pb.GRPCInferenceServiceClient
	done chan error
}

// quietLogger drops logs below warnings (tests provoke many errors).
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer serves the given models on 127.0.0.1 and shuts down at
// the end of the test, checking that no goroutine outlives it.
func startServer(t *testing.T, cfg Config, models map[string]Backend) *testServer {
	t.Helper()
	return startServerLeak(t, cfg, models, true)
}

// startServerLeak is startServer; leakCheck false leaves the check to the
// caller (for tests running several servers at once).
func startServerLeak(t *testing.T, cfg Config, models map[string]Backend, leakCheck bool) *testServer {
	t.Helper()
	before := goruntime.NumGoroutine()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s := New(cfg)
	for name, b := range models {
		if err := s.AddModel(name, b); err != nil {
			t.Fatal(err)
		}
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{s: s, url: "http://" + hl.Addr().String(), addr: gl.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(hl, gl) }()
	ts.conn, err = grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ts.gc = pb.NewGRPCInferenceServiceClient(ts.conn)
	t.Cleanup(func() {
		ts.conn.Close()
		http.DefaultClient.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-ts.done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if leakCheck {
			checkGoroutines(t, before)
		}
	})
	return ts
}

// checkGoroutines waits for the goroutine count to fall back to before.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := goruntime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:goruntime.Stack(buf, true)]
			t.Fatalf("goroutine leak: %d goroutines before, %d after\n%s", before, n, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func native(t *testing.T, m *convlstm.Model) *Native {
	t.Helper()
	n, err := NewNative(m, 2)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// restTensor is a JSON input or output.
type restTensor struct {
	Name       string          `json:"name"`
	Shape      []int           `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

type restAnswer struct {
	ModelName    string       `json:"model_name"`
	ModelVersion string       `json:"model_version"`
	ID           string       `json:"id"`
	Outputs      []restTensor `json:"outputs"`
	Error        string       `json:"error"`
}

func jsonFloats(v []float32) json.RawMessage {
	b, _ := appendJSONData(nil, tensor.FromFloats(v, len(v)))
	return b
}

func (ts *testServer) post(t *testing.T, path string, body []byte, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func (ts *testServer) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(ts.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// inferJSON posts a JSON request and decodes the answer (binary outputs
// are decoded into Data as JSON arrays for uniformity).
func (ts *testServer) inferJSON(t *testing.T, model string, req map[string]any) (int, *restAnswer, map[string][]float32) {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	code, h, b := ts.post(t, "/v2/models/"+model+"/infer", body, nil)
	return decodeAnswer(t, code, h, b)
}

func decodeAnswer(t *testing.T, code int, h http.Header, b []byte) (int, *restAnswer, map[string][]float32) {
	t.Helper()
	head, bin := b, []byte(nil)
	if hl := h.Get(HeaderContentLength); hl != "" {
		var n int
		fmt.Sscan(hl, &n)
		head, bin = b[:n], b[n:]
	}
	var a restAnswer
	if err := json.Unmarshal(head, &a); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %.200s", code, err, b)
	}
	vals := map[string][]float32{}
	for _, o := range a.Outputs {
		if sz, ok := o.Parameters["binary_data_size"]; ok {
			n := int(sz.(float64))
			v := make([]float32, n/4)
			for i := range v {
				v[i] = math.Float32frombits(binary.LittleEndian.Uint32(bin[4*i:]))
			}
			bin = bin[n:]
			vals[o.Name] = v
			continue
		}
		var f []float32
		if err := json.Unmarshal(o.Data, &f); err != nil {
			t.Fatalf("output %s: %v", o.Name, err)
		}
		vals[o.Name] = f
	}
	return code, &a, vals
}

// inputJSON is a JSON input tensor.
func inputJSON(name string, shape []int, v []float32) map[string]any {
	return map[string]any{"name": name, "shape": shape, "datatype": "FP32", "data": jsonFloats(v)}
}

// grpcInfer sends one raw-content ModelInfer.
func grpcRequest(model string, params map[string]*pb.InferParameter, inputs map[string][]float32, shapes map[string][]int, outputs ...string) *pb.ModelInferRequest {
	r := &pb.ModelInferRequest{ModelName: model, Parameters: params}
	names := make([]string, 0, len(inputs))
	for k := range inputs {
		names = append(names, k)
	}
	for _, k := range sortedKeys(inputs) {
		var s []int64
		for _, d := range shapes[k] {
			s = append(s, int64(d))
		}
		r.Inputs = append(r.Inputs, &pb.ModelInferRequest_InferInputTensor{Name: k, Datatype: "FP32", Shape: s})
		r.RawInputContents = append(r.RawInputContents, rawBytes(tensor.FromFloats(inputs[k], len(inputs[k]))))
	}
	for _, o := range outputs {
		r.Outputs = append(r.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: o})
	}
	_ = names
	return r
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// grpcOutputs decodes a response's raw outputs by name.
func grpcOutputs(t *testing.T, r *pb.ModelInferResponse) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	if len(r.RawOutputContents) != len(r.Outputs) {
		t.Fatalf("%d raw outputs for %d outputs", len(r.RawOutputContents), len(r.Outputs))
	}
	for i, o := range r.Outputs {
		b := r.RawOutputContents[i]
		v := make([]float32, len(b)/4)
		for j := range v {
			v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
		out[o.Name] = v
	}
	return out
}

func seqParamsPB(id uint64, start, end bool) map[string]*pb.InferParameter {
	return map[string]*pb.InferParameter{
		"sequence_id":    {ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: id}},
		"sequence_start": {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: start}},
		"sequence_end":   {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: end}},
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func grpcInsecure() grpc.DialOption { return grpc.WithTransportCredentials(insecure.NewCredentials()) }
