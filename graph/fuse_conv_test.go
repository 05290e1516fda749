package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// modelBuilder writes small ONNX models for tests: float initialisers,
// nodes, one float input "x".
type modelBuilder struct {
	rng   *rand.Rand
	nodes []*onnxpb.NodeProto
	inits []*onnxpb.TensorProto
}

func newModelBuilder(seed uint64) *modelBuilder {
	return &modelBuilder{rng: rand.New(rand.NewPCG(seed, 99))}
}

// init adds a float initialiser; nil data is random normal times scale
// plus offset.
func (b *modelBuilder) init(name string, shape []int64, data []float32, scale, offset float64) string {
	if data == nil {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		data = make([]float32, n)
		for i := range data {
			data[i] = float32(b.rng.NormFloat64()*scale + offset)
		}
	}
	b.inits = append(b.inits, &onnxpb.TensorProto{Name: proto.String(name), Dims: shape, DataType: proto.Int32(1), FloatData: data})
	return name
}

func (b *modelBuilder) node(op string, in, out []string, attrs ...*onnxpb.AttributeProto) {
	b.nodes = append(b.nodes, &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(out[0]), Input: in, Output: out, Attribute: attrs})
}

func (b *modelBuilder) model(t *testing.T, opset int64, xshape []int64, outputs ...string) *loader.ONNXModel {
	t.Helper()
	dims := make([]*onnxpb.TensorShapeProto_Dimension, len(xshape))
	for i, d := range xshape {
		dims[i] = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}}
	}
	vi := func(name string, d []*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1), Shape: &onnxpb.TensorShapeProto{Dim: d}}}}}
	}
	var outs []*onnxpb.ValueInfoProto
	for _, o := range outputs {
		outs = append(outs, vi(o, nil))
	}
	mp := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(opset)}},
		Graph:       &onnxpb.GraphProto{Name: proto.String("t"), Node: b.nodes, Initializer: b.inits, Input: []*onnxpb.ValueInfoProto{vi("x", dims)}, Output: outs},
	}
	raw, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := loader.ParseONNX("fuse.onnx", raw, "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// batchNorm adds an inference BatchNormalization of c channels after in.
func (b *modelBuilder) batchNorm(in, out string, c int64) {
	p := out + "."
	b.node("BatchNormalization", []string{in,
		b.init(p+"scale", []int64{c}, nil, 0.5, 1), b.init(p+"bias", []int64{c}, nil, 0.5, 0),
		b.init(p+"mean", []int64{c}, nil, 0.3, 0), b.init(p+"var", []int64{c}, nil, 0.2, 1)},
		[]string{out}, attrF("epsilon", 1e-3))
}

// activation adds one of the activations the pass fuses after in, as the
// exporter writes it.
func (b *modelBuilder) activation(kind, in, out string) {
	switch kind {
	case "Relu", "Sigmoid", "Tanh", "HardSwish":
		b.node(kind, []string{in}, []string{out})
	case "LeakyRelu":
		b.node(kind, []string{in}, []string{out}, attrF("alpha", 0.2))
	case "HardSigmoid":
		b.node(kind, []string{in}, []string{out}, attrF("alpha", 1.0/6), attrF("beta", 0.5))
	case "Clip":
		b.node(kind, []string{in, b.init(out+".min", nil, []float32{-0.5}, 0, 0), b.init(out+".max", nil, []float32{0.7}, 0, 0)}, []string{out})
	case "GELU":
		c := func(name string, v float32) string { return b.init(out+"."+name, nil, []float32{v}, 0, 0) }
		b.node("Div", []string{in, c("sqrt2", 1.4142135381698608)}, []string{out + ".div"})
		b.node("Erf", []string{out + ".div"}, []string{out + ".erf"})
		b.node("Add", []string{out + ".erf", c("one", 1)}, []string{out + ".add"})
		b.node("Mul", []string{in, out + ".add"}, []string{out + ".mul"})
		b.node("Mul", []string{out + ".mul", c("half", 0.5)}, []string{out})
	default:
		panic(kind)
	}
}

// opsOf lists the ops a graph case uses (activations as the exporter
// writes them).
func needOps(t *testing.T, ops ...string) {
	t.Helper()
	for _, op := range ops {
		if op == "GELU" {
			needOps(t, "Div", "Erf", "Add", "Mul")
			continue
		}
		if table[op] == nil {
			t.Skipf("operator %s is not registered on this branch", op)
		}
	}
}

// runBoth compiles m fused and unfused and runs both on x; it returns the
// fused graph and the worst difference of every output relative to that
// output's largest magnitude. (Per value, a folded BatchNormalization
// differs most where the convolution's sum cancels to near zero: its
// rounding is that of the terms, not of the result.)
func runBoth(t *testing.T, m *loader.ONNXModel, x *tensor.Tensor) (*Graph, float64) {
	t.Helper()
	fused, err := Compile(m, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Compile(m, Options{Threads: 2, NoFuse: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := fused.Run(map[string]*tensor.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	b, err := plain.Run(map[string]*tensor.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for name, want := range b {
		got := a[name]
		if got == nil || len(got.Data) != len(want.Data) {
			t.Fatalf("output %q: fused %v, unfused %v", name, got, want.Shape)
		}
		scale := 0.0
		for _, w := range want.Data {
			scale = math.Max(scale, math.Abs(float64(w)))
		}
		for i, w := range want.Data {
			if r := math.Abs(float64(got.Data[i])-float64(w)) / scale; r > worst {
				worst = r
			}
		}
	}
	return fused, worst
}

// convNodes lists the main graph's Conv/ConvTranspose nodes with what each
// carries.
func convNodes(g *Graph) []string {
	var s []string
	for _, n := range g.main.nodes {
		if n.op == "Conv" || n.op == "ConvTranspose" {
			s = append(s, n.op+":"+n.conv.fusedName())
		}
	}
	return s
}

// Fused and unfused graphs agree: BatchNormalization folded into Conv and
// ConvTranspose (groups, strides), each activation moved into the
// epilogue; the nodes are gone from the fused graph.
func TestConvFusion(t *testing.T) {
	const tol = 1e-6 // relative to the output's largest magnitude
	acts := []string{"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "GELU"}
	for _, op := range []string{"Conv", "ConvTranspose"} {
		for _, act := range append([]string{""}, acts...) {
			for _, bn := range []bool{false, true} {
				if act == "" && !bn {
					continue
				}
				name := fmt.Sprintf("%s+bn=%v+%s", op, bn, act)
				t.Run(name, func(t *testing.T) {
					if act != "" {
						needOps(t, act)
					}
					b := newModelBuilder(uint64(len(name)))
					attrs := []*onnxpb.AttributeProto{ints("pads", 1, 1, 1, 1), attrI("group", 2)}
					w := b.init("w", []int64{6, 2, 3, 3}, nil, 0.3, 0) // Conv: (M=6, C/g=2); ConvTranspose: (C=6... no: C=4, M/g=3)
					if op == "ConvTranspose" {
						b.inits = b.inits[:0]
						w = b.init("w", []int64{4, 3, 3, 3}, nil, 0.3, 0)
						attrs = append(attrs, ints("strides", 2, 2), ints("output_padding", 1, 1))
					}
					b.node(op, []string{"x", w, b.init("b", []int64{6}, nil, 0.2, 0)}, []string{"c"}, attrs...)
					cur := "c"
					if bn {
						b.batchNorm(cur, "bn", 6)
						cur = "bn"
					}
					if act != "" {
						b.activation(act, cur, "y")
						cur = "y"
					}
					m := b.model(t, 17, []int64{2, 4, 7, 6}, cur)
					x := tensor.FromFloats(make([]float32, 2*4*7*6), 2, 4, 7, 6)
					for i := range x.Data {
						x.Data[i] = float32(b.rng.NormFloat64() * 2)
					}
					g, worst := runBoth(t, m, x)
					t.Logf("max relative difference fused vs unfused: %.3g", worst)
					if worst > tol || !bn && worst != 0 {
						t.Errorf("fused and unfused differ by %.3g (relative); want 0 for an activation alone, at most %g with a folded BatchNormalization", worst, tol)
					}
					want := act
					switch act {
					case "LeakyRelu":
						want = "LeakyRelu(0.2)"
					case "HardSigmoid":
						want = "HardSigmoid(0.16666667,0.5)"
					case "Clip":
						want = "Clip(-0.5,0.7)"
					}
					if bn {
						want = "BatchNormalization+" + want
						want = trimPlus(want)
					}
					if got := convNodes(g); len(got) != 1 || got[0] != op+":"+want || len(g.main.nodes) != 1 {
						t.Errorf("fused graph: %d nodes, convolutions %v; want one %s carrying %q", len(g.main.nodes), got, op, want)
					}
				})
			}
		}
	}
}

func trimPlus(s string) string {
	for len(s) > 0 && s[len(s)-1] == '+' {
		s = s[:len(s)-1]
	}
	return s
}

// A Conv whose output is read twice (by its activation and by another
// node, or as a graph output) keeps both nodes: the intermediate value is
// observable. So does a BatchNormalization whose input is read twice, and
// a Clip whose bound is computed.
func TestConvFusionNeedsSingleReader(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *modelBuilder) []string // returns the outputs
		nodes int
	}{
		{"relu and add", func(b *modelBuilder) []string {
			b.node("Relu", []string{"c"}, []string{"r"})
			b.node("Add", []string{"c", "r"}, []string{"y"})
			return []string{"y"}
		}, 3},
		{"relu and graph output", func(b *modelBuilder) []string {
			b.node("Relu", []string{"c"}, []string{"y"})
			return []string{"y", "c"}
		}, 2},
		{"bn and graph output", func(b *modelBuilder) []string {
			b.batchNorm("c", "y", 4)
			return []string{"y", "c"}
		}, 2},
		{"bn then relu, bn output read twice", func(b *modelBuilder) []string {
			b.batchNorm("c", "n", 4)
			b.node("Relu", []string{"n"}, []string{"r"})
			b.node("Add", []string{"n", "r"}, []string{"y"})
			return []string{"y"} // BN folds; the Relu cannot follow it in
		}, 3},
	}
	// The node counts are the conv passes' alone: elementwise chains
	// (fuse_elementwise.go) would merge what they leave.
	defer func(old bool) { chainFusion = old }(chainFusion)
	chainFusion = false
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newModelBuilder(7)
			b.node("Conv", []string{"x", b.init("w", []int64{4, 3, 3, 3}, nil, 0.3, 0)}, []string{"c"}, ints("pads", 1, 1, 1, 1))
			outs := c.build(b)
			m := b.model(t, 13, []int64{1, 3, 5, 5}, outs...)
			x := tensor.FromFloats(make([]float32, 75), 1, 3, 5, 5)
			for i := range x.Data {
				x.Data[i] = float32(b.rng.NormFloat64())
			}
			g, worst := runBoth(t, m, x)
			if worst > 1e-6 {
				t.Errorf("fused and unfused differ by %.3g", worst)
			}
			if len(g.main.nodes) != c.nodes {
				var ops []string
				for _, n := range g.main.nodes {
					ops = append(ops, n.op)
				}
				t.Errorf("fused graph has nodes %v, want %d", ops, c.nodes)
			}
		})
	}
}

// The one-input elementwise ops without a case of their own (Gelu at
// opset 20 in both forms, Elu, Softplus) fuse through their own kernels:
// bit-identical.
func TestConvFusionOtherActivations(t *testing.T) {
	for _, c := range []struct {
		op    string
		opset int64
		attrs []*onnxpb.AttributeProto
		name  string
	}{
		{"Gelu", 20, nil, "Gelu(none)"},
		{"Gelu", 20, []*onnxpb.AttributeProto{attrS("approximate", "tanh")}, "Gelu(tanh)"},
		{"Elu", 13, []*onnxpb.AttributeProto{attrF("alpha", 0.7)}, "Elu"},
		{"Softplus", 13, nil, "Softplus"},
	} {
		t.Run(c.name, func(t *testing.T) {
			needOps(t, c.op)
			if _, hi := OpsetRange(c.op); hi < c.opset {
				t.Skipf("%s at opset %d is not supported on this branch", c.op, c.opset)
			}
			b := newModelBuilder(21)
			b.node("Conv", []string{"x", b.init("w", []int64{4, 3, 3, 3}, nil, 0.5, 0)}, []string{"c"}, attrIs("pads", 1, 1, 1, 1))
			b.node(c.op, []string{"c"}, []string{"y"}, c.attrs...)
			m := b.model(t, c.opset, []int64{1, 3, 6, 5}, "y")
			x := tensor.FromFloats(make([]float32, 90), 1, 3, 6, 5)
			for i := range x.Data {
				x.Data[i] = float32(b.rng.NormFloat64() * 2)
			}
			g, worst := runBoth(t, m, x)
			if worst != 0 {
				t.Errorf("fused and unfused differ by %g", worst)
			}
			if got := convNodes(g); len(got) != 1 || got[0] != "Conv:"+c.name || len(g.main.nodes) != 1 {
				t.Errorf("fused graph: %d nodes, convolutions %v; want one Conv carrying %s", len(g.main.nodes), got, c.name)
			}
		})
	}
}
