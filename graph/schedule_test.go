package graph

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Independent branches that share inputs, write in place, end in outputs
// that other nodes read too, and meet again: a run on several threads,
// which takes the ready nodes concurrently (schedule.go), must give the
// bits of a run on one, run after run (the arena recycles buffers between
// runs).
func TestScheduleMatchesOneThread(t *testing.T) {
	shape := []int{2, 3, 8, 8}
	rng := rand.New(rand.NewSource(1))
	x := &tensor.Tensor{Shape: shape, Data: make([]float32, 2*3*8*8)}
	for i := range x.Data {
		x.Data[i] = rng.Float32()*2 - 1
	}
	feeds := map[string]*tensor.Tensor{"x": x}
	mp := modelProto(17, graphProto(scheduleNodes(), feeds, nil, "a3", "b2", "m", "out"))
	var want map[string]*tensor.Tensor
	for _, threads := range []int{1, 2, 3} {
		g, err := Compile(parseModel(t, mp), Options{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		// More runs than timedRuns+1: the last ones start nodes in the
		// order made from the times of the ones before (order.go).
		for run := 0; run < timedRuns+3; run++ {
			got, err := g.Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			if want == nil {
				want = got
				continue
			}
			for _, name := range []string{"a3", "b2", "m", "out"} {
				if !slices.Equal(got[name].Shape, want[name].Shape) {
					t.Fatalf("%d threads, run %d: output %s has shape %v, one thread gave %v", threads, run, name, got[name].Shape, want[name].Shape)
				}
				for i := range want[name].Data {
					if got[name].Data[i] != want[name].Data[i] {
						t.Fatalf("%d threads, run %d: output %s[%d] = %v, one thread gave %v", threads, run, name, i, got[name].Data[i], want[name].Data[i])
					}
				}
			}
		}
		d := g.main.deps()
		d.mu.Lock()
		timed := d.cost != nil
		d.mu.Unlock()
		if threads > 1 && (!timed || d.order.Load() == nil) {
			t.Fatalf("%d threads: no spine made from times after %d runs", threads, timedRuns+3)
		}
	}
}

// A recurrence (each frame: encoder e, cell c, decoder d; c_t waits for
// c_t−1): the spine is the longest path through the cells, frame 1's
// encoder leads to its cell, frame 0's decoder to no spine node, and a
// scheduler whose next spine node is frame 1's cell starts frame 1's
// encoder before frame 0's decoder, the lower index.
func TestScheduleSpine(t *testing.T) {
	const e0, c0, d0, e1, c1, d1 = 0, 1, 2, 3, 4, 5
	d := &deps{pending: []int{0, 1, 1, 0, 2, 1}, next: [][]int{{c0}, {d0, c1}, nil, {c1}, {d1}, nil}, barrier: make([]bool, 6)}
	cost := []int64{1, 5, 3, 1, 5, 3}
	sp := d.makeSpine(cost)
	if want := []int{e0, c0, c1, d1}; !slices.Equal(sp.path, want) {
		t.Fatalf("spine %v, want %v", sp.path, want)
	}
	if want := []int{e0, c0, -1, c1, c1, d1}; !slices.Equal(sp.need, want) {
		t.Fatalf("need %v, want %v", sp.need, want)
	}
	sc := &scheduler{d: d, spine: sp, next: 2, ready: []int{d0, e1}, started: []bool{true, true, false, false, false, false}}
	if i, _ := sc.pick(true); i != e1 {
		t.Fatalf("picked node %d first, want %d (frame 1's encoder)", i, e1)
	}
	if i, _ := sc.pick(true); i != d0 {
		t.Fatalf("picked node %d next, want %d", i, d0)
	}
	// Before any spine: the lowest index first.
	sc = &scheduler{d: d, ready: []int{d0, e1}}
	if i, _ := sc.pick(true); i != d0 {
		t.Fatalf("with no spine picked node %d first, want %d", i, d0)
	}
}

// A run that fails reports the error a run in order meets first, however
// its nodes were scheduled.
func TestScheduleError(t *testing.T) {
	x := &tensor.Tensor{Shape: []int{4, 3}, Data: make([]float32, 12)}
	feeds := map[string]*tensor.Tensor{"x": x, "i": ints64([]int{2}, 1, 7), "j": ints64([]int{2}, 9, 0)}
	nodes := []*onnxpb.NodeProto{
		nodeProto("Relu", []string{"x"}, []string{"r"}),
		nodeProto("Gather", []string{"r", "i"}, []string{"g1"}),
		nodeProto("Sigmoid", []string{"x"}, []string{"s"}),
		nodeProto("Gather", []string{"s", "j"}, []string{"g2"}),
		nodeProto("Concat", []string{"g1", "g2"}, []string{"out"}, attrI("axis", 0)),
	}
	mp := modelProto(17, graphProto(nodes, feeds, nil, "out"))
	var first string
	for _, threads := range []int{1, 2, 3} {
		g, err := Compile(parseModel(t, mp), Options{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		for run := 0; run < 3; run++ {
			_, err := g.Run(feeds)
			if err == nil {
				t.Fatalf("%d threads: indices out of range ran", threads)
			}
			if first == "" {
				first = err.Error()
			} else if err.Error() != first {
				t.Fatalf("%d threads: error %q, one thread said %q", threads, err, first)
			}
		}
	}
}

// scheduleNodes: two branches from x, one of them twice as long, a value
// (a1) read by both and written over in place by its last reader, graph
// outputs (a3, b2) that other nodes read, joined by a Concat.
func scheduleNodes() []*onnxpb.NodeProto {
	return []*onnxpb.NodeProto{
		nodeProto("Relu", []string{"x"}, []string{"a1"}),
		nodeProto("Sigmoid", []string{"x"}, []string{"b1"}),
		nodeProto("Mul", []string{"a1", "x"}, []string{"a2"}),
		nodeProto("Tanh", []string{"b1"}, []string{"b2"}),
		nodeProto("Add", []string{"a2", "a1"}, []string{"a3"}),
		nodeProto("Neg", []string{"a1"}, []string{"a4"}),
		nodeProto("Mul", []string{"b2", "b1"}, []string{"b3"}),
		nodeProto("Add", []string{"a3", "b3"}, []string{"m"}),
		nodeProto("Sub", []string{"a4", "b2"}, []string{"n"}),
		nodeProto("Concat", []string{"m", "n", "a3"}, []string{"out"}, attrI("axis", 1)),
	}
}
