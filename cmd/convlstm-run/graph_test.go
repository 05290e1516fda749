package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// A graph with several inputs (the model of fixtures/forward/initial-state
// converted with --initial-state: input, h0_l, c0_l) runs from NAME=FILE.npy
// pairs and from one .npz by name, to PyTorch's numbers.
func TestGraphSeveralInputs(t *testing.T) {
	dir := t.TempDir()
	fxd := "../../fixtures/forward/initial-state/"
	g := filepath.Join(dir, "m.onnx")
	if _, err := runCLI(t, "convert", "--weights", fxd+"weights.pt", "--output", g, "--initial-state"); err != nil {
		t.Fatal(err)
	}
	state, _, err := loader.ReadNPZ(fxd + "state_in.npz")
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := loader.ReadNPZ(fxd + "expected.npz")
	if err != nil {
		t.Fatal(err)
	}
	x, err := loader.ReadNPY(fxd + "input.npy")
	if err != nil {
		t.Fatal(err)
	}
	pairs := []string{"run", "--weights", g, "--input", "input=" + fxd + "input.npy"}
	all := map[string]*tensor.Tensor{"input": x}
	var keys []string
	for _, k := range []string{"h_0", "c_0", "h_1", "c_1"} {
		name := k[:1] + "0_" + k[2:] // h_0 -> h0_0
		p := filepath.Join(dir, name+".npy")
		if err := loader.WriteNPY(p, state[k]); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, "--input", name+"="+p)
		all[name] = state[k]
		keys = append(keys, name)
	}
	npz := filepath.Join(dir, "inputs.npz")
	if err := loader.WriteNPZ(npz, append(keys, "input"), all); err != nil {
		t.Fatal(err)
	}
	for label, args := range map[string][]string{
		"pairs": pairs,
		"npz":   {"run", "--weights", g, "--input", npz},
	} {
		out := filepath.Join(dir, label+".npz")
		text, err := runCLI(t, append(args, "--output", out, "--threads", "2")...)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		if !strings.Contains(text, "input:  h0_1 float32 (2, 4, 6, 6) from ") || !strings.Contains(text, "output: c_1 float32 (2, 4, 6, 6)") {
			t.Errorf("%s: summary:\n%s", label, text)
		}
		got, gotKeys, err := loader.ReadNPZ(out)
		if err != nil {
			t.Fatal(err)
		}
		// The graph returns output, h_l, c_l (the reference also holds
		// every layer's sequence, output_l, which this graph does not).
		if !slices.Equal(gotKeys, []string{"output", "h_0", "c_0", "h_1", "c_1"}) {
			t.Errorf("%s: outputs %v", label, gotKeys)
		}
		for _, k := range gotKeys {
			if ok, msg := tensorReport(k, got[k], want[k], parityBar, layout{layers: 2}); !ok {
				t.Errorf("%s: %s", label, msg)
			} else {
				t.Logf("%s: %s", label, msg)
			}
		}
	}

	// Inputs that do not fit are named.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--input", fxd + "input.npy"}, []string{"5 required inputs", "input float32 (batch, time, 2, height, width)", "h0_0 float32 (batch, 3, height, width)", "NAME=FILE.npy"}},
		{[]string{"--input", "frames=" + fxd + "input.npy"}, []string{`no input "frames"`, "h0_0"}},
		{[]string{"--input", npz, "--input", "input=" + fxd + "input.npy"}, []string{`input "input" is given twice`, "inputs.npz[input]", fxd + "input.npy"}},
		{[]string{"--input", "x=" + npz}, []string{"an .npz names its arrays itself"}},
		{[]string{"--input", fxd + "expected.npz"}, []string{"expected.npz", `array "output" matches no input`}},
		{[]string{"--input", "input=" + fxd + "input.npy"}, []string{"h0_0", "is missing"}},
		{[]string{"--input", "input=" + fxd + "weights.pt"}, []string{"weights.pt", "must be a NumPy .npy array", "pytorch-zip"}},
		{[]string{"--input", "input=" + filepath.Join(dir, "nope.npy")}, []string{"nope.npy"}},
	} {
		out := filepath.Join(dir, "bad.npz")
		_, err := runCLI(t, append([]string{"run", "--weights", g, "--output", out}, c.args...)...)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v, want it to say %q", c.args, err, w)
			}
		}
		if _, serr := os.Stat(out); serr == nil {
			t.Errorf("%v: output left behind", c.args)
			os.Remove(out)
		}
	}
}

// Flags that apply to ConvLSTM weights only are errors on a graph, each
// named with why, never ignored.
func TestGraphFlagErrors(t *testing.T) {
	g := "../../fixtures/onnx/dynamic_op13.onnx"
	in := "../../fixtures/onnx/dynamic_op13.input.npy"
	_, err := runCLI(t, "run", "--weights", g, "--input", in, "--gates", "fiog", "--prefix", "m", "--time-first", "--all-layers")
	for _, w := range []string{g, "ONNX graph", "--gates does not apply", "--prefix does not apply", "--time-first does not apply", "--all-layers does not apply"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v, want it to say %q", err, w)
		}
	}
	if _, err := runCLI(t, "run", "--weights", g, "--input", in, "--state-in", "../../fixtures/forward/initial-state/state_in.npz"); err == nil || !strings.Contains(err.Error(), "--state-in does not apply") {
		t.Errorf("--state-in on a graph: %v", err)
	}
	if _, err := runCLI(t, "run", "--weights", g); err == nil || !strings.Contains(err.Error(), "input float32 (batch, 3, 2, height, width)") {
		t.Errorf("no --input for a graph: %v", err)
	}
	if _, err := runCLI(t, "bench", "--weights", g, "--shape", "1,3,2,8,8", "--stream"); err == nil || !strings.Contains(err.Error(), "--stream") {
		t.Errorf("bench --stream on a graph: %v", err)
	}
	if _, err := runCLI(t, "bench", "--weights", g, "--shape", "1,3,2,8,8", "--direct"); err == nil || !strings.Contains(err.Error(), "--direct does not apply") {
		t.Errorf("bench --direct on a graph: %v", err)
	}
	if _, err := runCLI(t, "convert", "--weights", g, "--output", filepath.Join(t.TempDir(), "m.safetensors"), "--opset", "13"); err == nil || !strings.Contains(err.Error(), "--opset 13") {
		t.Errorf("convert --opset to safetensors: %v", err)
	}
}

// bench times a graph as it times a native model, with the same JSON.
func TestBenchGraph(t *testing.T) {
	g := "../../fixtures/onnx/dynamic_op13.onnx"
	for _, args := range [][]string{
		{"bench", "--weights", g, "--shape", "2,3,2,8,8", "--runs", "3", "--json", "--threads", "1"},
		{"bench", "--weights", g, "--input", "input=2,3,2,8,8", "--runs", "2", "--json"},
		{"bench", "--weights", g, "--input", "input=../../fixtures/onnx/dynamic_op13.input.npy", "--runs", "2", "--json"},
	} {
		text, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var rep benchReport
		if err := json.Unmarshal([]byte(text), &rep); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, text)
		}
		if rep.Mode != "graph" || !(rep.MinMS > 0 && rep.MinMS <= rep.MedianMS && rep.MedianMS <= rep.MaxMS) || rep.Kernel == "" || len(rep.Inputs["input"]) != 5 || rep.Shape[1] != 3 {
			t.Errorf("%v: %+v", args, rep)
		}
	}
	if _, err := runCLI(t, "bench", "--weights", g, "--shape", "2,4,2,8,8"); err == nil || !strings.Contains(err.Error(), "dimension 1 is 4, the model takes 3") {
		t.Errorf("a shape the graph does not take: %v", err)
	}
	if _, err := runCLI(t, "bench", "--weights", g, "--input", "x=1,2"); err == nil || !strings.Contains(err.Error(), `no input "x"`) {
		t.Errorf("unknown input: %v", err)
	}
}

// Integer outputs are written in their own dtype, under their names.
func TestGraphIntegerOutput(t *testing.T) {
	dim := func(v int64, p string) *onnxpb.TensorShapeProto_Dimension {
		if p != "" {
			return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: p}}
		}
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	vi := func(name string, elem int32, dims ...*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(elem), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}
	}
	mp := &onnxpb.ModelProto{IrVersion: proto.Int64(8), OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("g"),
			Node: []*onnxpb.NodeProto{
				{OpType: proto.String("Shape"), Name: proto.String("shape"), Input: []string{"x"}, Output: []string{"size"}},
				{OpType: proto.String("Relu"), Name: proto.String("relu"), Input: []string{"x"}, Output: []string{"y"}},
			},
			Input:  []*onnxpb.ValueInfoProto{vi("x", 1, dim(0, "n"), dim(3, ""))},
			Output: []*onnxpb.ValueInfoProto{vi("size", 7, dim(2, "")), vi("y", 1, dim(0, "n"), dim(3, ""))},
		}}
	data, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	g, x, out := filepath.Join(dir, "g.onnx"), filepath.Join(dir, "x.npy"), filepath.Join(dir, "out.npz")
	os.WriteFile(g, data, 0o644)
	if err := loader.WriteNPY(x, tensor.FromFloats([]float32{-1, 2, -3, 4, -5, 6, -7, 8, -9, 10}[:6], 2, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "run", "--weights", g, "--input", x, "--output", out); err != nil {
		t.Fatal(err)
	}
	res, keys, err := loader.ReadNPZ(out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"size", "y"}) || res["size"].DType != tensor.Int64 || !slices.Equal(res["size"].Ints, []int64{2, 3}) ||
		!slices.Equal(res["y"].Data, []float32{0, 2, 0, 4, 0, 6}) {
		t.Errorf("outputs %v: size %+v, y %+v", keys, res["size"], res["y"])
	}
}

// int64 and bool inputs are accepted as the graph declares them (an int32
// array for an int64 input is taken exactly), and integer and bool outputs
// come back in their own dtype.
func TestGraphIntegerAndBoolInputs(t *testing.T) {
	vi := func(name string, elem int32) *onnxpb.ValueInfoProto {
		dims := []*onnxpb.TensorShapeProto_Dimension{
			{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "n"}},
			{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 3}},
		}
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(elem), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}
	}
	toFloat := &onnxpb.AttributeProto{Name: proto.String("to"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)}
	mp := &onnxpb.ModelProto{IrVersion: proto.Int64(8), OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("g"),
			Node: []*onnxpb.NodeProto{
				{OpType: proto.String("Cast"), Name: proto.String("ids_f"), Input: []string{"ids"}, Output: []string{"idsf"}, Attribute: []*onnxpb.AttributeProto{toFloat}},
				{OpType: proto.String("Cast"), Name: proto.String("mask_f"), Input: []string{"mask"}, Output: []string{"maskf"}, Attribute: []*onnxpb.AttributeProto{toFloat}},
				{OpType: proto.String("Add"), Name: proto.String("add"), Input: []string{"x", "idsf"}, Output: []string{"xa"}},
				{OpType: proto.String("Mul"), Name: proto.String("mul"), Input: []string{"xa", "maskf"}, Output: []string{"y"}},
				{OpType: proto.String("Identity"), Name: proto.String("ids_out"), Input: []string{"ids"}, Output: []string{"ids_copy"}},
				{OpType: proto.String("Identity"), Name: proto.String("mask_out"), Input: []string{"mask"}, Output: []string{"mask_copy"}},
			},
			Input:  []*onnxpb.ValueInfoProto{vi("x", 1), vi("ids", 7), vi("mask", 9)},
			Output: []*onnxpb.ValueInfoProto{vi("y", 1), vi("ids_copy", 7), vi("mask_copy", 9)},
		}}
	data, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	os.WriteFile(p("g.onnx"), data, 0o644)
	x := tensor.FromFloats([]float32{0.5, -1.25, 2, 3.5, -4, 0.125}, 2, 3)
	ids := tensor.FromInts(tensor.Int32, []int64{1, -2, 3, 40000, 5, -6}, 2, 3) // int32 on disk
	mask := tensor.FromInts(tensor.Bool, []int64{1, 0, 1, 1, 0, 1}, 2, 3)
	for n, tt := range map[string]*tensor.Tensor{"x.npy": x, "ids.npy": ids, "mask.npy": mask} {
		if err := loader.WriteNPY(p(n), tt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runCLI(t, "run", "--weights", p("g.onnx"), "--input", "x="+p("x.npy"), "--input", "ids="+p("ids.npy"), "--input", "mask="+p("mask.npy"), "--output", p("out.npz")); err != nil {
		t.Fatal(err)
	}
	res, keys, err := loader.ReadNPZ(p("out.npz"))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, 6)
	for i := range want {
		want[i] = (x.Data[i] + float32(ids.Ints[i])) * float32(mask.Ints[i])
	}
	if !slices.Equal(keys, []string{"y", "ids_copy", "mask_copy"}) || !slices.Equal(res["y"].Data, want) ||
		res["ids_copy"].DType != tensor.Int64 || !slices.Equal(res["ids_copy"].Ints, ids.Ints) ||
		res["mask_copy"].DType != tensor.Bool || !slices.Equal(res["mask_copy"].Ints, mask.Ints) {
		t.Errorf("outputs %v: y %+v ids %+v mask %+v", keys, res["y"], res["ids_copy"], res["mask_copy"])
	}
	// The wrong kind is refused by name.
	_, err = runCLI(t, "run", "--weights", p("g.onnx"), "--input", "x="+p("x.npy"), "--input", "ids="+p("x.npy"), "--input", "mask="+p("mask.npy"))
	if err == nil || !strings.Contains(err.Error(), `input "ids" is float32 (2, 3): want int64 values`) {
		t.Errorf("floats for an int64 input: %v", err)
	}
	_, err = runCLI(t, "run", "--weights", p("g.onnx"), "--input", "x="+p("x.npy"), "--input", "ids="+p("ids.npy"), "--input", "mask="+p("ids.npy"))
	if err == nil || !strings.Contains(err.Error(), `input "mask" is int32 (2, 3): want bool values`) {
		t.Errorf("ints for a bool input: %v", err)
	}
}
