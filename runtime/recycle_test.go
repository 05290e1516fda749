package runtime

import (
	"math/rand"
	goruntime "runtime"
	"testing"
)

// Forward into recycled buffers (holding the previous call's values, some
// larger than needed) gives the bits a fresh Runner gives: every output and
// state value is written.
func TestRecycleSameBits(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	m := randomModel(rng, 2, []int{8, 16}, [][2]int{{3, 3}, {5, 5}}, true, "ifog")
	r, _ := New(m, Options{Threads: 2})
	defer r.Close()
	for i, c := range []struct {
		B, T, H, W int
		all, init  bool
	}{
		{2, 4, 12, 10, false, false},
		{1, 3, 9, 7, true, false}, // smaller than the buffers handed back
		{2, 4, 12, 10, true, true},
		{1, 2, 16, 16, false, true}, // larger: new memory
		{2, 4, 12, 10, false, false},
	} {
		x := randomTensor(rng, c.B, c.T, 2, c.H, c.W)
		opts := ForwardOptions{AllLayers: c.all}
		if c.init {
			for _, hd := range []int{8, 16} {
				opts.Initial = append(opts.Initial, LayerState{H: randomTensor(rng, c.B, hd, c.H, c.W), C: randomTensor(rng, c.B, hd, c.H, c.W)})
			}
		}
		fresh, _ := New(m, Options{Threads: 1})
		want, err := fresh.Forward(x, opts)
		fresh.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Forward(x, opts)
		if err != nil {
			t.Fatal(err)
		}
		assertSame(t, "output", got.Output.Data, want.Output.Data)
		for l := range want.Layers {
			assertSame(t, "layer output", got.Layers[l].Data, want.Layers[l].Data)
		}
		for l := range want.Final {
			assertSame(t, "h", got.Final[l].H.Data, want.Final[l].H.Data)
			assertSame(t, "c", got.Final[l].C.Data, want.Final[l].C.Data)
		}
		r.Recycle(got)
		if got.Output != nil {
			t.Fatalf("case %d: Recycle left the result's tensors in place", i)
		}
	}
}

// A Forward whose previous result was recycled allocates far less than its
// outputs and states.
func TestRecycleReusesMemory(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	m := randomModel(rng, 1, []int{16, 16}, [][2]int{{3, 3}, {3, 3}}, true, "ifog")
	r, _ := New(m, Options{Threads: 1})
	defer r.Close()
	x := randomTensor(rng, 1, 6, 1, 32, 32)
	res, _ := r.Forward(x, ForwardOptions{})
	outBytes := uint64(4 * (len(res.Output.Data) + 4*16*32*32))
	for range 3 {
		r.Recycle(res)
		var a, b goruntime.MemStats
		goruntime.ReadMemStats(&a)
		res, _ = r.Forward(x, ForwardOptions{})
		goruntime.ReadMemStats(&b)
		if got := b.TotalAlloc - a.TotalAlloc; got > outBytes/4 {
			t.Errorf("recycled Forward allocated %d bytes, want well under its outputs' %d", got, outBytes)
		}
	}
}
