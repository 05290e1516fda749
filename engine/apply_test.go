package engine

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// Apply's padding, compaction and epilogue split between workers give the
// bits of one thread, from one array or from parts; the epilogue sees every
// plane once.
func TestApplySplit(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(11, 12))
	for _, s := range []ConvSpec{
		{M: 12, C: 7, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{M: 20, C: 18, KH: 5, KW: 5, PadT: 2, PadL: 2, PadB: 2, PadR: 2},
		{M: 6, C: 4, KH: 3, KW: 3, PadT: 0, PadL: 1, PadB: 2, PadR: 1, StrideH: 2, StrideW: 2},
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
			seen[ch]++
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
			if seen[ch] != frames {
				t.Fatalf("%+v: epilogue saw channel %d %d times, want %d", s, ch, seen[ch], frames)
			}
		}
	}
}
