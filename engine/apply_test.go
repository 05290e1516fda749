package engine

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// Apply's padding, compaction and epilogue split between workers (by
// planes, or by rows as the convolution is) give the bits of one thread,
// from one array or from parts; the epilogue sees every output value once,
// with its channel.
func TestApplySplit(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(11, 12))
	for _, s := range []ConvSpec{
		{M: 12, C: 7, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{M: 20, C: 18, KH: 5, KW: 5, PadT: 2, PadL: 2, PadB: 2, PadR: 2},
		{M: 6, C: 4, KH: 3, KW: 3, PadT: 0, PadL: 1, PadB: 2, PadR: 1, StrideH: 2, StrideW: 2},
		{M: 9, C: 5, KH: 3, KW: 1, PadT: 2, PadL: 0, PadB: 0, PadR: 0, DilH: 2}, // direct, rows split by columns
		{M: 16, C: 16, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},        // Winograd, 16 channels
		{M: 8, C: 20, KH: 5, KW: 3, PadT: 2, PadL: 1, PadB: 2, PadR: 1},         // Winograd 5×3
	} {
		wt := randSlice(rng, s.M*s.C*s.KH*s.KW, 0.2)
		c, err := NewConv2D(wt, randSlice(rng, s.M, 1), s, ConvOptions{})
		if err != nil {
			t.Fatal(err)
		}
		const frames, h, w = 3, 9, 8
		x := randSlice(rng, frames*s.C*h*w, 1)
		one, three := NewPool(1), NewPool(3)
		p1, _ := c.NewDensePlan(frames, h, w, 1)
		p3, _ := c.NewDensePlan(frames, h, w, 3)
		ref := make([]float32, frames*s.M*p1.L.HO*p1.L.WO)
		p1.Apply(one, ref, nil, Part{x, s.C})
		a, b := make([]float32, 0), make([]float32, 0)
		k := s.C / 2
		for f := 0; f < frames; f++ {
			a = append(a, x[f*s.C*h*w:(f*s.C+k)*h*w]...)
			b = append(b, x[(f*s.C+k)*h*w:(f+1)*s.C*h*w]...)
		}
		got := make([]float32, len(ref))
		var mu sync.Mutex
		seen := map[int]int{}
		p3.Apply(three, got, func(plane []float32, ch int) {
			mu.Lock()
			seen[ch] += len(plane)
			mu.Unlock()
			for i := range plane {
				plane[i] = max(plane[i], 0)
			}
		}, Part{a, k}, Part{b, s.C - k})
		three.Close()
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(max(ref[i], 0)) {
				t.Fatalf("%+v: value %d is %v with 3 threads and parts, want relu(%v)", s, i, got[i], ref[i])
			}
		}
		for ch := 0; ch < s.M; ch++ {
			if want := frames * p1.L.HO * p1.L.WO; seen[ch] != want {
				t.Fatalf("%+v: epilogue saw %d values of channel %d, want %d", s, seen[ch], ch, want)
			}
		}
	}
}

// Apply split by rows over 2 to 5 workers, on images whose tile rows and
// column blocks fall across the parts in every way (one row, one column,
// odd sizes, several frames), gives the bits of one thread.
func TestApplyRowSplit(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(13, 14))
	specs := []ConvSpec{
		{M: 16, C: 16, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, // Winograd
		{M: 8, C: 16, KH: 5, KW: 5, PadT: 2, PadL: 2, PadB: 2, PadR: 2},  // Winograd 5×5
		{M: 5, C: 3, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},   // direct
		{M: 4, C: 2, KH: 1, KW: 1},                                       // direct 1×1
	}
	geoms := [][3]int{{1, 1, 1}, {1, 2, 17}, {2, 9, 8}, {1, 16, 16}, {3, 5, 40}, {1, 33, 3}}
	for _, s := range specs {
		c, err := NewConv2D(randSlice(rng, s.M*s.C*s.KH*s.KW, 0.3), randSlice(rng, s.M, 1), s, ConvOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range geoms {
			frames, h, w := g[0], g[1], g[2]
			x := randSlice(rng, frames*s.C*h*w, 1)
			p1, err := c.NewDensePlan(frames, h, w, 1)
			if err != nil {
				continue // the kernel does not fit
			}
			ref := make([]float32, frames*s.M*p1.L.HO*p1.L.WO)
			p1.Apply(NewPool(1), ref, nil, Part{x, s.C})
			for threads := 2; threads <= 5; threads++ {
				pool := NewPool(threads)
				p, _ := c.NewDensePlan(frames, h, w, threads)
				got := make([]float32, len(ref))
				for i := range got {
					got[i] = float32(math.NaN()) // every value must be written
				}
				p.Apply(pool, got, nil, Part{x, s.C})
				pool.Close()
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
						t.Fatalf("%v %+v, %d threads: value %d is %v, one thread %v", c.Algo, g, threads, i, got[i], ref[i])
					}
				}
			}
		}
	}
}
