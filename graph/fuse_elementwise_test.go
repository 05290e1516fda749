package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// tnode is a node of a test graph.
type tnode struct {
	op      string
	in, out []string
	attrs   []*onnxpb.AttributeProto
}

// testModel is a small float32 graph: inputs with fixed shapes, float
// initialisers, nodes and outputs.
type testModel struct {
	opset   int64
	inputs  []string
	shapes  map[string][]int
	consts  map[string]*tensor.Tensor
	nodes   []tnode
	outputs []string
}

func (m testModel) load(t testing.TB, opts Options) *Graph {
	t.Helper()
	vi := func(name string, shape []int) *onnxpb.ValueInfoProto {
		tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1)}
		if shape != nil {
			tt.Shape = &onnxpb.TensorShapeProto{}
			for _, d := range shape {
				tt.Shape.Dim = append(tt.Shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
			}
		}
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}}
	}
	g := &onnxpb.GraphProto{Name: proto.String("t")}
	for _, name := range m.inputs {
		g.Input = append(g.Input, vi(name, m.shapes[name]))
	}
	for _, name := range m.outputs {
		g.Output = append(g.Output, vi(name, nil))
	}
	for _, name := range sortedKeys(m.consts) {
		c := m.consts[name]
		dims := make([]int64, len(c.Shape))
		for i, d := range c.Shape {
			dims[i] = int64(d)
		}
		g.Initializer = append(g.Initializer, &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(1), FloatData: c.Data})
	}
	for i, n := range m.nodes {
		g.Node = append(g.Node, &onnxpb.NodeProto{OpType: proto.String(n.op), Name: proto.String(fmt.Sprintf("n%d_%s", i, n.op)), Input: n.in, Output: n.out, Attribute: n.attrs})
	}
	mp := &onnxpb.ModelProto{IrVersion: proto.Int64(8), OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(m.opset)}}, Graph: g}
	b, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := loader.ParseONNX("test.onnx", b, "")
	if err != nil {
		t.Fatal(err)
	}
	gr, err := Compile(lm, opts)
	if err != nil {
		t.Fatal(err)
	}
	return gr
}

// feed draws every input: normal values times 3 and, at fixed places, the
// awkward ones (±0, ±Inf, NaN, huge, tiny).
func (m testModel) feed(seed uint64) map[string]*tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 1))
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e30, -1e30, 1e-30, -88, 88}
	feed := map[string]*tensor.Tensor{}
	for _, name := range m.inputs {
		x := tensor.New(m.shapes[name]...)
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64() * 3)
			if i%97 == 13 {
				x.Data[i] = special[(i/97)%len(special)]
			}
		}
		feed[name] = x
	}
	return feed
}

func f32(shape []int, v ...float32) *tensor.Tensor { return tensor.FromFloats(v, shape...) }

func fattr(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// fusedOps lists the op of every node the main graph runs.
func fusedOps(g *Graph) []string {
	var ops []string
	for _, n := range g.main.nodes {
		ops = append(ops, n.op)
	}
	return ops
}

// sameBits: equal float32 bit patterns (any NaN equals any NaN).
func sameBits(a, b []float32) (int, bool) {
	if len(a) != len(b) {
		return -1, false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return i, false
		}
	}
	return 0, true
}

var x2345 = []int{2, 3, 4, 5}

// TestElementwiseFusion: each chain is fused as expected, and the fused
// graph's outputs are bit-identical to the node-by-node graph's, with one
// thread and with three (the fused node computes every value with the same
// kernels, in the same order, as the original nodes).
func TestElementwiseFusion(t *testing.T) {
	sqrt2 := f32(nil, float32(math.Sqrt2))
	one, half := f32(nil, 1), f32(nil, 0.5)
	big := []int{3, 16, 33, 65} // several blocks, runs that straddle them, threads
	cases := []struct {
		name string
		m    testModel
		want []string // ops of the fused graph's nodes
	}{
		{"GELU as torch exports it", testModel{opset: 17, inputs: []string{"x"}, shapes: map[string][]int{"x": big},
			consts: map[string]*tensor.Tensor{"c": sqrt2, "one": one, "half": half},
			nodes: []tnode{{"Div", []string{"x", "c"}, []string{"d"}, nil}, {"Erf", []string{"d"}, []string{"e"}, nil},
				{"Add", []string{"e", "one"}, []string{"a"}, nil}, {"Mul", []string{"x", "a"}, []string{"m"}, nil},
				{"Mul", []string{"m", "half"}, []string{"y"}, nil}},
			outputs: []string{"y"}}, []string{"Div+Erf+Add+Mul+Mul"}},
		{"GELU in place over a dying value", testModel{opset: 17, inputs: []string{"x"}, shapes: map[string][]int{"x": big},
			consts: map[string]*tensor.Tensor{"c": sqrt2, "one": one, "half": half},
			nodes: []tnode{{"Transpose", []string{"x"}, []string{"t"}, []*onnxpb.AttributeProto{ints("perm", 0, 1, 2, 3)}},
				{"Div", []string{"t", "c"}, []string{"d"}, nil}, {"Erf", []string{"d"}, []string{"e"}, nil},
				{"Add", []string{"one", "e"}, []string{"a"}, nil}, {"Mul", []string{"a", "t"}, []string{"m"}, nil},
				{"Mul", []string{"half", "m"}, []string{"y"}, nil}},
			outputs: []string{"y"}}, []string{"Transpose", "Div+Erf+Add+Mul+Mul"}},
		{"sigmoid(x)·255", testModel{opset: 13, inputs: []string{"x"}, shapes: map[string][]int{"x": big},
			consts:  map[string]*tensor.Tensor{"k": f32(nil, 255)},
			nodes:   []tnode{{"Sigmoid", []string{"x"}, []string{"s"}, nil}, {"Mul", []string{"s", "k"}, []string{"y"}, nil}},
			outputs: []string{"y"}}, []string{"Sigmoid+Mul"}},
		{"tanh(x)·10 + skip, in place", testModel{opset: 11, inputs: []string{"x", "skip"}, shapes: map[string][]int{"x": x2345, "skip": x2345},
			consts: map[string]*tensor.Tensor{"k": f32([]int{1}, 10)},
			nodes: []tnode{{"Relu", []string{"x"}, []string{"r"}, nil}, {"Concat", []string{"r"}, []string{"c"}, []*onnxpb.AttributeProto{{Name: proto.String("axis"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(0)}}},
				{"Tanh", []string{"c"}, []string{"h"}, nil}, {"Mul", []string{"k", "h"}, []string{"m"}, nil}, {"Add", []string{"m", "skip"}, []string{"y"}, nil}},
			outputs: []string{"y"}}, []string{"Relu", "Concat", "Tanh+Mul+Add"}},
		{"per-channel scale and shift, then ReLU", testModel{opset: 13, inputs: []string{"x"}, shapes: map[string][]int{"x": big},
			consts: map[string]*tensor.Tensor{"g": f32([]int{16, 1, 1}, ramp(16).Data...), "b": f32([]int{16, 1, 1}, ramp(16).Data...)},
			nodes: []tnode{{"Mul", []string{"x", "g"}, []string{"m"}, nil}, {"Add", []string{"m", "b"}, []string{"a"}, nil},
				{"Relu", []string{"a"}, []string{"y"}, nil}},
			outputs: []string{"y"}}, []string{"Mul+Add+Relu"}},
		{"hardswish as x·HardSigmoid(x), LeakyRelu", testModel{opset: 13, inputs: []string{"x"}, shapes: map[string][]int{"x": x2345},
			nodes: []tnode{{"HardSigmoid", []string{"x"}, []string{"h"}, []*onnxpb.AttributeProto{fattr("alpha", 1.0/6)}}, {"Mul", []string{"x", "h"}, []string{"m"}, nil},
				{"LeakyRelu", []string{"m"}, []string{"y"}, []*onnxpb.AttributeProto{fattr("alpha", 0.1)}}},
			outputs: []string{"y"}}, []string{"HardSigmoid+Mul+LeakyRelu"}},
		{"relu6 with constant Clip bounds, x·x, 1 − ·", testModel{opset: 13, inputs: []string{"x"}, shapes: map[string][]int{"x": x2345},
			consts: map[string]*tensor.Tensor{"lo": f32(nil, 0), "hi": f32(nil, 6), "one": one},
			nodes: []tnode{{"Clip", []string{"x", "lo", "hi"}, []string{"c"}, nil}, {"Mul", []string{"c", "c"}, []string{"s"}, nil},
				{"Sub", []string{"one", "s"}, []string{"y"}, nil}},
			outputs: []string{"y"}}, []string{"Clip+Mul+Sub"}},
		{"Clip attributes, Pow, Sqrt, Reciprocal, Max", testModel{opset: 10, inputs: []string{"x"}, shapes: map[string][]int{"x": x2345},
			consts: map[string]*tensor.Tensor{"two": f32(nil, 2), "eps": f32(nil, 1e-5)},
			nodes: []tnode{{"Clip", []string{"x"}, []string{"c"}, []*onnxpb.AttributeProto{fattr("min", -2)}}, {"Pow", []string{"c", "two"}, []string{"p"}, nil},
				{"Max", []string{"p", "eps"}, []string{"m"}, nil}, {"Sqrt", []string{"m"}, []string{"s"}, nil}, {"Reciprocal", []string{"s"}, []string{"y"}, nil}},
			outputs: []string{"y"}}, []string{"Clip+Pow+Max+Sqrt+Reciprocal"}},
		{"broadcasting first op", testModel{opset: 13, inputs: []string{"a", "x"}, shapes: map[string][]int{"a": {1, 3, 1, 1}, "x": x2345},
			nodes:   []tnode{{"Mul", []string{"a", "x"}, []string{"m"}, nil}, {"Sigmoid", []string{"m"}, []string{"y"}, nil}},
			outputs: []string{"y"}}, []string{"Mul+Sigmoid"}},
		{"every unary op", testModel{opset: 14, inputs: []string{"x"}, shapes: map[string][]int{"x": x2345},
			nodes: []tnode{{"Abs", []string{"x"}, []string{"a"}, nil}, {"Neg", []string{"a"}, []string{"b"}, nil}, {"Exp", []string{"b"}, []string{"c"}, nil},
				{"Log", []string{"c"}, []string{"d"}, nil}, {"Floor", []string{"d"}, []string{"e"}, nil}, {"Ceil", []string{"e"}, []string{"f"}, nil},
				{"Sign", []string{"f"}, []string{"g"}, nil}, {"Elu", []string{"g"}, []string{"h"}, nil}, {"Selu", []string{"h"}, []string{"i"}, nil},
				{"Celu", []string{"i"}, []string{"j"}, nil}, {"Softplus", []string{"j"}, []string{"k"}, nil}, {"Softsign", []string{"k"}, []string{"l"}, nil},
				{"HardSwish", []string{"l"}, []string{"m"}, nil}, {"Tanh", []string{"m"}, []string{"y"}, nil}},
			outputs: []string{"y"}}, []string{"Abs+Neg+Exp+Log+Floor+Ceil+Sign+Elu+Selu+Celu+Softplus+Softsign+HardSwish+Tanh"}},
		// Not fused: the Sigmoid's value is also a graph output.
		{"intermediate is a graph output", testModel{opset: 13, inputs: []string{"x"}, shapes: map[string][]int{"x": x2345},
			consts:  map[string]*tensor.Tensor{"k": f32(nil, 2)},
			nodes:   []tnode{{"Sigmoid", []string{"x"}, []string{"s"}, nil}, {"Mul", []string{"s", "k"}, []string{"y"}, nil}},
			outputs: []string{"y", "s"}}, []string{"Sigmoid", "Mul"}},
		// Not fused through: Exp's value has two readers; Mul and Add are
		// chains of one.
		{"intermediate read twice", testModel{opset: 13, inputs: []string{"x"}, shapes: map[string][]int{"x": x2345},
			consts: map[string]*tensor.Tensor{"k": f32(nil, 2)},
			nodes: []tnode{{"Exp", []string{"x"}, []string{"e"}, nil}, {"Mul", []string{"e", "k"}, []string{"y"}, nil},
				{"Add", []string{"e", "k"}, []string{"z"}, nil}},
			outputs: []string{"y", "z"}}, []string{"Exp", "Mul", "Add"}},
		// The chain stops at a graph output and a new one can start after.
		{"chain ends at a graph output", testModel{opset: 13, inputs: []string{"x"}, shapes: map[string][]int{"x": x2345},
			consts: map[string]*tensor.Tensor{"k": f32(nil, 10), "one": one},
			nodes: []tnode{{"Tanh", []string{"x"}, []string{"h"}, nil}, {"Mul", []string{"h", "k"}, []string{"y"}, nil},
				{"Add", []string{"y", "one"}, []string{"a"}, nil}, {"Relu", []string{"a"}, []string{"z"}, nil}},
			outputs: []string{"y", "z"}}, []string{"Tanh+Mul", "Add+Relu"}},
		// Fused, but a later op enlarges the value: the fused node runs the
		// original nodes (the sigmoid would otherwise be computed 20 times
		// per value).
		{"later broadcast falls back", testModel{opset: 13, inputs: []string{"s", "x"}, shapes: map[string][]int{"s": {2, 3, 1, 1}, "x": x2345},
			nodes:   []tnode{{"Sigmoid", []string{"s"}, []string{"g"}, nil}, {"Mul", []string{"g", "x"}, []string{"y"}, nil}},
			outputs: []string{"y"}}, []string{"Sigmoid+Mul"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plain := c.m.load(t, Options{Threads: 1, NoFuse: true})
			if got := fusedOps(plain); len(got) != len(c.m.nodes) {
				t.Fatalf("NoFuse graph runs %v", got)
			}
			for _, threads := range []int{1, 3} {
				fused := c.m.load(t, Options{Threads: threads})
				if got := fusedOps(fused); !slices.Equal(got, c.want) {
					t.Fatalf("fused graph runs %v, want %v", got, c.want)
				}
				for seed := range uint64(2) {
					want, err := plain.Run(c.m.feed(seed))
					if err != nil {
						t.Fatal(err)
					}
					got, err := fused.Run(c.m.feed(seed))
					if err != nil {
						t.Fatal(err)
					}
					for _, name := range c.m.outputs {
						if i, ok := sameBits(got[name].Data, want[name].Data); !ok || !slices.Equal(got[name].Shape, want[name].Shape) {
							t.Errorf("%d threads: output %s %v differs from the unfused graph's %v at %d: %g, want %g", threads, name, got[name].Shape, want[name].Shape, i, got[name].Data[max(i, 0)], want[name].Data[max(i, 0)])
						}
					}
				}
			}
		})
	}
}

// TestChainGELURecognised: the exported GELU runs its dedicated loop
// (bit-identical to the generic one: TestElementwiseFusion), and a chain
// that only looks like it does not.
func TestChainGELURecognised(t *testing.T) {
	for _, c := range []struct {
		k    float32
		want string
	}{{float32(math.Sqrt2), "GELU"}, {1.5, "ElementwiseChain"}} {
		m := testModel{opset: 17, inputs: []string{"x"}, shapes: map[string][]int{"x": x2345},
			consts: map[string]*tensor.Tensor{"c": f32(nil, c.k), "one": f32(nil, 1), "half": f32(nil, 0.5)},
			nodes: []tnode{{"Div", []string{"x", "c"}, []string{"d"}, nil}, {"Erf", []string{"d"}, []string{"e"}, nil},
				{"Add", []string{"e", "one"}, []string{"a"}, nil}, {"Mul", []string{"a", "x"}, []string{"m"}, nil},
				{"Mul", []string{"m", "half"}, []string{"y"}, nil}},
			outputs: []string{"y"}}
		g := m.load(t, Options{})
		if len(g.main.nodes) != 1 || g.main.nodes[0].def.name != c.want {
			t.Errorf("divisor %g: nodes %v, want one %s", c.k, fusedOps(g), c.want)
		}
	}
}

// chainSeeds are FuzzGraph seeds (appended by fuzzSeeds) for the
// elementwise ops and the chain fusion: a fused GELU, chains with a side
// input, a broadcasting first op, a later broadcast and integer inputs
// (both run the original nodes), Clip/Pow/PRelu/Max/HardSwish/LeakyRelu
// in a chain, comparisons into Where.
func chainSeeds(t testing.TB) [][]byte {
	f := func(shape ...int) *tensor.Tensor { return seq(shape...) }
	s := func(v float32) *tensor.Tensor { return tensor.FromFloats([]float32{v}) }
	x := map[string]*tensor.Tensor{"x": f(2, 3, 4)}
	seeds := []struct {
		opset  int64
		nodes  []*onnxpb.NodeProto
		feeds  map[string]*tensor.Tensor
		consts map[string]*tensor.Tensor
		outs   []string
	}{
		{17, []*onnxpb.NodeProto{
			nodeProto("Transpose", []string{"x"}, []string{"t"}, attrIs("perm", 0, 1, 2)),
			nodeProto("Div", []string{"t", "r2"}, []string{"d"}),
			nodeProto("Erf", []string{"d"}, []string{"e"}),
			nodeProto("Add", []string{"e", "one"}, []string{"a"}),
			nodeProto("Mul", []string{"t", "a"}, []string{"m"}),
			nodeProto("Mul", []string{"m", "half"}, []string{"y"}),
		}, x, map[string]*tensor.Tensor{"r2": s(float32(math.Sqrt2)), "one": s(1), "half": s(0.5)}, []string{"y"}},
		{13, []*onnxpb.NodeProto{
			nodeProto("Mul", []string{"a", "x"}, []string{"m"}),
			nodeProto("Sigmoid", []string{"m"}, []string{"g"}),
			nodeProto("Add", []string{"g", "x"}, []string{"y"}),
			nodeProto("Tanh", []string{"a"}, []string{"h"}),
			nodeProto("Mul", []string{"h", "x"}, []string{"z"}),
		}, map[string]*tensor.Tensor{"a": f(3, 1), "x": f(2, 3, 4)}, nil, []string{"y", "z"}},
		{13, []*onnxpb.NodeProto{
			nodeProto("Abs", []string{"i"}, []string{"a"}),
			nodeProto("Neg", []string{"a"}, []string{"n"}),
			nodeProto("Mul", []string{"n", "n"}, []string{"y"}),
			nodeProto("Cast", []string{"x"}, []string{"c"}, attrI("to", 7)),
			nodeProto("Sign", []string{"c"}, []string{"sg"}),
			nodeProto("Relu", []string{"sg"}, []string{"z"}),
		}, map[string]*tensor.Tensor{"i": ints64([]int{2, 3}, -3, -2, -1, 0, 1, 2), "x": f(2, 3)}, nil, []string{"y", "z"}},
		{13, []*onnxpb.NodeProto{
			nodeProto("Clip", []string{"x", "lo", "hi"}, []string{"c"}),
			nodeProto("Pow", []string{"c", "two"}, []string{"p"}),
			nodeProto("PRelu", []string{"p", "sl"}, []string{"r"}),
			nodeProto("Max", []string{"r", "lo"}, []string{"m"}),
			nodeProto("HardSigmoid", []string{"m"}, []string{"h"}, attrF("alpha", 0.3)),
			nodeProto("LeakyRelu", []string{"h"}, []string{"y"}, attrF("alpha", 0.2)),
		}, x, map[string]*tensor.Tensor{"lo": s(-1), "hi": s(6), "two": s(2), "sl": f(4)}, []string{"y"}},
		{16, []*onnxpb.NodeProto{
			nodeProto("Less", []string{"x", "zero"}, []string{"b"}),
			nodeProto("Neg", []string{"x"}, []string{"n"}),
			nodeProto("Where", []string{"b", "n", "x"}, []string{"w"}),
			nodeProto("Not", []string{"b"}, []string{"nb"}),
			nodeProto("Equal", []string{"w", "x"}, []string{"e"}),
			nodeProto("And", []string{"nb", "e"}, []string{"y"}),
			nodeProto("Sum", []string{"w", "x", "zero"}, []string{"z"}),
		}, x, map[string]*tensor.Tensor{"zero": s(0)}, []string{"y", "z"}},
	}
	var out [][]byte
	for _, sd := range seeds {
		b, err := proto.Marshal(modelProto(sd.opset, graphProto(sd.nodes, sd.feeds, sd.consts, sd.outs...)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestChainOnIntegers: a chain whose input turns out to be an integer
// tensor runs its original nodes (integer kernels), with their results.
func TestChainOnIntegers(t *testing.T) {
	nodes := []*onnxpb.NodeProto{
		nodeProto("Abs", []string{"i"}, []string{"a"}),
		nodeProto("Neg", []string{"a"}, []string{"n"}),
		nodeProto("Mul", []string{"n", "n"}, []string{"y"}),
	}
	feeds := map[string]*tensor.Tensor{"i": ints64([]int{2, 3}, -3, -2, -1, 0, 1, 7)}
	var got [2]*tensor.Tensor
	for k, noFuse := range []bool{false, true} {
		g, err := Compile(parseModel(t, modelProto(13, graphProto(nodes, feeds, nil, "y"))), Options{Threads: 1, NoFuse: noFuse})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 1, true: 3}[noFuse]; len(g.main.nodes) != want {
			t.Fatalf("NoFuse %v: nodes %v", noFuse, fusedOps(g))
		}
		out, err := g.Run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		got[k] = out["y"]
	}
	if got[0].DType != tensor.Int64 || !slices.Equal(got[0].Ints, got[1].Ints) || !slices.Equal(got[0].Shape, got[1].Shape) {
		t.Errorf("fused %v %v %v, unfused %v %v %v", got[0].DType, got[0].Shape, got[0].Ints, got[1].DType, got[1].Shape, got[1].Ints)
	}
}

// ulps is the distance between two float32 values in units in the last
// place (0 for two NaNs).
func ulps(a, b float32) int64 {
	if a != a && b != b {
		return 0
	}
	key := func(f float32) int64 {
		k := int64(int32(math.Float32bits(f)))
		if k < 0 {
			k = math.MinInt32 - k
		}
		return k
	}
	d := key(a) - key(b)
	return max(d, -d)
}

// TestFastMath: the float64-block kernels (elementwise_math.go) are within
// 1 ulp of the standard library's float64 functions rounded to float32, on
// a sample of every 4099th float32 of either sign (about a million values,
// NaN and the infinities included).
func TestFastMath(t *testing.T) {
	var xs []float32
	for b := uint64(0); b <= 0x7f800000; b += 4099 {
		xs = append(xs, math.Float32frombits(uint32(b)), -math.Float32frombits(uint32(b)))
	}
	xs = append(xs, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()))
	ref := map[uKind]func(float64) float64{
		uExp:     math.Exp,
		uErf:     math.Erf,
		uTanh:    math.Tanh,
		uSigmoid: func(x float64) float64 { return 1 / (1 + math.Exp(-x)) },
		uElu:     math.Expm1, // alpha 1, x <= 0 (x > 0 passes through)
	}
	names := map[uKind]string{uExp: "Exp", uErf: "Erf", uTanh: "Tanh", uSigmoid: "Sigmoid", uElu: "Elu"}
	got := make([]float32, len(xs))
	for k, f := range ref {
		u := unary{k: k, a: 1}
		u.apply(got, xs)
		worst, at := int64(0), float32(0)
		for i, x := range xs {
			want := float32(f(float64(x)))
			if k == uElu && x > 0 {
				want = x
			}
			if d := ulps(got[i], want); d > worst {
				worst, at = d, x
			}
		}
		if worst > 1 {
			t.Errorf("%s: %d ulps from the math package at %g", names[k], worst, at)
		}
	}
}

// TestVariadicInPlace: Sum(t, x, t) with t dying at the Sum may not write
// its first partial sum over t, which it reads again.
func TestVariadicInPlace(t *testing.T) {
	x := seq(3, 4)
	out, err := runNodes(t, 13, []*onnxpb.NodeProto{
		nodeProto("Transpose", []string{"x"}, []string{"t"}, attrIs("perm", 0, 1)),
		nodeProto("Sum", []string{"t", "x", "t"}, []string{"y"}),
	}, map[string]*tensor.Tensor{"x": x}, nil, "y")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range x.Data {
		if want := v + v + v; out["y"].Data[i] != want {
			t.Fatalf("y[%d] = %g, want %g", i, out["y"].Data[i], want)
		}
	}
}
