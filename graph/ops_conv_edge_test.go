package graph

import (
	"errors"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// Malformed or unsupported uses of the conv-family ops end in an error
// naming the node (and the attribute where one is at fault), never a panic
// or an internal error. (The first two were found by fuzzing.)
func TestConvFamilyErrors(t *testing.T) {
	cases := []struct {
		name   string
		opset  int64
		x      []int64
		build  func(b *modelBuilder)
		want   string // in the error
		attr   string // the error's Attr, when one is at fault
		kindUn bool   // Unsupported rather than Invalid
	}{
		{"pool over an empty axis", 13, []int64{1, 1, 0, 3}, func(b *modelBuilder) {
			b.node("AveragePool", []string{"x"}, []string{"y"}, attrIs("kernel_shape", 1, 1), attrIs("pads", 1, 0, 0, 0))
		}, "empty", "", false},
		{"resize with scales and sizes", 13, []int64{1, 1, 2, 2}, func(b *modelBuilder) {
			b.node("Resize", []string{"x", "", b.init("s", []int64{4}, []float32{1, 1, 2, 2}, 0, 0), "sz"}, []string{"y"})
			b.inits = append(b.inits, tensorProto("sz", tensor.FromInts(tensor.Int64, []int64{1, 1, 4, 4}, 4)))
		}, "exactly one of scales and sizes", "", false},
		{"resize without scales or sizes", 13, []int64{1, 1, 2, 2}, func(b *modelBuilder) {
			b.node("Resize", []string{"x"}, []string{"y"})
		}, "exactly one of scales and sizes", "", false},
		{"resize antialias shrinking", 18, []int64{1, 1, 4, 4}, func(b *modelBuilder) {
			b.node("Resize", []string{"x", "", b.init("s", []int64{4}, []float32{1, 1, 0.5, 0.5}, 0, 0)}, []string{"y"}, attrS("mode", "linear"), attrI("antialias", 1))
		}, "antialias", "antialias", true},
		{"half_pixel_symmetric before opset 19", 18, []int64{1, 1, 2, 2}, func(b *modelBuilder) {
			b.node("Resize", []string{"x", "", b.init("s", []int64{4}, []float32{1, 1, 2, 2}, 0, 0)}, []string{"y"}, attrS("coordinate_transformation_mode", "half_pixel_symmetric"))
		}, "from opset 19", "coordinate_transformation_mode", false},
		{"reflect on an axis cropped away", 13, []int64{1, 2}, func(b *modelBuilder) {
			b.node("Pad", []string{"x", "p"}, []string{"y"}, attrS("mode", "reflect"))
			b.inits = append(b.inits, tensorProto("p", tensor.FromInts(tensor.Int64, []int64{0, -2, 0, 1}, 4)))
		}, "no values left", "", false},
		{"batchnorm-9 training outputs", 9, []int64{2, 3, 4}, func(b *modelBuilder) {
			b.node("BatchNormalization", []string{"x", b.init("g", []int64{3}, nil, 1, 1), b.init("be", []int64{3}, nil, 1, 0),
				b.init("m", []int64{3}, nil, 1, 0), b.init("v", []int64{3}, nil, 0.1, 1)}, []string{"y", "mean"})
		}, "training-mode", "", true},
		{"batchnorm spatial=0", 7, []int64{2, 3, 4}, func(b *modelBuilder) {
			b.node("BatchNormalization", []string{"x", b.init("g", []int64{3}, nil, 1, 1), b.init("be", []int64{3}, nil, 1, 0),
				b.init("m", []int64{3}, nil, 1, 0), b.init("v", []int64{3}, nil, 0.1, 1)}, []string{"y"}, attrI("spatial", 0))
		}, "spatial", "spatial", true},
		{"layernorm scale of the wrong shape", 17, []int64{2, 3, 4}, func(b *modelBuilder) {
			b.node("LayerNormalization", []string{"x", b.init("g", []int64{3}, nil, 1, 1)}, []string{"y"})
		}, "does not broadcast", "", false},
		{"convtranspose kernel_shape mismatch", 11, []int64{1, 2, 3, 3}, func(b *modelBuilder) {
			b.node("ConvTranspose", []string{"x", b.init("w", []int64{2, 1, 3, 3}, nil, 1, 0)}, []string{"y"}, attrIs("kernel_shape", 2, 2))
		}, "does not match", "kernel_shape", false},
		{"maxpool pads with auto_pad", 12, []int64{1, 1, 4, 4}, func(b *modelBuilder) {
			b.node("MaxPool", []string{"x"}, []string{"y"}, attrIs("kernel_shape", 2, 2), attrIs("pads", 1, 1, 1, 1), attrS("auto_pad", "SAME_UPPER"))
		}, "together with auto_pad", "pads", false},
		{"depthtospace channels", 13, []int64{1, 3, 2, 2}, func(b *modelBuilder) {
			b.node("DepthToSpace", []string{"x"}, []string{"y"}, attrI("blocksize", 2))
		}, "multiple of blocksize", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newModelBuilder(3)
			c.build(b)
			m := b.model(t, c.opset, c.x, "y")
			g, err := Compile(m, Options{Threads: 1})
			if err == nil {
				x := tensor.FromFloats(make([]float32, numel(toInts(c.x))), toInts(c.x)...)
				_, err = g.Run(map[string]*tensor.Tensor{"x": x})
			}
			var ge *Error
			if !errors.As(err, &ge) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want a graph error containing %q", err, c.want)
			}
			if ge.Kind == Internal || (ge.Kind == Unsupported) != c.kindUn || ge.Attr != c.attr || ge.Node == "" {
				t.Errorf("err = %#v: want kind unsupported=%v, attribute %q, a node name", ge, c.kindUn, c.attr)
			}
		})
	}
}

func toInts(v []int64) []int {
	out := make([]int, len(v))
	for i, d := range v {
		out[i] = int(d)
	}
	return out
}

// torch writes a weight shared by several calls (one layer applied to each
// frame) as Identity copies of one initialiser: those Convs are constant
// all the same, packed at compile time and fused with what follows.
func TestConvWeightBehindIdentity(t *testing.T) {
	b := newModelBuilder(5)
	w := b.init("w", []int64{4, 3, 3, 3}, nil, 0.3, 0)
	bias := b.init("b", []int64{4}, nil, 0.3, 0)
	b.node("Identity", []string{w}, []string{"w1"})
	b.node("Identity", []string{"w1"}, []string{"w2"})
	b.node("Identity", []string{bias}, []string{"b1"})
	b.node("Conv", []string{"x", "w2", "b1"}, []string{"c"}, attrIs("pads", 1, 1, 1, 1))
	b.node("Relu", []string{"c"}, []string{"y"})
	m := b.model(t, 13, []int64{1, 3, 5, 5}, "y")
	x := tensor.FromFloats(make([]float32, 75), 1, 3, 5, 5)
	for i := range x.Data {
		x.Data[i] = float32(b.rng.NormFloat64())
	}
	g, worst := runBoth(t, m, x)
	if worst != 0 {
		t.Errorf("fused and unfused differ by %g", worst)
	}
	for _, n := range g.main.nodes {
		if n.op != "Conv" {
			continue
		}
		if n.conv == nil || n.conv.packed == nil || n.conv.weightName != "w" || n.conv.biasName != "b" || n.conv.actName != "Relu" {
			t.Fatalf("Conv state %+v: want packed weights from initialisers w and b, Relu fused", n.conv)
		}
		return
	}
	t.Fatal("no Conv node in the compiled graph")
}
