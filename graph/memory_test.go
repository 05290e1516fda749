package graph

import (
	"runtime"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// TestSubgraphBuffersRecycled: a Loop whose body makes a new value per
// iteration (acc ← acc + x through an If, and a Tanh scan output) gives
// each iteration's buffers back to the arena once the next iteration has
// replaced them, so a warm run allocates far less than one buffer per
// iteration (before: every iteration's carried values, scan items and If
// results went to the garbage collector: 21 MB per run of the scripted
// roll-out). The values stay right: compared with the same loop unrolled.
func TestSubgraphBuffersRecycled(t *testing.T) {
	const iters, n = 24, 1 << 15 // 128 KB per value
	x := seq(1, n)
	thenG := graphProto([]*onnxpb.NodeProto{nodeProto("Add", []string{"acc", "x"}, []string{"t"})}, nil, nil, "t")
	elseG := graphProto([]*onnxpb.NodeProto{nodeProto("Sub", []string{"acc", "x"}, []string{"e"})}, nil, nil, "e")
	body := graphProto([]*onnxpb.NodeProto{
		nodeProto("Identity", []string{"c"}, []string{"c2"}),
		nodeProto("If", []string{"c"}, []string{"acc2"}, attrG("then_branch", thenG), attrG("else_branch", elseG)),
		nodeProto("Tanh", []string{"acc2"}, []string{"th"}),
	}, nil, nil, "c2", "acc2", "th")
	body.Input = []*onnxpb.ValueInfoProto{valueProto("i", tensor.Int64, []int{}), valueProto("c", tensor.Bool, []int{}), valueProto("acc", tensor.Float32, nil)}
	consts := map[string]*tensor.Tensor{"m": ints64(nil, iters), "cond": tensor.FromInts(tensor.Bool, []int64{1})}
	nodes := []*onnxpb.NodeProto{
		nodeProto("Identity", []string{"x"}, []string{"acc0"}),
		nodeProto("Loop", []string{"m", "cond", "acc0"}, []string{"acc", "all"}, attrG("body", body)),
	}
	g, err := Compile(parseModel(t, modelProto(13, graphProto(nodes, map[string]*tensor.Tensor{"x": x}, consts, "acc", "all"))), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	feeds := map[string]*tensor.Tensor{"x": x}
	if _, err := g.Run(feeds); err != nil { // warm: the arena fills
		t.Fatal(err)
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	out, err := g.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	// The outputs (iters+1 values) are the caller's; beyond them, at most
	// four values' worth.
	if got, limit := m1.TotalAlloc-m0.TotalAlloc, uint64((iters+1+4)*n*4); got > limit {
		t.Errorf("a warm run of %d iterations allocated %d bytes, want at most %d (the outputs and 4 values of %d floats): buffers are not recycled", iters, got, limit, n)
	}
	acc := make([]float32, n)
	copy(acc, x.Data)
	want := make([]float32, 0, iters*n)
	for range iters {
		for j := range acc {
			acc[j] += x.Data[j]
		}
		for _, v := range acc {
			want = append(want, float32(tanh64(float64(v))))
		}
	}
	within(t, "final acc", out["acc"], acc, []int{1, n})
	within(t, "scan of tanh(acc)", out["all"], want, []int{iters, 1, n})
}
