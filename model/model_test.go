package model

import (
	"errors"
	"math"
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

const fx = "../fixtures/"

// closeTo checks every value of want (written by PyTorch) within the
// parity bar 1e-5 + 1e-5·|ref|.
func closeTo(t *testing.T, label string, got, want *tensor.Tensor) {
	t.Helper()
	if got == nil || !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("%s: got %v, want shape %v", label, got, want.Shape)
	}
	for i, v := range want.Data {
		if d := math.Abs(float64(got.Data[i] - v)); !(d <= 1e-5+1e-5*math.Abs(float64(v))) {
			t.Fatalf("%s[%d] = %v, PyTorch %v", label, i, got.Data[i], v)
		}
	}
}

func readNPY(t *testing.T, path string) *tensor.Tensor {
	t.Helper()
	x, err := loader.ReadNPY(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func readNPZ(t *testing.T, path string) map[string]*tensor.Tensor {
	t.Helper()
	ts, _, err := loader.ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// Every format opens through one call and runs to PyTorch's numbers.
func TestOpenAndRunEveryFormat(t *testing.T) {
	npz := filepath.Join(t.TempDir(), "weights.npz")
	ck, err := loader.LoadPT(fx + "forward/two-layer-mixed-kernels/weights.pt")
	if err != nil {
		t.Fatal(err)
	}
	if err := loader.WriteNPZ(npz, ck.Names, ck.Tensors); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		weights, format, input, expected string
		kind                             Kind
		opts                             Options
	}{
		{fx + "forward/two-layer-mixed-kernels/weights.pt", loader.FormatPTZip, fx + "forward/two-layer-mixed-kernels/input.npy", fx + "forward/two-layer-mixed-kernels/expected.npz", KindConvLSTM, Options{}},
		{fx + "forward/legacy-format/weights.pt", loader.FormatPTLegacy, fx + "forward/legacy-format/input.npy", fx + "forward/legacy-format/expected.npz", KindConvLSTM, Options{}},
		{fx + "forward/multi-cell-prefix-enc2/weights.pt", loader.FormatPTZip, fx + "forward/multi-cell-prefix-enc2/input.npy", fx + "forward/multi-cell-prefix-enc2/expected.npz", KindConvLSTM, Options{Prefix: "enc2"}},
		{npz, loader.FormatNPZ, fx + "forward/two-layer-mixed-kernels/input.npy", fx + "forward/two-layer-mixed-kernels/expected.npz", KindConvLSTM, Options{Threads: 1}},
		{fx + "safetensors/model_f32.safetensors", loader.FormatSafetensors, fx + "safetensors/input.npy", fx + "safetensors/ref_f32.npz", KindConvLSTM, Options{}},
		{fx + "onnx/dynamic_op13.onnx", loader.FormatONNX, fx + "onnx/dynamic_op13.input.npy", fx + "onnx/dynamic_op13.ref.npz", KindGraph, Options{Threads: 2}},
	} {
		t.Run(filepath.Base(c.weights), func(t *testing.T) {
			m, err := Open(c.weights, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Format != c.format || m.Kind != c.kind || (m.Native == nil) != (c.kind == KindGraph) || (m.Graph == nil) != (c.kind == KindConvLSTM) {
				t.Fatalf("opened as %s %s (native %v, graph %v), want %s %s", m.Format, m.Kind, m.Native != nil, m.Graph != nil, c.format, c.kind)
			}
			if m.Inputs()[0].Name != "input" || m.Outputs()[0].Name != "output" {
				t.Errorf("inputs %v, outputs %v", m.Inputs(), m.Outputs())
			}
			out, err := m.Run(map[string]*tensor.Tensor{"input": readNPY(t, c.input)}, RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := readNPZ(t, c.expected)
			for k, w := range want {
				closeTo(t, k, out[k], w)
			}
			for _, o := range m.Outputs() {
				if out[o.Name] == nil && !o.Optional {
					t.Errorf("output %s declared, not returned", o.Name)
				}
			}
		})
	}
}

// A native model's inputs and outputs are the CLI's: input, optional h_l
// and c_l, and output, h_l, c_l, output_l with AllLayers; the initial state
// is all layers or none.
func TestNativeIO(t *testing.T) {
	dir := fx + "forward/initial-state/"
	m, err := Open(dir+"weights.pt", Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var in, out []string
	for _, io := range m.Inputs() {
		in = append(in, io.String())
	}
	for _, io := range m.Outputs() {
		out = append(out, io.Name)
	}
	if want := []string{"input float32 (batch, time, 2, height, width)", "h_0 float32 (batch, 3, height, width) (optional)",
		"c_0 float32 (batch, 3, height, width) (optional)", "h_1 float32 (batch, 4, height, width) (optional)", "c_1 float32 (batch, 4, height, width) (optional)"}; !slices.Equal(in, want) {
		t.Errorf("inputs %q, want %q", in, want)
	}
	if want := []string{"output", "h_0", "c_0", "h_1", "c_1", "output_0", "output_1"}; !slices.Equal(out, want) {
		t.Errorf("outputs %q, want %q", out, want)
	}
	inputs := readNPZ(t, dir+"state_in.npz")
	inputs["input"] = readNPY(t, dir+"input.npy")
	res, err := m.Run(inputs, RunOptions{AllLayers: true})
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range readNPZ(t, dir+"expected.npz") {
		closeTo(t, k, res[k], w)
	}
	if res["output_1"] == nil || !slices.Equal(res["output_1"].Data, res["output"].Data) {
		t.Errorf("AllLayers: output_1 missing or not the last layer's output")
	}
	delete(inputs, "c_1")
	if _, err := m.Run(inputs, RunOptions{}); err == nil || !strings.Contains(err.Error(), "c_1 missing") {
		t.Errorf("a partial state: %v", err)
	}
}

func TestRunErrors(t *testing.T) {
	m, err := Open(fx+"forward/one-layer-3x3/weights.pt", Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := readNPY(t, fx+"forward/one-layer-3x3/input.npy")
	ints := tensor.FromInts(tensor.Int64, make([]int64, x.NumElements()), x.Shape...)
	for _, c := range []struct {
		name   string
		inputs map[string]*tensor.Tensor
		want   []string
	}{
		{"nothing", map[string]*tensor.Tensor{}, []string{"input input float32 (batch, time, 2, height, width) is missing"}},
		{"unknown name", map[string]*tensor.Tensor{"input": x, "frames": x}, []string{`no input named "frames"`, "the model takes input"}},
		{"integers", map[string]*tensor.Tensor{"input": ints}, []string{`input "input" is int64`, "want float32 values"}},
		{"channels", map[string]*tensor.Tensor{"input": tensor.New(1, 3, 5, 6, 6)}, []string{"(1, 3, 5, 6, 6)", "5 channels, the model takes 2"}},
		{"rank", map[string]*tensor.Tensor{"input": tensor.New(3, 2, 6, 6)}, []string{"4 dimensions, the model takes 5"}},
		{"state shape", map[string]*tensor.Tensor{"input": x, "h_0": tensor.New(1, 3, 6, 6), "c_0": tensor.New(1, 4, 6, 6)}, []string{`"h_0"`, "3 hidden channels, the model takes 4"}},
		{"inconsistent", map[string]*tensor.Tensor{"input": {Shape: []int{1, 3, 2, 6, 6}, DType: tensor.Float32, Data: make([]float32, 5)}}, []string{"5 values"}},
	} {
		_, err := m.Run(c.inputs, RunOptions{})
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to say %q", c.name, err, w)
			}
		}
	}
	m.Close()
	if _, err := m.Run(map[string]*tensor.Tensor{"input": x}, RunOptions{}); !errors.Is(err, errClosed) {
		t.Errorf("run after Close: %v", err)
	}
	if _, err := Open(fx+"forward/one-layer-3x3/input.npy", Options{}); err == nil || !strings.Contains(err.Error(), "NumPy array") {
		t.Errorf("an array opened as a model: %v", err)
	}
}

// Options that do not apply to a graph are errors naming each, not
// ignored.
func TestGraphOptions(t *testing.T) {
	g := fx + "onnx/dynamic_op13.onnx"
	_, err := Open(g, Options{Prefix: "m", Gates: "fiog", Direct: true})
	var oe *OptionError
	if !errors.As(err, &oe) || !slices.Equal(oe.Options, []string{"Prefix", "Gates", "Direct"}) || oe.Kind != KindGraph {
		t.Fatalf("graph with native options: %v", err)
	}
	m, err := Open(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := readNPY(t, fx+"onnx/dynamic_op13.input.npy")
	if _, err := m.Run(map[string]*tensor.Tensor{"input": x}, RunOptions{TimeFirst: true, AllLayers: true}); !errors.As(err, &oe) || !slices.Equal(oe.Options, []string{"TimeFirst", "AllLayers"}) {
		t.Errorf("graph with run options: %v", err)
	}
	if _, err := m.Run(map[string]*tensor.Tensor{"input": tensor.New(2, 4, 2, 4, 7)}, RunOptions{}); err == nil || !strings.Contains(err.Error(), "dimension 1 is 4, the model takes 3") {
		t.Errorf("a fixed dimension of the graph: %v", err)
	}
}

// The ConvLSTM a graph holds is recovered with the gate order its cells
// use, from any format.
func TestOpenConvLSTM(t *testing.T) {
	for _, c := range []struct{ path, gates string }{
		{fx + "onnx/fiog_nobias_op13.onnx", "fiog"}, {fx + "onnx/dynamic_op11.onnx", "ifog"}, {fx + "forward/gates-ifgo/weights.pt", "ifog"},
	} {
		cm, err := OpenConvLSTM(c.path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if string(cm.Gates) != c.gates || cm.Source.File != c.path {
			t.Errorf("%s: gates %s from %s, want %s", c.path, cm.Gates, cm.Source.File, c.gates)
		}
	}
	cm, err := OpenConvLSTM(fx+"onnx/fiog_nobias_op13.onnx", Options{Gates: "ifgo"})
	if err != nil || cm.Gates != "ifgo" {
		t.Errorf("--gates over the graph's own: %v %v", cm, err)
	}
	if _, err := OpenConvLSTM(fx+"onnx/fiog_nobias_op13.onnx", Options{Prefix: "enc"}); err == nil || !strings.Contains(err.Error(), `"enc"`) {
		t.Errorf("unknown prefix: %v", err)
	}
}

// Integer and bool inputs are accepted for integer and bool graph inputs,
// relabelled exactly; values of the other kind are refused by name.
func TestInputKinds(t *testing.T) {
	m := &Model{File: "g.onnx", Kind: KindGraph, inputs: []IO{
		{Name: "ids", DType: tensor.Int64, Dims: []int{-1}}, {Name: "mask", DType: tensor.Bool, Dims: []int{2}}, {Name: "x", DType: tensor.Float32},
	}}
	ok := map[string]*tensor.Tensor{
		"ids": tensor.FromInts(tensor.Int32, []int64{1, 2, 3}, 3), "mask": tensor.FromInts(tensor.Bool, []int64{0, 1}, 2),
		"x": {Shape: []int{1}, DType: tensor.Float16, Data: []float32{1}},
	}
	if err := m.CheckInputs(ok); err != nil {
		t.Fatal(err)
	}
	if got := asDeclared(m.inputs[0], ok["ids"]); got.DType != tensor.Int64 || !slices.Equal(got.Ints, []int64{1, 2, 3}) || ok["ids"].DType != tensor.Int32 {
		t.Errorf("int32 relabelled as %s %v (and the caller's tensor changed to %s)", got.DType, got.Ints, ok["ids"].DType)
	}
	m.inputs[0].DType = tensor.Int32
	if err := m.CheckInputs(map[string]*tensor.Tensor{"ids": tensor.FromInts(tensor.Int64, []int64{1, 1 << 31, 3}, 3), "mask": ok["mask"], "x": ok["x"]}); err == nil || !strings.Contains(err.Error(), "value 2147483648 at index 1 does not fit the int32") {
		t.Errorf("an int64 beyond int32: %v", err)
	}
	m.inputs[0].DType = tensor.Int64
	for name, bad := range map[string]*tensor.Tensor{
		"ids":  tensor.New(3),
		"mask": tensor.FromInts(tensor.Uint8, []int64{0, 1}, 2),
		"x":    tensor.FromInts(tensor.Int64, []int64{1}, 1),
	} {
		in := map[string]*tensor.Tensor{}
		for k, v := range ok {
			in[k] = v
		}
		in[name] = bad
		if err := m.CheckInputs(in); err == nil || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("%s as %s: %v", name, bad.DType, err)
		}
	}
}

// Inspect describes every model in a file in one layout, and reads no
// weight values.
func TestInspectWeights(t *testing.T) {
	d, err := Inspect(fx+"real/moving-mnist-encdec.pt", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mi := range d.Models {
		names = append(names, mi.Name)
		if !mi.Runnable || mi.ConvLSTM == nil || mi.ConvLSTM.Layers[0].HiddenDim != 32 || mi.Use != "run --prefix "+mi.Name || mi.Inputs[0].Dims[2] != 32 {
			t.Errorf("%s: %+v", mi.Name, mi)
		}
	}
	if !slices.Equal(names, []string{"enc1", "enc2", "dec1", "dec2"}) || d.Format != loader.FormatPTZip {
		t.Errorf("models %v in %s", names, d.Format)
	}
	if !slices.ContainsFunc(d.Skipped, func(s string) bool { return strings.HasPrefix(s, "conv1.0.weight float32 (16, 1, 5, 5)") }) {
		t.Errorf("skipped %v lacks conv1.0.weight", d.Skipped)
	}
	d, err = Inspect(fx+"safetensors/model_f16.safetensors", Options{})
	if err != nil || len(d.Models) != 1 || d.Models[0].ConvLSTM.Gates != "ifgo" || d.Models[0].ConvLSTM.GatesFrom != "metadata" || d.DTypes[0] != "float16" {
		t.Errorf("safetensors: %v %+v", err, d)
	}
	d, err = Inspect(fx+"forward/one-layer-3x3/input.npy", Options{})
	if err != nil || len(d.Models) != 0 || !strings.Contains(d.Problem, "float32 (1, 3, 2, 6, 6)") {
		t.Errorf("npy: %v %+v", err, d)
	}
	d, err = Inspect(fx+"pt/dtypes.npz", Options{})
	if err != nil || len(d.Models) != 0 || !strings.Contains(d.Problem, "no ConvLSTM weights found") {
		t.Errorf("an npz of other arrays: %v %+v", err, d)
	}
	if _, err := Inspect(fx+"real/moving-mnist-encdec.pt", Options{Gates: "abcd"}); err == nil || !strings.Contains(err.Error(), "abcd") {
		t.Errorf("bad gates: %v", err)
	}
}

func TestInspectGraph(t *testing.T) {
	d, err := Inspect(fx+"onnx/fiog_nobias_op13.onnx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Models) != 2 || d.Models[0].Kind != KindGraph || !d.Models[0].Runnable || d.Models[0].Graph.Cells["fiog"] != 6 {
		t.Fatalf("%+v", d.Models)
	}
	c := d.Models[1]
	if c.Kind != KindConvLSTM || c.Name != "m" || c.ConvLSTM.Gates != "fiog" || c.ConvLSTM.GatesFrom != "graph" || len(c.ConvLSTM.Layers) != 2 || c.ConvLSTM.Layers[1].KernelW != 3 {
		t.Errorf("ConvLSTM among the initialisers: %+v %+v", c, c.ConvLSTM)
	}
	// Without its external weights file, the structure is still described;
	// the gate order cannot be read from a graph that cannot be loaded.
	dir := t.TempDir()
	data, _ := os.ReadFile(fx + "onnx/external_op13.onnx")
	p := filepath.Join(dir, "m.onnx")
	os.WriteFile(p, data, 0o644)
	d, err = Inspect(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Models[0].Runnable || !strings.Contains(d.Models[0].Problem, "external data") || len(d.Models[0].Inputs) != 1 {
		t.Errorf("graph without its data: %+v", d.Models[0])
	}
	if len(d.Models) != 2 || d.Models[1].Runnable || !strings.Contains(d.Models[1].Problem, "--gates") || d.Models[1].ConvLSTM.Layers[0].HiddenDim != 3 {
		t.Errorf("its ConvLSTM: %+v", d.Models[1])
	}
	if d, err = Inspect(p, Options{Gates: "ifog"}); err != nil || !d.Models[1].Runnable || d.Models[1].ConvLSTM.GatesFrom != "option" {
		t.Errorf("with --gates: %v %+v", err, d.Models[1])
	}
}

// Every unsupported op of a graph is listed at once, subgraphs and other
// domains included, and the graph is not decoded.
func TestInspectUnsupportedOps(t *testing.T) {
	node := func(op, name, domain string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		n := &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(name), Input: in, Output: out, Attribute: attrs}
		if domain != "" {
			n.Domain = proto.String(domain)
		}
		return n
	}
	vi := func(name string, dims ...int64) *onnxpb.ValueInfoProto {
		var ds []*onnxpb.TensorShapeProto_Dimension
		for _, d := range dims {
			if d < 0 {
				ds = append(ds, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "n"}})
			} else {
				ds = append(ds, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
			}
		}
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(1), Shape: &onnxpb.TensorShapeProto{Dim: ds}}}}}
	}
	body := &onnxpb.GraphProto{Name: proto.String("then"), Node: []*onnxpb.NodeProto{node("NonZero", "nz", "", []string{"a"}, []string{"t"})}, Output: []*onnxpb.ValueInfoProto{vi("t", -1)}}
	mp := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("g"),
			Node: []*onnxpb.NodeProto{
				node("Einsum", "ein1", "", []string{"x"}, []string{"a"}),
				node("Einsum", "ein2", "", []string{"a"}, []string{"b"}),
				node("Relu", "relu", "", []string{"b"}, []string{"c"}),
				node("Fancy", "f", "com.example", []string{"c"}, []string{"d"}),
				node("If", "if", "", []string{"cond"}, []string{"y"}, &onnxpb.AttributeProto{Name: proto.String("then_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: body}),
			},
			Input:  []*onnxpb.ValueInfoProto{vi("x", -1, 3), vi("cond")},
			Output: []*onnxpb.ValueInfoProto{vi("y", -1)},
		},
	}
	data, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	d, err := InspectBytes("unsupported.onnx", data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := d.Models[0]
	var ops []string
	for _, u := range g.Graph.Unsupported {
		ops = append(ops, u.Op)
	}
	if !slices.Equal(ops, []string{"Einsum", "NonZero", "com.example.Fancy"}) || g.Graph.Unsupported[0].Count != 2 || g.Graph.Subgraphs != 1 || g.Graph.Nodes != 6 {
		t.Errorf("unsupported %v (%+v), %d nodes, %d subgraphs", ops, g.Graph.Unsupported, g.Graph.Nodes, g.Graph.Subgraphs)
	}
	if g.Runnable || !strings.Contains(g.Problem, `3 operator type(s) not supported: Einsum (2 node(s), e.g. "ein1")`) {
		t.Errorf("problem %q", g.Problem)
	}
	// graph.Check's list: every node at fault, attributes included (the
	// If lacks its else_branch).
	var msgs []string
	for _, p := range g.Graph.Problems {
		msgs = append(msgs, p.Message)
	}
	all := strings.Join(msgs, "\n")
	if len(g.Graph.Problems) != 4 || g.Graph.Problems[0].Op != "Einsum" || !g.Graph.Problems[0].Unsupported || g.Graph.Problems[3].Node != "if" {
		t.Errorf("problems %+v", g.Graph.Problems)
	}
	for _, w := range []string{`"ein1" (Einsum)`, `"ein2" (Einsum)`, `"f" (Fancy)`, `"if" (If): missing graph attribute else_branch`} {
		if !strings.Contains(all, w) {
			t.Errorf("problems lack %s:\n%s", w, all)
		}
	}
	if len(g.Inputs) != 2 || g.Inputs[0].DimString() != "(n, 3)" || g.Inputs[1].DimString() != "()" {
		t.Errorf("inputs %v", g.Inputs)
	}
	// Open refuses the same graph, naming an op.
	if _, err := OpenBytes("unsupported.onnx", data, Options{}); err == nil || !strings.Contains(err.Error(), "Einsum") {
		t.Errorf("open: %v", err)
	}
}

// Run is safe for concurrent use (a native model's runs take turns on its
// one runtime; a graph's run side by side), and each call gets the same
// numbers as a call alone.
func TestConcurrentRuns(t *testing.T) {
	for _, c := range []struct{ weights, input string }{
		{fx + "forward/two-layer-mixed-kernels/weights.pt", fx + "forward/two-layer-mixed-kernels/input.npy"},
		{fx + "onnx/dynamic_op13.onnx", fx + "onnx/dynamic_op13.input.npy"},
	} {
		m, err := Open(c.weights, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		in := map[string]*tensor.Tensor{"input": readNPY(t, c.input)}
		alone, err := m.Run(in, RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				out, err := m.Run(in, RunOptions{})
				if err == nil && !slices.Equal(out["output"].Data, alone["output"].Data) {
					err = errors.New("output differs from a run alone")
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Errorf("%s: %v", c.weights, err)
			}
		}
		m.Close()
	}
}

// Outputs handed back by Recycle are written over by the next Run, which
// gives the same values as before.
func TestRecycle(t *testing.T) {
	m, err := Open(fx+"forward/one-layer-3x3/weights.pt", Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	x := readNPY(t, fx+"forward/one-layer-3x3/input.npy")
	first, err := m.Run(map[string]*tensor.Tensor{"input": x}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{}
	buf := map[string]*float32{}
	for k, v := range first {
		want[k] = append([]float32(nil), v.Data...)
		buf[k] = &v.Data[0]
	}
	m.Recycle(first)
	second, err := m.Run(map[string]*tensor.Tensor{"input": x}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reused := 0
	for k, v := range second {
		if !slices.Equal(v.Data, want[k]) {
			t.Errorf("%s differs after Recycle", k)
		}
		for _, p := range buf {
			if &v.Data[0] == p {
				reused++
			}
		}
	}
	if reused != len(second) {
		t.Errorf("%d of %d outputs written into recycled buffers", reused, len(second))
	}
}
