package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/export"
	pb "github.com/convlstm-go/convlstm-go/server/inferencepb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// TestJSONData: every JSON datatype, flat and nested, decodes to the
// values written, and malformed data is refused with its reason.
func TestJSONData(t *testing.T) {
	for _, c := range []struct {
		dt    string
		shape []int
		data  string
		want  string // fmt of Data or Ints
	}{
		{"FP32", []int{2, 2}, `[[1, -2.5], [3e2, 0.1]]`, "[1 -2.5 300 0.1]"},
		{"FP32", []int{4}, `[1,2,3,4]`, "[1 2 3 4]"},
		{"FP32", []int{2, 2}, `[1,2,3,4]`, "[1 2 3 4]"},
		{"FP32", []int{}, `7`, "[7]"},
		{"FP32", []int{0, 3}, `[]`, "[]"},
		{"FP64", []int{2}, `[0.1, 1e-300]`, "[0.1 0]"},
		{"FP16", []int{3}, `[0.1, 65504, 1e-8]`, "[0.099975586 65504 0]"},
		{"BF16", []int{1}, `[1.00390625]`, "[1]"},
		{"INT64", []int{2}, `[-9223372036854775808, 9223372036854775807]`, "[-9223372036854775808 9223372036854775807]"},
		{"INT32", []int{1, 2}, `[[-2147483648, 2147483647]]`, "[-2147483648 2147483647]"},
		{"INT8", []int{2}, `[-128, 127]`, "[-128 127]"},
		{"UINT8", []int{2}, `[0, 255]`, "[0 255]"},
		{"BOOL", []int{3}, `[true, false, true]`, "[1 0 1]"},
	} {
		dt, err := dtypeOf(c.dt)
		if err != nil {
			t.Fatal(err)
		}
		tt, err := decodeJSONData("x", []byte(c.data), dt, c.shape)
		if err != nil {
			t.Errorf("%s %s: %v", c.dt, c.data, err)
			continue
		}
		got := fmt.Sprint(tt.Ints)
		if dt.IsFloat() {
			got = fmt.Sprint(tt.Data)
		}
		if got != c.want || tt.Check() != nil {
			t.Errorf("%s %s: %s, want %s (%v)", c.dt, c.data, got, c.want, tt.Check())
		}
	}
	for _, c := range []struct{ dt, data, msg string }{
		{"INT32", `[2147483648]`, "range of int32"},
		{"INT64", `[1.5]`, "not an integer"},
		{"UINT8", `[-1]`, "range of uint8"},
		{"BOOL", `[1]`, "true or false"},
		{"FP16", `[70000]`, "out of range"},
		{"FP32", `[1,]`, "not a JSON number"},
		{"FP32", `[01]`, "not a JSON number"},
		{"FP32", `[+1]`, "not a JSON number"},
		{"FP32", `[1 2]`, "want ','"},
		{"FP32", `[1`, "unterminated"},
		{"FP32", `[[1],[2,3]]`, "ragged"},
		{"FP32", `[[1],[[2]]]`, "depths"},
	} {
		dt, _ := dtypeOf(c.dt)
		_, err := decodeJSONData("x", []byte(c.data), dt, []int{8})
		if err == nil || !strings.Contains(message(err), c.msg) {
			t.Errorf("%s %s: %v, want an error with %q", c.dt, c.data, err, c.msg)
		}
	}
}

// TestGRPCContents: typed contents of every integer and bool kind decode
// to the values sent; out-of-range values are refused.
func TestGRPCContents(t *testing.T) {
	for _, c := range []struct {
		dt   string
		c    *pb.InferTensorContents
		want string
	}{
		{"INT32", &pb.InferTensorContents{IntContents: []int32{-1, 7}}, "[-1 7]"},
		{"INT16", &pb.InferTensorContents{IntContents: []int32{-300, 300}}, "[-300 300]"},
		{"INT64", &pb.InferTensorContents{Int64Contents: []int64{-5, 1 << 40}}, "[-5 1099511627776]"},
		{"UINT32", &pb.InferTensorContents{UintContents: []uint32{0, 4000000000}}, "[0 4000000000]"},
		{"UINT64", &pb.InferTensorContents{Uint64Contents: []uint64{3, 1 << 62}}, "[3 4611686018427387904]"},
		{"BOOL", &pb.InferTensorContents{BoolContents: []bool{true, false}}, "[1 0]"},
		{"FP64", &pb.InferTensorContents{Fp64Contents: []float64{0.5, -2}}, "[0.5 -2]"},
	} {
		dt, _ := dtypeOf(c.dt)
		tt, err := decodeContents("x", c.c, dt, []int{2})
		if err != nil {
			t.Errorf("%s: %v", c.dt, err)
			continue
		}
		got := fmt.Sprint(tt.Ints)
		if dt.IsFloat() {
			got = fmt.Sprint(tt.Data)
		}
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.dt, got, c.want)
		}
	}
	if _, err := decodeContents("x", &pb.InferTensorContents{IntContents: []int32{200, 0}}, tensor.Int8, []int{2}); err == nil {
		t.Error("INT8 200 accepted")
	}
	if _, err := decodeContents("x", &pb.InferTensorContents{Uint64Contents: []uint64{1 << 63, 0}}, tensor.Uint64, []int{2}); err == nil {
		t.Error("UINT64 2^63 accepted")
	}
	if _, err := decodeContents("x", &pb.InferTensorContents{}, tensor.Float16, []int{1}); err == nil || !strings.Contains(message(err), "raw_input_contents") {
		t.Errorf("FP16 in typed contents: %v", err)
	}
}

// TestONNXModel: an ONNX graph (package export's, dynamic B, T, H, W) is
// served with its own inputs and outputs, -1 for its dynamic dims, and
// agrees with the native model within the parity bar; it refuses
// sequences.
func TestONNXModel(t *testing.T) {
	m := randomModel(41, 1, []int{4, 3}, 3)
	var b bytes.Buffer
	if err := export.ONNX(m, &b, export.ONNXOptions{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ob, err := Open(path, OpenOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{}, map[string]Backend{"g": ob, "n": native(t, m)})
	code, body := ts.get(t, "/v2/models/g")
	var info ModelInfo
	if err := json.Unmarshal(body, &info); err != nil || code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if len(info.Inputs) != 1 || info.Inputs[0].Name != "input" || fmt.Sprint(info.Inputs[0].Shape) != "[-1 -1 1 -1 -1]" || info.Inputs[0].Datatype != "FP32" {
		t.Errorf("ONNX inputs %+v", info.Inputs)
	}
	shape := []int{2, 3, 1, 5, 4}
	x := randomFloats(42, tensor.Numel(shape))
	req := map[string]any{"inputs": []any{inputJSON("input", shape, x)}}
	code, a, got := ts.inferJSON(t, "g", req)
	if code != 200 {
		t.Fatalf("ONNX: %d %s", code, a.Error)
	}
	_, _, want := ts.inferJSON(t, "n", req)
	for _, name := range []string{"output", "h_0", "c_1"} {
		if len(got[name]) != len(want[name]) || len(got[name]) == 0 {
			t.Fatalf("%s: %d values, native %d", name, len(got[name]), len(want[name]))
		}
		for i, v := range want[name] {
			d := float64(got[name][i] - v)
			if d < 0 {
				d = -d
			}
			if d > 1e-5+1e-5*float64(max(v, -v)) {
				t.Fatalf("%s[%d]: ONNX %v, native %v", name, i, got[name][i], v)
			}
		}
	}
	code, a, _ = ts.inferJSON(t, "g", map[string]any{"inputs": []any{inputJSON("input", []int{1, 1, 2, 2, 2}, make([]float32, 8))}})
	if code != 400 || !strings.Contains(a.Error, "dimension 2 must be 1") {
		t.Errorf("ONNX wrong channels: %d %q", code, a.Error)
	}
	code, a, _ = ts.inferJSON(t, "g", seqReq(1, true, false, x[:20], []int{1, 1, 1, 5, 4}))
	if code != 400 || !strings.Contains(a.Error, "cannot serve sequences") {
		t.Errorf("ONNX sequence: %d %q", code, a.Error)
	}
}
