package graph

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// mutate loads a fixture's ModelProto, lets f change it and compiles it.
func mutate(t *testing.T, f func(mp *onnxpb.ModelProto)) (*Graph, error) {
	t.Helper()
	b, err := os.ReadFile("../fixtures/onnx/dynamic_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, mp); err != nil {
		t.Fatal(err)
	}
	f(mp)
	b, _ = proto.Marshal(mp)
	m, err := loader.ParseONNX("mut.onnx", b, "")
	if err != nil {
		return nil, err
	}
	return Compile(m, Options{Threads: 1})
}

func findNode(mp *onnxpb.ModelProto, op string) *onnxpb.NodeProto {
	for _, n := range mp.Graph.Node {
		if n.GetOpType() == op {
			return n
		}
	}
	return nil
}

func run(g *Graph, shape ...int) error {
	n := 1
	for _, d := range shape {
		n *= d
	}
	_, err := g.Run(map[string]*tensor.Tensor{"input": {Shape: shape, Data: make([]float32, n)}})
	return err
}

func TestGraphErrors(t *testing.T) {
	// An unsupported op is named with its node.
	_, err := mutate(t, func(mp *onnxpb.ModelProto) {
		n := findNode(mp, "Tanh")
		n.OpType = proto.String("NonMaxSuppression")
		n.Name = proto.String("my_node")
	})
	if err == nil || !strings.Contains(err.Error(), `node "my_node" (NonMaxSuppression): operator NonMaxSuppression is not supported`) {
		t.Errorf("unsupported op: %v", err)
	}
	// A 3-D stride on a 2-D Conv is refused at load, naming the node and
	// the attribute.
	_, err = mutate(t, func(mp *onnxpb.ModelProto) {
		n := findNode(mp, "Conv")
		for _, a := range n.Attribute {
			if a.GetName() == "strides" {
				a.Ints = []int64{2, 2, 2}
			}
		}
	})
	if err == nil || !strings.Contains(err.Error(), "strides=[2 2 2]") {
		t.Errorf("stride: %v", err)
	}
	// A dangling input.
	_, err = mutate(t, func(mp *onnxpb.ModelProto) { findNode(mp, "Mul").Input[0] = "nowhere" })
	if err == nil || !strings.Contains(err.Error(), `input "nowhere" is not produced`) {
		t.Errorf("dangling: %v", err)
	}
	g, err := mutate(t, func(*onnxpb.ModelProto) {})
	if err != nil {
		t.Fatal(err)
	}
	// Wrong channel count, wrong rank, fixed dimension T.
	for _, c := range []struct {
		shape []int
		want  string
	}{
		{[]int{1, 3, 5, 4, 4}, "dimension 2 must be 2"},
		{[]int{1, 3, 2, 4}, "rank 5"},
		{[]int{1, 4, 2, 4, 4}, "dimension 1 must be 3"},
	} {
		if err := run(g, c.shape...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("input %v: %v, want %q", c.shape, err, c.want)
		}
	}
	if err := run(g, 2, 3, 2, 1, 9); err != nil {
		t.Errorf("valid dynamic sizes: %v", err)
	}
	// A Split whose sizes do not add up fails in the dry pass, naming the node.
	g, err = mutate(t, func(mp *onnxpb.ModelProto) {
		s := findNode(mp, "Split")
		s.Name = proto.String("bad_split")
		for _, in := range mp.Graph.Node {
			if in.GetOpType() == "Constant" && len(in.Output) == 1 && in.Output[0] == s.Input[1] {
				in.Attribute[0].T.RawData = in.Attribute[0].T.RawData[:len(in.Attribute[0].T.RawData)-8]
				in.Attribute[0].T.Dims = []int64{3}
			}
		}
	})
	if err == nil {
		err = run(g, 1, 3, 2, 4, 4)
	}
	var ge *Error
	if err == nil || !errors.As(err, &ge) || !strings.Contains(err.Error(), "bad_split") {
		t.Errorf("bad split: %v", err)
	}
}

// fuzzSeeds are small models that cover the ops and their attributes;
// each compiles and runs in microseconds, so the fuzzer explores.
func fuzzSeeds(t testing.TB) [][]byte {
	f := func(shape ...int) *tensor.Tensor { return seq(shape...) }
	i64 := func(v ...int64) *tensor.Tensor { return ints64([]int{len(v)}, v...) }
	x := map[string]*tensor.Tensor{"x": f(2, 3, 4)}
	type seed struct {
		opset  int64
		nodes  []*onnxpb.NodeProto
		feeds  map[string]*tensor.Tensor
		consts map[string]*tensor.Tensor
		outs   []string
	}
	// A Loop body: (i, cond, acc) -> (cond, acc + x·i, acc), reading x from
	// the outer scope.
	loopBody := graphProto([]*onnxpb.NodeProto{
		nodeProto("Cast", []string{"i"}, []string{"fi"}, attrI("to", 1)),
		nodeProto("Mul", []string{"x", "fi"}, []string{"xi"}),
		nodeProto("Add", []string{"acc", "xi"}, []string{"acc2"}),
		nodeProto("Identity", []string{"c"}, []string{"c2"}),
	}, nil, nil, "c2", "acc2", "acc")
	loopBody.Input = []*onnxpb.ValueInfoProto{valueProto("i", tensor.Int64, []int{}), valueProto("c", tensor.Bool, []int{}), valueProto("acc", tensor.Float32, nil)}
	thenG := graphProto([]*onnxpb.NodeProto{nodeProto("Relu", []string{"x"}, []string{"t"})}, nil, nil, "t")
	elseG := graphProto([]*onnxpb.NodeProto{nodeProto("Sigmoid", []string{"x"}, []string{"e"})}, nil, nil, "e")
	scanBody := graphProto([]*onnxpb.NodeProto{nodeProto("Add", []string{"s", "xs"}, []string{"s2"}), nodeProto("Identity", []string{"s2"}, []string{"o"})}, nil, nil, "s2", "o")
	scanBody.Input = []*onnxpb.ValueInfoProto{valueProto("s", tensor.Float32, nil), valueProto("xs", tensor.Float32, nil)}
	seqBody := graphProto([]*onnxpb.NodeProto{
		nodeProto("Cast", []string{"i"}, []string{"fi"}, attrI("to", 1)),
		nodeProto("Mul", []string{"x", "fi"}, []string{"xi"}),
		nodeProto("SequenceInsert", []string{"s", "xi"}, []string{"s2"}),
		nodeProto("Identity", []string{"c"}, []string{"c2"}),
	}, nil, nil, "c2", "s2")
	seqBody.Input = []*onnxpb.ValueInfoProto{valueProto("i", tensor.Int64, []int{}), valueProto("c", tensor.Bool, []int{}), {Name: ptr("s")}}
	seeds := []seed{
		{13, []*onnxpb.NodeProto{
			nodeProto("SequenceEmpty", nil, []string{"s0"}, attrI("dtype", 1)),
			nodeProto("Loop", []string{"m", "", "s0"}, []string{"s"}, attrG("body", seqBody)),
			nodeProto("ConcatFromSequence", []string{"s"}, []string{"a"}, attrI("axis", 0), attrI("new_axis", 1)),
			nodeProto("SequenceErase", []string{"s", "one"}, []string{"s1"}),
			nodeProto("SequenceAt", []string{"s1", "one"}, []string{"b"}),
			nodeProto("SplitToSequence", []string{"x", "m"}, []string{"s3"}, attrI("axis", 2)),
			nodeProto("SequenceLength", []string{"s3"}, []string{"n"}),
			nodeProto("SequenceConstruct", []string{"b", "b"}, []string{"s4"}),
			nodeProto("ConcatFromSequence", []string{"s4"}, []string{"y"}, attrI("axis", -1)),
		}, x, map[string]*tensor.Tensor{"m": ints64(nil, 3), "one": ints64(nil, 1)}, []string{"a", "n", "y"}},
		{14, []*onnxpb.NodeProto{
			nodeProto("Transpose", []string{"x"}, []string{"a"}, attrIs("perm", 2, 0, 1)),
			nodeProto("Reshape", []string{"a", "s"}, []string{"b"}, attrI("allowzero", 0)),
			nodeProto("Unsqueeze", []string{"b", "ax"}, []string{"c"}),
			nodeProto("Squeeze", []string{"c", "ax"}, []string{"d"}),
			nodeProto("Concat", []string{"d", "d"}, []string{"e"}, attrI("axis", -1)),
			nodeProto("Split", []string{"e", "sp"}, []string{"g", "h"}, attrI("axis", 1)),
			nodeProto("Slice", []string{"g", "st", "en", "ax", "ss"}, []string{"k"}),
			nodeProto("Gather", []string{"k", "gi"}, []string{"y"}, attrI("axis", 1)),
			nodeProto("Flatten", []string{"h"}, []string{"z"}, attrI("axis", 1)),
		}, x, map[string]*tensor.Tensor{"s": i64(0, -1), "ax": i64(0), "sp": i64(6, 6), "st": i64(-1), "en": i64(-100), "ss": i64(-2), "gi": ints64([]int{2}, 0, -1)}, []string{"y", "z"}},
		{13, []*onnxpb.NodeProto{
			nodeProto("Shape", []string{"x"}, []string{"s"}),
			nodeProto("Size", []string{"x"}, []string{"n"}),
			nodeProto("ConstantOfShape", []string{"s"}, []string{"c"}),
			nodeProto("Expand", []string{"x", "es"}, []string{"e"}),
			nodeProto("Tile", []string{"x", "tr"}, []string{"t"}),
			nodeProto("Range", []string{"r0", "n", "r1"}, []string{"r"}),
			nodeProto("Cast", []string{"r"}, []string{"y"}, attrI("to", 1)),
			nodeProto("Dropout", []string{"e"}, []string{"d", "m"}),
			nodeProto("Add", []string{"c", "e"}, []string{"z"}),
		}, x, map[string]*tensor.Tensor{"es": i64(2, 1, 1, 4), "tr": i64(1, 2, 1), "r0": ints64(nil, 0), "r1": ints64(nil, 5)}, []string{"y", "z", "t", "d", "m"}},
		{15, []*onnxpb.NodeProto{
			nodeProto("Shape", []string{"x"}, []string{"s"}, attrI("start", 1), attrI("end", -1)),
			nodeProto("CastLike", []string{"s", "x"}, []string{"y"}),
		}, x, nil, []string{"y"}},
		{13, []*onnxpb.NodeProto{
			nodeProto("ReduceSum", []string{"x", "ax"}, []string{"a"}, attrI("keepdims", 1), attrI("noop_with_empty_axes", 0)),
			nodeProto("ReduceMean", []string{"x"}, []string{"b"}, attrIs("axes", -1), attrI("keepdims", 0)),
			nodeProto("ReduceMax", []string{"b"}, []string{"c"}, attrIs("axes", 0)),
			nodeProto("ReduceLogSumExp", []string{"x"}, []string{"d"}),
			nodeProto("Softmax", []string{"x"}, []string{"e"}, attrI("axis", 1)),
			nodeProto("LogSoftmax", []string{"e"}, []string{"y"}, attrI("axis", -1)),
		}, x, map[string]*tensor.Tensor{"ax": i64(1)}, []string{"a", "c", "d", "y"}},
		{18, []*onnxpb.NodeProto{
			nodeProto("ReduceL2", []string{"x", "ax"}, []string{"a"}, attrI("keepdims", 0)),
			nodeProto("ReduceMin", []string{"x"}, []string{"b"}, attrI("noop_with_empty_axes", 1)),
			nodeProto("Split", []string{"b"}, []string{"c", "d"}, attrI("axis", 2), attrI("num_outputs", 2)),
		}, x, map[string]*tensor.Tensor{"ax": i64(0, 2)}, []string{"a", "c", "d"}},
		{11, []*onnxpb.NodeProto{
			nodeProto("MatMul", []string{"x", "w"}, []string{"a"}),
			nodeProto("Flatten", []string{"a"}, []string{"b"}),
			nodeProto("Gemm", []string{"b", "v", "c"}, []string{"y"}, attrI("transB", 1), attrF("alpha", 0.5), attrF("beta", 2)),
			nodeProto("Softmax", []string{"y"}, []string{"z"}),
		}, x, map[string]*tensor.Tensor{"w": f(4, 2), "v": f(3, 6), "c": f(3)}, []string{"z"}},
		{13, []*onnxpb.NodeProto{
			nodeProto("Loop", []string{"m", "cond", "x"}, []string{"acc", "all"}, attrG("body", loopBody)),
			nodeProto("ReduceSum", []string{"acc"}, []string{"s"}, attrI("keepdims", 0)),
			nodeProto("Cast", []string{"s"}, []string{"b"}, attrI("to", 9)),
			nodeProto("If", []string{"b"}, []string{"y"}, attrG("then_branch", thenG), attrG("else_branch", elseG)),
		}, x, map[string]*tensor.Tensor{"m": ints64(nil, 3), "cond": tensor.FromInts(tensor.Bool, []int64{1})}, []string{"all", "y"}},
		{11, []*onnxpb.NodeProto{
			nodeProto("Scan", []string{"s0", "x"}, []string{"s", "o"}, attrG("body", scanBody), attrI("num_scan_inputs", 1), attrIs("scan_input_axes", 1), attrIs("scan_output_directions", 1)),
		}, x, map[string]*tensor.Tensor{"s0": f(2, 4)}, []string{"s", "o"}},
		// A ConvLSTM cell step, small enough to run fast (fused at compile).
		{13, []*onnxpb.NodeProto{
			nodeProto("Concat", []string{"xc", "h"}, []string{"xh"}, attrI("axis", 1)),
			nodeProto("Conv", []string{"xh", "w", "b"}, []string{"z"}, attrIs("kernel_shape", 3, 3), attrIs("pads", 1, 1, 1, 1)),
			nodeProto("Split", []string{"z"}, []string{"zi", "zf", "zo", "zg"}, attrI("axis", 1)),
			nodeProto("Sigmoid", []string{"zi"}, []string{"i"}),
			nodeProto("Sigmoid", []string{"zf"}, []string{"fg"}),
			nodeProto("Sigmoid", []string{"zo"}, []string{"o"}),
			nodeProto("Tanh", []string{"zg"}, []string{"g"}),
			nodeProto("Mul", []string{"fg", "c"}, []string{"fc"}),
			nodeProto("Mul", []string{"i", "g"}, []string{"ig"}),
			nodeProto("Add", []string{"fc", "ig"}, []string{"c2"}),
			nodeProto("Tanh", []string{"c2"}, []string{"tc"}),
			nodeProto("Mul", []string{"o", "tc"}, []string{"h2"}),
		}, map[string]*tensor.Tensor{"xc": f(1, 1, 3, 3), "h": f(1, 2, 3, 3), "c": f(1, 2, 3, 3)}, map[string]*tensor.Tensor{"w": f(8, 3, 3, 3), "b": f(8)}, []string{"h2", "c2"}},
	}
	var out [][]byte
	for _, s := range seeds {
		b, err := proto.Marshal(modelProto(s.opset, graphProto(s.nodes, s.feeds, s.consts, s.outs...)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, chainSeeds(t)...) // fuse_elementwise_test.go
}

// TestFuzzSeeds: every seed compiles and runs (so the fuzzer starts from
// models that work).
func TestFuzzSeeds(t *testing.T) {
	for i, b := range fuzzSeeds(t) {
		m, err := loader.ParseONNX("seed.onnx", b, "")
		if err != nil {
			t.Fatal(err)
		}
		if errs := Check(m); len(errs) > 0 {
			t.Errorf("seed %d: %v", i, errs)
		}
		g, err := Compile(m, Options{Threads: 1})
		if err != nil {
			t.Errorf("seed %d: %v", i, err)
			continue
		}
		if _, err := g.Run(fuzzInputs(g)); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}

// fuzzInputs feeds every graph input: its fixed dimensions when small,
// else 2; values sin(i) (floats), i mod 3 (integers), alternating (bools).
func fuzzInputs(g *Graph) map[string]*tensor.Tensor {
	feeds := map[string]*tensor.Tensor{}
	for _, in := range g.Inputs() {
		shape := make([]int, len(in.Dims))
		for i := range shape {
			shape[i] = 2
			if i < len(in.fixed) && in.fixed[i] >= 0 && in.fixed[i] <= 8 {
				shape[i] = in.fixed[i]
			}
		}
		n := numel(shape)
		switch dt := inputTypes[in.Type]; dt {
		case tensor.Int64, tensor.Int32, tensor.Bool:
			v := make([]int64, n)
			for i := range v {
				v[i] = int64(i % 3)
				if dt == tensor.Bool {
					v[i] = int64(i % 2)
				}
			}
			feeds[in.Name] = tensor.FromInts(dt, v, shape...)
		default:
			feeds[in.Name] = seq(shape...)
		}
	}
	return feeds
}

// FuzzGraph: checking, compiling and running a mutated model never panics
// and never reaches an internal error: every problem is a checked error.
func FuzzGraph(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	// Keep mutated shapes and loops small (restored for the tests that run
	// after).
	savedValues, savedIters := maxValues, maxIterations
	maxValues, maxIterations = 1<<16, 1<<10
	f.Cleanup(func() { maxValues, maxIterations = savedValues, savedIters })
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := loader.ParseONNX("fuzz.onnx", data, "")
		if err != nil {
			return
		}
		for _, err := range Check(m) {
			if e, ok := err.(*Error); ok && e.Kind == Internal {
				t.Fatalf("Check: %v", err)
			}
		}
		g, err := Compile(m, Options{Threads: 1})
		if err != nil {
			if e, ok := err.(*Error); ok && e.Kind == Internal {
				t.Fatalf("Compile: %v", err)
			}
			return
		}
		for _, in := range g.Inputs() {
			if len(in.Dims) > 6 {
				return
			}
		}
		if _, err = g.Run(fuzzInputs(g)); err != nil {
			if e, ok := err.(*Error); ok && e.Kind == Internal {
				t.Fatalf("Run: %v", err)
			}
		}
	})
}

// TestStaticShapeErrorAtLoad: in a static graph a shape error is found by
// Compile, before any run.
func TestStaticShapeErrorAtLoad(t *testing.T) {
	b, err := os.ReadFile("../fixtures/onnx/static_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, mp); err != nil {
		t.Fatal(err)
	}
	// Declare 3 input channels where the weights want 2.
	mp.Graph.Input[0].Type.GetTensorType().Shape.Dim[2].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 3}
	b, _ = proto.Marshal(mp)
	m, err := loader.ParseONNX("static.onnx", b, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(m, Options{}); err == nil || !strings.Contains(err.Error(), "channels") {
		t.Errorf("Compile: %v, want a channel mismatch", err)
	}
}

// FuzzOps builds one node of any op in the table from the fuzzer's bytes:
// the opset, input count, float or integer inputs of small random shapes
// and values, and every declared attribute present or not with random
// values. Checking, compiling and running it must end in a result or a
// checked error, never a panic or an internal error. Where FuzzGraph
// mutates protobuf bytes, this explores attribute and shape combinations.
func FuzzOps(f *testing.F) {
	ops := fuzzOpList()
	for i := range ops {
		f.Add([]byte{byte(i), 6, 2, 0, 2, 2, 3, 1, 1, 0, 2, 3, 1, 1, 1, 255, 2, 1, 0})
	}
	savedValues := maxValues
	maxValues = 1 << 12
	f.Cleanup(func() { maxValues = savedValues })
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOp(t, ops, data) })
}

// fuzzOpList: every op in the table but those with graph attributes
// (FuzzGraph's seeds cover them) and the test-only ones.
func fuzzOpList() []string {
	var ops []string
	for _, name := range SupportedOps() {
		d := table[name]
		graphAttr := slices.ContainsFunc(d.attrs, func(a attrSpec) bool { return a.kind == onnxpb.AttributeProto_GRAPH })
		if !graphAttr && !strings.HasPrefix(name, "Test") {
			ops = append(ops, name)
		}
	}
	return ops
}

func fuzzOp(t *testing.T, ops []string, data []byte) {
	pos := 0
	next := func() int {
		if pos >= len(data) {
			return 0
		}
		pos++
		return int(data[pos-1])
	}
	small := func() int64 { return int64(int8(next())) % 8 } // -7..7
	op := ops[next()%len(ops)]
	d := table[op]
	opset := int64(7 + next()%12)
	nin := d.in[0] + next()%(min(d.in[1], 5)-d.in[0]+1)
	nout := d.out[0] + next()%(min(d.out[1], 4)-d.out[0]+1)
	feeds, consts := map[string]*tensor.Tensor{}, map[string]*tensor.Tensor{}
	in := make([]string, nin)
	for i := range in {
		name := fmt.Sprintf("i%d", i)
		in[i] = name
		shape := make([]int, next()%5)
		for k := range shape {
			shape[k] = next() % 4
		}
		switch next() % 4 {
		case 0: // omitted (optional inputs only pass the checks)
			in[i] = ""
		case 1, 2:
			feeds[name] = seq(shape...)
		default:
			v := make([]int64, numel(shape))
			for k := range v {
				v[k] = small()
			}
			consts[name] = ints64(shape, v...)
		}
	}
	var attrs []*onnxpb.AttributeProto
	for _, a := range d.attrs {
		if next()%2 == 0 {
			continue
		}
		switch a.kind {
		case onnxpb.AttributeProto_INT:
			attrs = append(attrs, attrI(a.name, small()))
		case onnxpb.AttributeProto_INTS:
			v := make([]int64, next()%5)
			for k := range v {
				v[k] = small()
			}
			attrs = append(attrs, attrIs(a.name, v...))
		case onnxpb.AttributeProto_FLOAT:
			attrs = append(attrs, attrF(a.name, float32(small())/4))
		case onnxpb.AttributeProto_STRING:
			s := "bogus"
			if len(a.values) > 0 && next()%4 != 0 {
				s = a.values[next()%len(a.values)]
			}
			attrs = append(attrs, attrS(a.name, s))
		case onnxpb.AttributeProto_TENSOR:
			attrs = append(attrs, &onnxpb.AttributeProto{Name: proto.String(a.name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: tensorProto("", ints64([]int{1}, small()))})
		}
	}
	outs := make([]string, nout)
	for i := range outs {
		outs[i] = fmt.Sprintf("o%d", i)
	}
	mp := modelProto(opset, graphProto([]*onnxpb.NodeProto{nodeProto(op, in, outs, attrs...)}, feeds, consts, outs...))
	b, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := loader.ParseONNX("fuzz.onnx", b, "")
	if err != nil {
		return
	}
	internal := func(err error) bool {
		e, ok := err.(*Error)
		return ok && e.Kind == Internal
	}
	for _, err := range Check(m) {
		if internal(err) {
			t.Fatalf("Check: %v", err)
		}
	}
	g, err := Compile(m, Options{Threads: 1 + next()%2})
	if err != nil {
		if internal(err) {
			t.Fatalf("Compile: %v", err)
		}
		return
	}
	_, err = g.Run(feeds)
	if err != nil && internal(err) {
		t.Fatalf("Run: %v", err)
	}
	if fuzzOpsRan != nil && err == nil {
		fuzzOpsRan[op]++
	}
}

// fuzzOpsRan counts, per op, the FuzzOps inputs that ran to the end (set by
// a local coverage check, nil otherwise).
var fuzzOpsRan map[string]int
