package graph

import (
	"slices"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// groupNormGraph is nn.GroupNorm(groups, C) as torch exports it, on x of
// the given shape, followed by a Sigmoid (a reader that is not part of the
// pattern); gamma and beta have gShape. extra nodes are appended.
func groupNormGraph(t *testing.T, shape []int, groups int, gShape []int, extra []*onnxpb.NodeProto, outputs ...string) (*Graph, *Graph, map[string]*tensor.Tensor) {
	t.Helper()
	c := shape[1]
	x := cellTensor(31, 3, shape...)
	x.Data[5] += 100 // a large mean in one group
	consts := map[string]*tensor.Tensor{
		"s1":    tensor.FromInts(tensor.Int64, []int64{0, int64(groups), -1}, 3),
		"ones":  f32([]int{groups}, slices.Repeat([]float32{1}, groups)...),
		"zeros": f32([]int{groups}, make([]float32, groups)...),
		"gamma": cellTensor(32, 1, gShape...),
		"beta":  cellTensor(33, 1, gShape...),
	}
	_ = c
	nodes := append([]*onnxpb.NodeProto{
		nodeProto("Reshape", []string{"x", "s1"}, []string{"r1"}),
		nodeProto("InstanceNormalization", []string{"r1", "ones", "zeros"}, []string{"in"}, attrF("epsilon", 1e-5)),
		nodeProto("Shape", []string{"x"}, []string{"sx"}),
		nodeProto("Reshape", []string{"in", "sx"}, []string{"r2"}),
		nodeProto("Mul", []string{"r2", "gamma"}, []string{"m"}),
		nodeProto("Add", []string{"m", "beta"}, []string{"gn"}),
		nodeProto("Sigmoid", []string{"gn"}, []string{"y"}),
	}, extra...)
	feeds := map[string]*tensor.Tensor{"x": x}
	mp := modelProto(17, graphProto(nodes, feeds, consts, outputs...))
	fused, err := Compile(parseModel(t, mp), Options{Threads: 3})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Compile(parseModel(t, mp), Options{Threads: 1, NoFuse: true})
	if err != nil {
		t.Fatal(err)
	}
	return fused, plain, feeds
}

// TestGroupNormFusion: torch's five GroupNorm nodes become one, whose
// output is bit-identical to the nodes' (the same roundings, in one pass),
// at 1 and 3 threads and with γ and β as (C, 1, 1) or (1, C, 1, 1); an
// intermediate read elsewhere, or γ not per channel, leaves the nodes.
func TestGroupNormFusion(t *testing.T) {
	for _, c := range []struct {
		name   string
		shape  []int
		groups int
		gShape []int
		extra  []*onnxpb.NodeProto
		outs   []string
		fused  bool
	}{
		{"(C, 1, 1)", []int{2, 12, 9, 11}, 4, []int{12, 1, 1}, nil, []string{"y"}, true},
		{"(1, C, 1, 1), one group", []int{1, 6, 40, 50}, 1, []int{1, 6, 1, 1}, nil, []string{"y"}, true},
		{"3-D input", []int{3, 8, 33}, 2, []int{8, 1}, nil, []string{"y"}, true},
		{"normalised value read elsewhere", []int{2, 12, 9, 11}, 4, []int{12, 1, 1}, []*onnxpb.NodeProto{nodeProto("Neg", []string{"r2"}, []string{"n"})}, []string{"y", "n"}, false},
		{"γ per position", []int{2, 12, 9, 11}, 4, []int{12, 9, 11}, nil, []string{"y"}, true},
	} {
		fused, plain, feeds := groupNormGraph(t, c.shape, c.groups, c.gShape, c.extra, c.outs...)
		if got := slices.Contains(fusedOps(fused), "GroupNorm"); got != c.fused {
			t.Errorf("%s: fused %v, want %v (%v)", c.name, got, c.fused, fusedOps(fused))
		}
		want, err := plain.Run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fused.Run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range c.outs {
			if i, ok := sameBits(got[o].Data, want[o].Data); !ok {
				t.Errorf("%s: output %s differs at %d: %g, unfused %g", c.name, o, i, got[o].Data[i], want[o].Data[i])
			}
		}
	}
}
