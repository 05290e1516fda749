package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"testing"

	pb "github.com/convlstm-go/convlstm-go/server/inferencepb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

func TestHealthAndMetadata(t *testing.T) {
	m := randomModel(1, 2, []int{4, 3}, 3)
	ts := startServer(t, Config{}, map[string]Backend{"m": native(t, m)})
	for _, c := range []struct {
		path string
		code int
	}{
		{"/v2/health/live", 200}, {"/v2/health/ready", 200}, {"/v2/models/m/ready", 200},
		{"/v2/models/m/versions/1/ready", 200}, {"/v2/models/m/versions/2/ready", 404},
		{"/v2/models/nope/ready", 404}, {"/v2/models/nope", 404}, {"/v2/nothing", 404}, {"/metrics", 200},
	} {
		if code, b := ts.get(t, c.path); code != c.code {
			t.Errorf("GET %s: %d %s, want %d", c.path, code, b, c.code)
		}
	}
	code, b := ts.get(t, "/v2")
	var sm ServerMetadata
	if err := json.Unmarshal(b, &sm); err != nil || code != 200 {
		t.Fatalf("GET /v2: %d %s", code, b)
	}
	want := map[string]bool{"sequence": true, "sequence(string_id)": true, "binary_tensor_data": true}
	for _, e := range sm.Extensions {
		delete(want, e)
	}
	if sm.Name != "convlstm-go" || len(want) != 0 {
		t.Errorf("server metadata %+v lacks %v", sm, want)
	}
	for _, path := range []string{"/v2/models/m", "/v2/models/m/versions/1"} {
		code, b = ts.get(t, path)
		var info ModelInfo
		if err := json.Unmarshal(b, &info); err != nil || code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		got, _ := json.Marshal(info.Inputs)
		wantIn := `[{"name":"input","datatype":"FP32","shape":[-1,-1,2,-1,-1]},{"name":"h_0","datatype":"FP32","shape":[-1,4,-1,-1]},{"name":"c_0","datatype":"FP32","shape":[-1,4,-1,-1]},{"name":"h_1","datatype":"FP32","shape":[-1,3,-1,-1]},{"name":"c_1","datatype":"FP32","shape":[-1,3,-1,-1]}]`
		if string(got) != wantIn {
			t.Errorf("inputs %s\nwant %s", got, wantIn)
		}
		if info.Outputs[0].Name != "output" || fmt.Sprint(info.Outputs[0].Shape) != "[-1 -1 3 -1 -1]" || len(info.Outputs) != 5 {
			t.Errorf("outputs %+v", info.Outputs)
		}
	}
	// gRPC: the same facts.
	ctx := context.Background()
	live, err := ts.gc.ServerLive(ctx, &pb.ServerLiveRequest{})
	if err != nil || !live.Live {
		t.Fatalf("ServerLive: %v %v", live, err)
	}
	ready, err := ts.gc.ServerReady(ctx, &pb.ServerReadyRequest{})
	if err != nil || !ready.Ready {
		t.Fatalf("ServerReady: %v %v", ready, err)
	}
	mr, err := ts.gc.ModelReady(ctx, &pb.ModelReadyRequest{Name: "m"})
	if err != nil || !mr.Ready {
		t.Fatalf("ModelReady: %v %v", mr, err)
	}
	smd, err := ts.gc.ServerMetadata(ctx, &pb.ServerMetadataRequest{})
	if err != nil || len(smd.Extensions) != len(sm.Extensions) {
		t.Fatalf("ServerMetadata: %v %v", smd, err)
	}
	md, err := ts.gc.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "m", Version: "1"})
	if err != nil || md.Inputs[0].Name != "input" || fmt.Sprint(md.Inputs[0].Shape) != "[-1 -1 2 -1 -1]" || md.Platform == "" {
		t.Fatalf("ModelMetadata: %v %v", md, err)
	}
}

func TestNotReadyUntilLoaded(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	ts.s.Expect("a", "b")
	if code, _ := ts.get(t, "/v2/health/ready"); code != 503 {
		t.Errorf("ready with no model loaded: %d, want 503", code)
	}
	if code, _ := ts.get(t, "/v2/health/live"); code != 200 {
		t.Errorf("live while loading: %d, want 200", code)
	}
	if err := ts.s.AddModel("a", native(t, randomModel(1, 1, []int{2}, 3))); err != nil {
		t.Fatal(err)
	}
	if code, _ := ts.get(t, "/v2/health/ready"); code != 503 {
		t.Errorf("ready with one of two models: %d, want 503", code)
	}
	if code, _ := ts.get(t, "/v2/models/b/ready"); code != 503 {
		t.Errorf("model b ready while loading: %d, want 503", code)
	}
	code, _, _ := ts.inferJSON(t, "b", map[string]any{"inputs": []any{inputJSON("input", []int{1, 1, 1, 2, 2}, make([]float32, 4))}})
	if code != 503 {
		t.Errorf("infer on a loading model: %d, want 503", code)
	}
	if err := ts.s.AddModel("b", native(t, randomModel(2, 1, []int{2}, 3))); err != nil {
		t.Fatal(err)
	}
	if code, _ := ts.get(t, "/v2/health/ready"); code != 200 {
		t.Errorf("ready with both models: %d, want 200", code)
	}
}

// TestInferMatchesRun: every encoding of the same request gives the
// numbers runtime.Forward gives, bit for bit.
func TestInferMatchesRun(t *testing.T) {
	m := randomModel(3, 2, []int{5, 4}, 3)
	ts := startServer(t, Config{}, map[string]Backend{"m": native(t, m)})
	shape := []int{2, 3, 2, 6, 7}
	x := randomFloats(4, tensor.Numel(shape))
	ref := reference(t, m, x, shape, nil)
	want := map[string][]float32{"output": ref.Output.Data}
	for l, s := range ref.Final {
		want[fmt.Sprintf("h_%d", l)], want[fmt.Sprintf("c_%d", l)] = s.H.Data, s.C.Data
	}
	check := func(what string, code int, a *restAnswer, got map[string][]float32, names ...string) {
		t.Helper()
		if code != 200 {
			t.Fatalf("%s: %d %s", what, code, a.Error)
		}
		if len(got) != len(names) {
			t.Fatalf("%s: outputs %v, want %v", what, a.Outputs, names)
		}
		for _, n := range names {
			sameBits(t, what+" "+n, got[n], want[n])
		}
	}
	all := []string{"output", "h_0", "c_0", "h_1", "c_1"}

	code, a, got := ts.inferJSON(t, "m", map[string]any{"id": "r1", "inputs": []any{inputJSON("input", shape, x)}})
	check("flat JSON", code, a, got, all...)
	if a.ID != "r1" || a.ModelName != "m" || a.ModelVersion != "1" || a.Outputs[0].Datatype != "FP32" || fmt.Sprint(a.Outputs[0].Shape) != "[2 3 4 6 7]" {
		t.Errorf("answer header %+v", a.Outputs[0])
	}

	// Nested data, row-major.
	nested := make([][][][][]float32, shape[0])
	i := 0
	for b := range nested {
		nested[b] = make([][][][]float32, shape[1])
		for tt := range nested[b] {
			nested[b][tt] = make([][][]float32, shape[2])
			for c := range nested[b][tt] {
				nested[b][tt][c] = make([][]float32, shape[3])
				for y := range nested[b][tt][c] {
					nested[b][tt][c][y] = x[i : i+shape[4]]
					i += shape[4]
				}
			}
		}
	}
	code, a, got = ts.inferJSON(t, "m", map[string]any{"inputs": []any{map[string]any{"name": "input", "shape": shape, "datatype": "FP32", "data": nested}}, "outputs": []any{map[string]any{"name": "output"}}})
	check("nested JSON", code, a, got, "output")

	// Binary input and binary outputs (one output asked as JSON).
	raw := rawBytes(tensor.FromFloats(x, len(x)))
	head, _ := json.Marshal(map[string]any{
		"inputs":  []any{map[string]any{"name": "input", "shape": shape, "datatype": "FP32", "parameters": map[string]any{"binary_data_size": len(raw)}}},
		"outputs": []any{map[string]any{"name": "h_1", "parameters": map[string]any{"binary_data": true}}, map[string]any{"name": "output"}, map[string]any{"name": "c_0", "parameters": map[string]any{"binary_data": true}}},
	})
	code, h, body := ts.post(t, "/v2/models/m/infer", append(head, raw...), map[string]string{HeaderContentLength: strconv.Itoa(len(head)), "Content-Type": "application/octet-stream"})
	code, a, got = decodeAnswer(t, code, h, body)
	check("binary", code, a, got, "h_1", "output", "c_0")
	if a.Outputs[0].Name != "h_1" || a.Outputs[1].Name != "output" || a.Outputs[0].Data != nil {
		t.Errorf("binary answer outputs %+v: want h_1, output, c_0 in the order asked", a.Outputs)
	}
	// binary_data_output for all outputs.
	head, _ = json.Marshal(map[string]any{"parameters": map[string]any{"binary_data_output": true}, "inputs": []any{inputJSON("input", shape, x)}})
	code, h, body = ts.post(t, "/v2/models/m/infer", head, nil)
	code, a, got = decodeAnswer(t, code, h, body)
	check("binary_data_output", code, a, got, all...)

	// FP64 and FP16 inputs are converted to float32 as `run` converts .npy.
	f64 := make([]byte, 0, 8*len(x))
	for _, v := range x {
		f64 = binary.LittleEndian.AppendUint64(f64, math.Float64bits(float64(v)))
	}
	head, _ = json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "input", "shape": shape, "datatype": "FP64", "parameters": map[string]any{"binary_data_size": len(f64)}}}, "outputs": []any{map[string]any{"name": "output"}}})
	code, h, body = ts.post(t, "/v2/models/m/infer", append(head, f64...), map[string]string{HeaderContentLength: strconv.Itoa(len(head))})
	code, a, got = decodeAnswer(t, code, h, body)
	check("FP64", code, a, got, "output")

	x16 := make([]float32, len(x))
	for i, v := range x {
		x16[i] = tensor.HalfToFloat32(tensor.Float32ToHalf(v))
	}
	ref16 := reference(t, m, x16, shape, nil)
	code, a, got = ts.inferJSON(t, "m", map[string]any{"inputs": []any{map[string]any{"name": "input", "shape": shape, "datatype": "FP16", "data": jsonFloats(x16)}}, "outputs": []any{map[string]any{"name": "output"}}})
	if code != 200 {
		t.Fatalf("FP16: %d %s", code, a.Error)
	}
	sameBits(t, "FP16 output", got["output"], ref16.Output.Data)

	// gRPC, raw contents and typed contents.
	r, err := ts.gc.ModelInfer(context.Background(), grpcRequest("m", nil, map[string][]float32{"input": x}, map[string][]int{"input": shape}))
	if err != nil {
		t.Fatal(err)
	}
	g := grpcOutputs(t, r)
	for _, n := range all {
		sameBits(t, "gRPC raw "+n, g[n], want[n])
	}
	req := grpcRequest("m", nil, map[string][]float32{"input": x}, map[string][]int{"input": shape}, "output")
	req.RawInputContents = nil
	req.Inputs[0].Contents = &pb.InferTensorContents{Fp32Contents: x}
	r, err = ts.gc.ModelInfer(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Outputs) != 1 {
		t.Fatalf("asked for output only, got %d outputs", len(r.Outputs))
	}
	sameBits(t, "gRPC typed output", grpcOutputs(t, r)["output"], want["output"])
}

// TestStateInputs: a stateless request carrying h_l/c_l continues from
// them exactly (the stateless alternative to server-held sequences).
func TestStateInputs(t *testing.T) {
	m := randomModel(5, 1, []int{4, 4}, 3)
	ts := startServer(t, Config{}, map[string]Backend{"m": native(t, m)})
	shape := []int{1, 4, 1, 5, 5}
	x := randomFloats(6, tensor.Numel(shape))
	ref := reference(t, m, x, shape, nil)
	half := tensor.Numel(shape) / 2
	hs := []int{1, 2, 1, 5, 5}
	code, a, got := ts.inferJSON(t, "m", map[string]any{"inputs": []any{inputJSON("input", hs, x[:half])}})
	if code != 200 {
		t.Fatal(a.Error)
	}
	inputs := []any{inputJSON("input", hs, x[half:])}
	for l := range 2 {
		for _, k := range []string{"h", "c"} {
			n := fmt.Sprintf("%s_%d", k, l)
			inputs = append(inputs, inputJSON(n, []int{1, 4, 5, 5}, got[n]))
		}
	}
	code, a, got2 := ts.inferJSON(t, "m", map[string]any{"inputs": inputs})
	if code != 200 {
		t.Fatal(a.Error)
	}
	on := len(ref.Output.Data) / 2
	sameBits(t, "second half output", got2["output"], ref.Output.Data[on:])
	sameBits(t, "final h_1", got2["h_1"], ref.Final[1].H.Data)
	sameBits(t, "final c_0", got2["c_0"], ref.Final[0].C.Data)
}
