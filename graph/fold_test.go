package graph

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// TestFoldConstants: OpenSTL's first step, conv_h of the zero state and
// its LayerNorm, is computed at compile time and the graph runs only the
// nodes that read the input; the outputs are bit-identical to the
// unfolded graph's (the same kernels ran, once).
func TestFoldConstants(t *testing.T) {
	w := cellTensor(3, 0.2, 8, 4, 3, 3)
	m := testModel{opset: 17, inputs: []string{"x"}, shapes: map[string][]int{"x": {1, 8, 6, 6}},
		consts: map[string]*tensor.Tensor{"h0": tensor.New(1, 4, 6, 6), "w": w, "wx": cellTensor(4, 0.2, 8, 8, 3, 3),
			"gamma": cellTensor(5, 1, 8, 6, 6), "beta": cellTensor(6, 1, 8, 6, 6)},
		nodes: []tnode{
			{"Conv", []string{"h0", "w"}, []string{"ch"}, []*onnxpb.AttributeProto{ints("pads", 1, 1, 1, 1)}},
			{"LayerNormalization", []string{"ch", "gamma", "beta"}, []string{"lh"}, []*onnxpb.AttributeProto{attrI("axis", -3)}},
			{"Conv", []string{"x", "wx"}, []string{"cx"}, []*onnxpb.AttributeProto{ints("pads", 1, 1, 1, 1)}},
			{"Add", []string{"cx", "lh"}, []string{"y"}, nil},
		},
		outputs: []string{"y"}}
	g := m.load(t, Options{Threads: 1})
	if got := fusedOps(g); !slices.Equal(got, []string{"Conv", "Add"}) {
		t.Fatalf("folded graph runs %v, want [Conv Add]", got)
	}
	feed := cellFeed(m, 1)
	want, err := m.load(t, Options{Threads: 1, NoFuse: true}).Run(feed)
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.Run(feed)
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := sameBits(got["y"].Data, want["y"].Data); !ok {
		t.Errorf("folded output differs at %d: %g, unfolded %g", i, got["y"].Data[i], want["y"].Data[i])
	}
}

// TestFoldConstantsLimits: a constant node whose kernel fails is left to
// the run, which reports it naming the node; a constant output of more than
// foldMaxValues values stays a node; Identity stays (weights are named
// through it).
func TestFoldConstantsLimits(t *testing.T) {
	bad := testModel{opset: 17, inputs: []string{"x"}, shapes: map[string][]int{"x": nil},
		consts:  map[string]*tensor.Tensor{"a": tensor.New(2, 3), "b": tensor.New(4, 5)},
		nodes:   []tnode{{"Add", []string{"a", "b"}, []string{"s"}, nil}, {"Add", []string{"x", "s"}, []string{"y"}, nil}},
		outputs: []string{"y"}}
	g := bad.load(t, Options{Threads: 1})
	if got := fusedOps(g); !slices.Equal(got, []string{"Add", "Add"}) && !slices.Equal(got, []string{"Add+Add"}) {
		t.Errorf("graph runs %v, want both Adds (the first fails)", got)
	}
	if _, err := g.Run(map[string]*tensor.Tensor{"x": tensor.New(2, 3)}); err == nil || !strings.Contains(err.Error(), "n0_Add") {
		t.Errorf("a constant Add of mismatched shapes: got %v, want an error naming node n0_Add", err)
	}

	ident := testModel{opset: 17, inputs: []string{"x"}, shapes: map[string][]int{"x": {1}},
		consts:  map[string]*tensor.Tensor{"w": f32([]int{1}, 2)},
		nodes:   []tnode{{"Identity", []string{"w"}, []string{"wi"}, nil}, {"Mul", []string{"x", "wi"}, []string{"y"}, nil}},
		outputs: []string{"y"}}
	if got := fusedOps(ident.load(t, Options{Threads: 1})); !slices.Equal(got, []string{"Identity", "Mul"}) {
		t.Errorf("graph runs %v, want the Identity kept", got)
	}

	p := &program{consts: map[string]*tensor.Tensor{"s": tensor.FromInts(tensor.Int64, []int64{2048, 4096}, 2)}}
	n := &node{name: "big", op: "ConstantOfShape", def: table["ConstantOfShape"], in: []string{"s"}, out: []string{"o"}, attrs: map[string]*onnxpb.AttributeProto{}, opset: 17, value: f32([]int{1}, 0)}
	(&compiler{file: "test"}).foldConstants(&program{consts: p.consts, nodes: []*node{n}})
	if p.consts["o"] != nil {
		t.Errorf("a ConstantOfShape of %d values was folded (limit %d)", 2048*4096, foldMaxValues)
	}
	small := &program{consts: map[string]*tensor.Tensor{"s": tensor.FromInts(tensor.Int64, []int64{2, 3}, 2)}, nodes: []*node{n}}
	(&compiler{file: "test"}).foldConstants(small)
	if o := small.consts["o"]; o == nil || len(small.nodes) != 0 || !slices.Equal(o.Shape, []int{2, 3}) {
		t.Errorf("a ConstantOfShape of 6 values: folded %v, nodes left %d", o, len(small.nodes))
	}
}

// TestPruneZeroParts: a convolution of cat(x, 0) (a cell's first step from
// a zero state) runs on x's channels alone and agrees with the full
// convolution (the zero channels add nothing; the sums are shorter, so the
// rounding may differ: within 1e-6 of the output's scale); a part of
// unknown channels between two others, or a non-zero constant, keeps it.
func TestPruneZeroParts(t *testing.T) {
	conv := func(parts []string, consts map[string]*tensor.Tensor, cin int) testModel {
		consts["w"] = cellTensor(21, 0.2, 16, cin, 3, 3)
		consts["b"] = cellTensor(22, 0.2, 16)
		return testModel{opset: 17, inputs: []string{"x", "y"}, shapes: map[string][]int{"x": {2, 5, 7, 9}, "y": {2, 3, 7, 9}}, consts: consts,
			nodes: []tnode{
				{"Concat", parts, []string{"cat"}, []*onnxpb.AttributeProto{attrI("axis", 1)}},
				{"Conv", []string{"cat", "w", "b"}, []string{"z"}, []*onnxpb.AttributeProto{ints("pads", 1, 1, 1, 1)}},
				{"Add", []string{"z", "z"}, []string{"out"}, nil},
			},
			outputs: []string{"out"}}
	}
	for _, c := range []struct {
		name  string
		m     testModel
		parts int // inputs of the convolution left
	}{
		{"cat(x, 0)", conv([]string{"x", "h0"}, map[string]*tensor.Tensor{"h0": tensor.New(2, 6, 7, 9)}, 11), 1},
		{"cat(0, x, 0)", conv([]string{"h0", "x", "h1"}, map[string]*tensor.Tensor{"h0": tensor.New(2, 2, 7, 9), "h1": tensor.New(2, 4, 7, 9)}, 11), 1},
		{"cat(x, y, 0): two unknown", conv([]string{"x", "y", "h0"}, map[string]*tensor.Tensor{"h0": tensor.New(2, 4, 7, 9)}, 12), 3},
		{"cat(x, 1)", conv([]string{"x", "k"}, map[string]*tensor.Tensor{"k": cellTensor(2, 1, 2, 6, 7, 9)}, 11), 2},
	} {
		g := c.m.load(t, Options{Threads: 1})
		var cv *node
		for _, n := range g.main.nodes {
			if n.op == "Conv" {
				cv = n
			}
		}
		if cv == nil || len(cv.in) != c.parts {
			t.Errorf("%s: the convolution reads %v, want %d parts", c.name, cv.in, c.parts)
			continue
		}
		feed := cellFeed(c.m, 3)
		want, err := c.m.load(t, Options{Threads: 1, NoFuse: true}).Run(feed)
		if err != nil {
			t.Fatal(err)
		}
		got, err := g.Run(feed)
		if err != nil {
			t.Fatal(err)
		}
		scale, worst := 1.0, 0.0
		for i, v := range want["out"].Data {
			scale = max(scale, math.Abs(float64(v)))
			worst = max(worst, math.Abs(float64(got["out"].Data[i]-v)))
		}
		if worst > 1e-6*scale {
			t.Errorf("%s: pruned convolution differs by %.3g (scale %.3g)", c.name, worst, scale)
		}
	}
}
