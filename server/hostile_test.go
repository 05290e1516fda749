package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/convlstm-go/convlstm-go/server/inferencepb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// TestHostileREST: each malformed request is answered 4xx with an
// {"error": ...} body naming the problem, and the server keeps serving.
func TestHostileREST(t *testing.T) {
	m := randomModel(21, 2, []int{3}, 3)
	ts := startServer(t, Config{MaxBody: 1 << 20, MaxRequestMemory: 4 << 20}, map[string]Backend{"m": native(t, m)})
	good := `{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}`
	cases := []struct {
		name, path, body string
		header           map[string]string
		code             int
		msg              string
	}{
		{"malformed JSON", "/v2/models/m/infer", `{"inputs": [`, nil, 400, "not valid JSON"},
		{"not an object", "/v2/models/m/infer", `[1,2]`, nil, 400, "not valid JSON"},
		{"trailing text", "/v2/models/m/infer", `{"inputs":[` + good + `]} xx`, nil, 400, "text after"},
		{"NaN literal", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","data":[NaN,2,3,4,5,6,7,8]}]}`, nil, 400, "invalid character"},
		{"Infinity literal", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","data":[Infinity,2,3,4,5,6,7,8]}]}`, nil, 400, "invalid character"},
		{"NaN string", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","data":["NaN",2,3,4,5,6,7,8]}]}`, nil, 400, "not a JSON number"},
		{"overflowing float", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","data":[1e39,2,3,4,5,6,7,8]}]}`, nil, 400, "out of range"},
		{"wrong datatype", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"INT64","data":[1,2,3,4,5,6,7,8]}]}`, nil, 400, "is FP32; got datatype INT64"},
		{"unknown datatype", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FLOAT","data":[1,2,3,4,5,6,7,8]}]}`, nil, 400, "unknown datatype"},
		{"BYTES", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["a"]}]}`, nil, 400, "BYTES"},
		{"too few values", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","data":[1,2,3]}]}`, nil, 400, "3 values"},
		{"too many values", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9]}]}`, nil, 400, "more values"},
		{"nesting vs shape", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","data":[[1,2,3,4],[5,6,7,8]]}]}`, nil, 400, "does not match"},
		{"ragged", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","data":[[[[[1,2],[3,4]],[[5,6],[7]]]]]}]}`, nil, 400, "ragged"},
		{"mixed nesting", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","data":[1,[2]]}]}`, nil, 400, "mixes"},
		{"deep nesting", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":` + strings.Repeat("[", 40) + "1" + strings.Repeat("]", 40) + `}]}`, nil, 400, "deeper"},
		{"negative dim", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,-1,2,2,2],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}]}`, nil, 400, "negative"},
		{"huge dims", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1000000,1000000,2,1000000,1000000],"datatype":"FP32","data":[1]}]}`, nil, 400, "max-body"},
		{"dim beyond int64", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,99999999999999999999],"datatype":"FP32","data":[1]}]}`, nil, 400, "not valid JSON"},
		{"fractional dim", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1.5,2,2,2],"datatype":"FP32","data":[1]}]}`, nil, 400, "not valid JSON"},
		{"no shape", "/v2/models/m/infer", `{"inputs":[{"name":"input","datatype":"FP32","data":[1]}]}`, nil, 400, "no shape"},
		{"no data", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1],"datatype":"FP32"}]}`, nil, 400, "no data"},
		{"no inputs", "/v2/models/m/infer", `{}`, nil, 400, "no inputs"},
		{"unknown model", "/v2/models/nope/infer", `{"inputs":[` + good + `]}`, nil, 404, "unknown model"},
		{"unknown version", "/v2/models/m/versions/3/infer", `{"inputs":[` + good + `]}`, nil, 404, "no version"},
		{"unknown input", "/v2/models/m/infer", `{"inputs":[` + good + `,{"name":"extra","shape":[1],"datatype":"FP32","data":[1]}]}`, nil, 400, "no input \"extra\""},
		{"duplicate input", "/v2/models/m/infer", `{"inputs":[` + good + `,` + good + `]}`, nil, 400, "twice"},
		{"missing input", "/v2/models/m/infer", `{"inputs":[{"name":"h_0","shape":[1,3,2,2],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12]}]}`, nil, 400, "missing"},
		{"half a state", "/v2/models/m/infer", `{"inputs":[` + good + `,{"name":"h_0","shape":[1,3,2,2],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12]}]}`, nil, 400, "whole"},
		{"state of wrong shape", "/v2/models/m/infer", `{"inputs":[` + good + `,{"name":"h_0","shape":[1,2,2,2],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}]}`, nil, 400, "want (1, 3, 2, 2)"},
		{"wrong channels", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,1,2,4],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}]}`, nil, 400, "1 channels"},
		{"wrong rank", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,2,2,2],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}]}`, nil, 400, "5 dimensions"},
		{"zero batch", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[0,1,2,2,2],"datatype":"FP32","data":[]}]}`, nil, 400, "at least 1"},
		{"unknown output", "/v2/models/m/infer", `{"inputs":[` + good + `],"outputs":[{"name":"y"}]}`, nil, 400, "no output \"y\""},
		{"bad parameter type", "/v2/models/m/infer", `{"parameters":{"sequence_id":1,"sequence_start":"yes"},"inputs":[` + good + `]}`, nil, 400, "boolean"},
		{"object parameter", "/v2/models/m/infer", `{"parameters":{"sequence_id":{"a":1}},"inputs":[` + good + `]}`, nil, 400, "boolean, number or string"},
		{"fractional sequence id", "/v2/models/m/infer", `{"parameters":{"sequence_id":1.5},"inputs":[` + good + `]}`, nil, 400, "unsigned integer or a string"},
		{"bad timeout", "/v2/models/m/infer", `{"parameters":{"timeout":-5},"inputs":[` + good + `]}`, nil, 400, "timeout"},
		{"work over the memory limit", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,16,2,64,64],"datatype":"FP32","parameters":{"binary_data_size":524288}}]}` + strings.Repeat("\x00", 524288), map[string]string{HeaderContentLength: "-"}, 413, "limit of 4 MiB"},
		{"header length past body", "/v2/models/m/infer", `{"inputs":[` + good + `]}`, map[string]string{HeaderContentLength: "9999"}, 400, HeaderContentLength},
		{"header length not a number", "/v2/models/m/infer", `{"inputs":[` + good + `]}`, map[string]string{HeaderContentLength: "x"}, 400, HeaderContentLength},
		{"binary size too big", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","parameters":{"binary_data_size":64}}]}` + strings.Repeat("\x00", 32), map[string]string{HeaderContentLength: "-"}, 400, "bytes of binary data are left"},
		{"binary size vs shape", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","parameters":{"binary_data_size":16}}]}` + strings.Repeat("\x00", 16), map[string]string{HeaderContentLength: "-"}, 400, "32 bytes expected"},
		{"binary left over", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","parameters":{"binary_data_size":32}}]}` + strings.Repeat("\x00", 40), map[string]string{HeaderContentLength: "-"}, 400, "claim 32"},
		{"binary NaN", "/v2/models/m/infer", `{"inputs":[{"name":"input","shape":[1,1,2,2,2],"datatype":"FP32","parameters":{"binary_data_size":32}}]}` + "\x00\x00\xc0\x7f" + strings.Repeat("\x00", 28), map[string]string{HeaderContentLength: "-"}, 400, "finite"},
		{"gzip body", "/v2/models/m/infer", `{"inputs":[` + good + `]}`, map[string]string{"Content-Encoding": "gzip"}, 400, "Content-Encoding"},
		{"sequence on a model without state", "/v2/models/gate/infer", `{"parameters":{"sequence_id":5,"sequence_start":true},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, nil, 400, "cannot serve sequences"},
	}
	ts.s.AddModel("gate", newGate(0))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := map[string]string{}
			for k, v := range c.header {
				h[k] = v
			}
			if h[HeaderContentLength] == "-" {
				h[HeaderContentLength] = strconv.Itoa(strings.Index(c.body, "}]}") + 3)
			}
			code, _, b := ts.post(t, c.path, []byte(c.body), h)
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("answer is not {\"error\": ...}: %s", b)
			}
			if code != c.code || !strings.Contains(e.Error, c.msg) {
				t.Errorf("got %d %q, want %d with %q", code, e.Error, c.code, c.msg)
			}
		})
	}
	// Over --max-body, with and without a Content-Length.
	big := `{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":[` + strings.Repeat("1,", 600000) + `1]}]}`
	code, _, b := ts.post(t, "/v2/models/m/infer", []byte(big), nil)
	if code != 413 || !strings.Contains(string(b), "max-body") {
		t.Errorf("body over the limit: %d %s", code, b)
	}
	pr, pw := io.Pipe()
	go func() {
		for range 200 {
			if _, err := pw.Write([]byte(strings.Repeat(" ", 8192))); err != nil {
				return
			}
		}
		pw.Close()
	}()
	resp, err := http.Post(ts.url+"/v2/models/m/infer", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	pr.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked body over the limit: %d %s", resp.StatusCode, b)
	}
	// Wrong method.
	resp, err = http.Get(ts.url + "/v2/models/m/infer")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET infer: %d, want 405", resp.StatusCode)
	}
	// Still serving.
	code, a, _ := ts.inferJSON(t, "m", map[string]any{"inputs": []any{json.RawMessage(good)}})
	if code != 200 {
		t.Fatalf("after the hostile requests: %d %s", code, a.Error)
	}
	_, mb := ts.get(t, "/metrics")
	if !strings.Contains(string(mb), `convlstm_requests_total{code="400",model="m",protocol="http"}`) || !strings.Contains(string(mb), `convlstm_requests_total{code="404",model="",protocol="http"}`) {
		t.Errorf("metrics do not count the failures by model and code:\n%s", grepLines(string(mb), "requests_total"))
	}
}

func TestHostileGRPC(t *testing.T) {
	m := randomModel(22, 2, []int{3}, 3)
	ts := startServer(t, Config{MaxBody: 1 << 20, MaxSequences: 1}, map[string]Backend{"m": native(t, m)})
	ctx := context.Background()
	x := make([]float32, 8)
	okReq := func() *pb.ModelInferRequest {
		return grpcRequest("m", nil, map[string][]float32{"input": x}, map[string][]int{"input": {1, 1, 2, 2, 2}})
	}
	cases := []struct {
		name string
		edit func(r *pb.ModelInferRequest)
		code codes.Code
		msg  string
	}{
		{"unknown model", func(r *pb.ModelInferRequest) { r.ModelName = "nope" }, codes.NotFound, "unknown model"},
		{"unknown version", func(r *pb.ModelInferRequest) { r.ModelVersion = "2" }, codes.NotFound, "version"},
		{"wrong datatype", func(r *pb.ModelInferRequest) { r.Inputs[0].Datatype = "INT32" }, codes.InvalidArgument, "got datatype INT32"},
		{"raw size vs shape", func(r *pb.ModelInferRequest) { r.RawInputContents[0] = r.RawInputContents[0][:28] }, codes.InvalidArgument, "32 bytes expected"},
		{"raw count vs inputs", func(r *pb.ModelInferRequest) { r.RawInputContents = append(r.RawInputContents, []byte{1}) }, codes.InvalidArgument, "raw_input_contents"},
		{"both contents", func(r *pb.ModelInferRequest) { r.Inputs[0].Contents = &pb.InferTensorContents{Fp32Contents: x} }, codes.InvalidArgument, "both"},
		{"typed count", func(r *pb.ModelInferRequest) {
			r.RawInputContents = nil
			r.Inputs[0].Contents = &pb.InferTensorContents{Fp32Contents: x[:3]}
		}, codes.InvalidArgument, "3 values"},
		{"typed field of another type", func(r *pb.ModelInferRequest) {
			r.RawInputContents = nil
			r.Inputs[0].Contents = &pb.InferTensorContents{Int64Contents: []int64{1, 2, 3, 4, 5, 6, 7, 8}}
		}, codes.InvalidArgument, "0 values in fp32_contents"},
		{"negative dim", func(r *pb.ModelInferRequest) { r.Inputs[0].Shape[1] = -1 }, codes.InvalidArgument, "negative"},
		{"huge dims", func(r *pb.ModelInferRequest) { r.Inputs[0].Shape = []int64{1 << 40, 1 << 40, 2, 1 << 40, 1} }, codes.InvalidArgument, "max-body"},
		{"wrong channels", func(r *pb.ModelInferRequest) { r.Inputs[0].Shape = []int64{1, 1, 1, 2, 4} }, codes.InvalidArgument, "channels"},
		{"wrong rank", func(r *pb.ModelInferRequest) { r.Inputs[0].Shape = []int64{1, 2, 2, 2} }, codes.InvalidArgument, "5 dimensions"},
		{"unknown input", func(r *pb.ModelInferRequest) { r.Inputs[0].Name = "x" }, codes.InvalidArgument, "no input"},
		{"unknown output", func(r *pb.ModelInferRequest) {
			r.Outputs = []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "z"}}
		}, codes.InvalidArgument, "no output"},
		{"empty parameter", func(r *pb.ModelInferRequest) { r.Parameters = map[string]*pb.InferParameter{"sequence_id": {}} }, codes.InvalidArgument, "no value"},
		{"double sequence id", func(r *pb.ModelInferRequest) {
			r.Parameters = map[string]*pb.InferParameter{"sequence_id": {ParameterChoice: &pb.InferParameter_DoubleParam{DoubleParam: 2}}}
		}, codes.InvalidArgument, "unsigned integer or a string"},
		{"step of unknown sequence", func(r *pb.ModelInferRequest) { r.Parameters = seqParamsPB(5, false, false) }, codes.InvalidArgument, "not live"},
		{"too many sequences", func(r *pb.ModelInferRequest) { r.Parameters = seqParamsPB(6, true, false) }, codes.ResourceExhausted, "max-sequences"},
		{"no inputs", func(r *pb.ModelInferRequest) { r.Inputs, r.RawInputContents = nil, nil }, codes.InvalidArgument, "no inputs"},
	}
	if _, err := ts.gc.ModelInfer(ctx, func() *pb.ModelInferRequest { r := okReq(); r.Parameters = seqParamsPB(1, true, false); return r }()); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := okReq()
			c.edit(r)
			_, err := ts.gc.ModelInfer(ctx, r)
			st := status.Convert(err)
			if st.Code() != c.code || !strings.Contains(st.Message(), c.msg) {
				t.Errorf("got %v %q, want %v with %q", st.Code(), st.Message(), c.code, c.msg)
			}
		})
	}
	// A message over --max-body.
	r := okReq()
	r.RawInputContents[0] = make([]byte, 2<<20)
	if _, err := ts.gc.ModelInfer(ctx, r); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("message over the limit: %v, want ResourceExhausted", err)
	}
	if _, err := ts.gc.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("metadata of an unknown model: %v", err)
	}
	if _, err := ts.gc.ModelReady(ctx, &pb.ModelReadyRequest{Name: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("readiness of an unknown model: %v", err)
	}
	if _, err := ts.gc.ModelInfer(ctx, okReq()); err != nil {
		t.Fatalf("after the hostile requests: %v", err)
	}
}

// gate is a stateless test backend whose Run blocks until released.
type gate struct {
	release chan struct{}
	started chan struct{}
	mu      sync.Mutex
	runs    int
}

func newGate(buffer int) *gate {
	g := &gate{release: make(chan struct{}, 1000), started: make(chan struct{}, 1000)}
	for range buffer {
		g.release <- struct{}{}
	}
	if buffer == 0 {
		close(g.release)
	}
	return g
}

func (g *gate) Metadata() ModelMetadata {
	return ModelMetadata{Platform: "test", Inputs: []TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1}}}, Outputs: []TensorMetadata{{Name: "y", Datatype: "FP32", Shape: []int64{-1}}}}
}
func (g *gate) Prepare(in map[string]*tensor.Tensor, _ Mode) (*Prepared, error) {
	if in["x"] == nil {
		return nil, errorf(BadRequest, "no x")
	}
	return &Prepared{Rows: 1, Inputs: in}, nil
}
func (g *gate) Fits(*Prepared, State) error { return nil }
func (g *gate) Close() error                { return nil }
func (g *gate) Run(items []Work) []Result {
	g.started <- struct{}{}
	<-g.release
	g.mu.Lock()
	g.runs++
	g.mu.Unlock()
	res := make([]Result, len(items))
	for i, w := range items {
		res[i].Outputs = map[string]*tensor.Tensor{"y": w.Inputs["x"]}
	}
	return res
}

const gateBody = `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`

// TestOverloadAndTimeouts: a full queue is 503, a request past its
// timeout is 503 (gRPC DEADLINE_EXCEEDED), a client that goes away while
// queued costs nothing, and the server recovers from all of it.
func TestOverloadAndTimeouts(t *testing.T) {
	g := &gate{release: make(chan struct{}), started: make(chan struct{}, 100)}
	ts := startServer(t, Config{MaxQueue: 4}, map[string]Backend{"g": g})
	var wg sync.WaitGroup
	codesCh := make(chan int, 10)
	post := func(body string) {
		defer wg.Done()
		code, _, _ := ts.post(t, "/v2/models/g/infer", []byte(body), nil)
		codesCh <- code
	}
	wg.Add(1)
	go post(gateBody) // runs and blocks
	<-g.started
	wg.Add(1)
	go post(gateBody) // queued
	waitFor(t, func() bool { return queued(ts, "g") == 2 })
	// Timeout parameter (microseconds) while queued behind the blocked run.
	t0 := time.Now()
	code, _, b := ts.post(t, "/v2/models/g/infer", []byte(`{"parameters":{"timeout":100000},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`), nil)
	if code != 503 || !strings.Contains(string(b), "timed out") || time.Since(t0) > 5*time.Second {
		t.Errorf("timeout: %d %s after %v", code, b, time.Since(t0))
	}
	// gRPC deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := ts.gc.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "g", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{1}}}}})
	cancel()
	if c := status.Code(err); c != codes.DeadlineExceeded {
		t.Errorf("gRPC deadline: %v", err)
	}
	// The two timed-out requests keep their places until the model is
	// free again (then they are dropped unrun): the queue is full.
	if code, _, b := ts.post(t, "/v2/models/g/infer", []byte(gateBody), nil); code != 503 || !strings.Contains(string(b), "max-queue") {
		t.Errorf("over --max-queue: %d %s", code, b)
	}
	// A client that vanishes while queued.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v2/models/g/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(gateBody), gateBody)
	time.Sleep(100 * time.Millisecond)
	conn.Close()
	close(g.release)
	wg.Wait()
	close(codesCh)
	for c := range codesCh {
		if c != 200 {
			t.Errorf("a request admitted before the overload: %d", c)
		}
	}
	g.mu.Lock()
	if g.runs != 2 {
		t.Errorf("the model ran %d times; want 2 (timed-out and abandoned requests are dropped unrun)", g.runs)
	}
	g.mu.Unlock()
	if code, _, b := ts.post(t, "/v2/models/g/infer", []byte(gateBody), nil); code != 200 {
		t.Errorf("after the overload: %d %s", code, b)
	}
}

func queued(ts *testServer, model string) int {
	resp, err := http.Get(ts.url + "/metrics")
	if err != nil {
		return -1
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var n int
	for _, l := range splitLines(string(b)) {
		if strings.HasPrefix(l, `convlstm_queued_requests{model="`+model+`"} `) {
			fmt.Sscan(l[strings.LastIndex(l, " ")+1:], &n)
		}
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSlowAndVanishingClients: a client that never finishes its header or
// body is cut off by the read timeouts; one that disappears mid-body
// leaves nothing behind.
func TestSlowAndVanishingClients(t *testing.T) {
	ts := startServer(t, Config{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond}, map[string]Backend{"g": newGate(0)})
	addr := strings.TrimPrefix(ts.url, "http://")
	// Slow header (slowloris).
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v2/models/g/infer HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("slow header: the server did not close the connection: %v", err)
	}
	conn.Close()
	// Slow body.
	conn, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v2/models/g/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inputs\":")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("slow body: %d %s, want 4xx or a closed connection", resp.StatusCode, b)
		}
	}
	conn.Close()
	// Vanishing mid-body.
	for range 20 {
		conn, err = net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /v2/models/g/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"inputs\":[")
		conn.Close()
	}
	if code, _, b := ts.post(t, "/v2/models/g/infer", []byte(gateBody), nil); code != 200 {
		t.Errorf("after the slow clients: %d %s", code, b)
	}
}

// TestGracefulShutdown: after Shutdown begins the server is not ready and
// refuses new work, the request in flight still gets its answer, and
// Shutdown returns once it has.
func TestGracefulShutdown(t *testing.T) {
	g := &gate{release: make(chan struct{}), started: make(chan struct{}, 10)}
	s := New(Config{Logger: quietLogger()})
	s.AddModel("g", g)
	before := 0
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- s.Serve(hl, gl) }()
	url := "http://" + hl.Addr().String()
	got := make(chan int, 1)
	go func() {
		resp, err := http.Post(url+"/v2/models/g/infer", "application/json", strings.NewReader(gateBody))
		if err != nil {
			got <- -1
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-g.started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	waitFor(t, func() bool { return !s.Ready() })
	conn, err := grpc.NewClient(gl.Addr().String(), grpcInsecure())
	if err == nil {
		_, err = pb.NewGRPCInferenceServiceClient(conn).ModelInfer(context.Background(), &pb.ModelInferRequest{ModelName: "g"})
		conn.Close()
		if err == nil {
			t.Error("a new gRPC request was served during shutdown")
		}
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) before the request in flight finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(g.release)
	if code := <-got; code != 200 {
		t.Errorf("request in flight during shutdown: %d, want 200", code)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	_ = before
}
