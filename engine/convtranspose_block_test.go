package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ConvTranspose2D against the definition: the contributions computed a
// block of input rows at a time (down to one row per block) give the
// definition's values, the same bits for 1 and 3 threads, and the epilogue
// sees each plane once, after its last block.
func TestConvTransposeBlocks(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(13, 14))
	saved := ctBlockBytes
	defer func() { ctBlockBytes = saved }()
	cases := []struct {
		s       ConvTransposeSpec
		n, h, w int
	}{
		// torch ConvTranspose2d(8, 4, 4, stride 2, padding 1): 2× upsampling.
		{ConvTransposeSpec{C: 8, M: 4, KH: 4, KW: 4, PadT: 1, PadL: 1, StrideH: 2, StrideW: 2, HO: 12, WO: 14}, 2, 6, 7},
		// stride 2, kernel 3, padding 1, output_padding 1.
		{ConvTransposeSpec{C: 3, M: 5, KH: 3, KW: 3, PadT: 1, PadL: 1, StrideH: 2, StrideW: 2, HO: 10, WO: 8}, 1, 5, 4},
		{ConvTransposeSpec{C: 4, M: 6, KH: 3, KW: 2, PadT: 0, PadL: 1, StrideH: 1, StrideW: 3, DilH: 2, Groups: 2, HO: 9, WO: 10}, 2, 5, 4},
		{ConvTransposeSpec{C: 2, M: 2, KH: 1, KW: 1, HO: 3, WO: 3}, 1, 3, 3},
		{ConvTransposeSpec{C: 8, M: 4, KH: 4, KW: 4, PadT: 1, PadL: 1, StrideH: 2, StrideW: 2, HO: 22, WO: 18}, 2, 11, 9},
		{ConvTransposeSpec{C: 6, M: 6, KH: 3, KW: 3, PadT: 1, PadL: 1, StrideH: 2, StrideW: 2, HO: 14, WO: 16, Groups: 3}, 1, 7, 8},
		{ConvTransposeSpec{C: 4, M: 6, KH: 3, KW: 2, PadT: -1, PadL: 1, StrideH: 1, StrideW: 3, DilH: 2, Groups: 2, HO: 13, WO: 12}, 2, 6, 4},
		{ConvTransposeSpec{C: 3, M: 2, KH: 2, KW: 3, StrideH: 3, StrideW: 1, HO: 16, WO: 9}, 1, 5, 7},
	}
	for _, tc := range cases {
		for _, block := range []int{1, 4 * tc.s.M * tc.s.KH * tc.s.KW * tc.w * 3, saved} {
			t.Run(fmt.Sprintf("%+v/block%d", tc.s, block), func(t *testing.T) {
				ctBlockBytes = block
				s := tc.s
				g := one(s.Groups)
				wt := randSlice(rng, s.C*s.M/g*s.KH*s.KW, 0.3)
				bias := randSlice(rng, s.M, 1)
				x := randSlice(rng, tc.n*s.C*tc.h*tc.w, 1)
				c, err := NewConvTranspose2D(wt, bias, s)
				if err != nil {
					t.Fatal(err)
				}
				ref := naiveConvTranspose(x, tc.n, tc.h, tc.w, wt, bias, s)
				var first []float32
				for _, threads := range []int{1, 3} {
					pool := NewPool(threads)
					p, err := c.NewPlan(tc.n, tc.h, tc.w)
					if err != nil {
						t.Fatal(err)
					}
					out := make([]float32, len(ref))
					seen := make([]int, s.M)
					p.ApplyEpilogue(pool, x, out, func(plane []float32, ch int) {
						seen[ch]++ // channels are split between workers: no two touch one
						for i := range plane {
							plane[i] *= 2
						}
					})
					pool.Close()
					for ch, k := range seen {
						if k != tc.n {
							t.Fatalf("epilogue saw channel %d %d times, want %d", ch, k, tc.n)
						}
					}
					for i, r := range ref {
						if d := math.Abs(float64(out[i]) - 2*r); d > 1e-5*(1+math.Abs(r)) {
							t.Fatalf("%d threads: value %d = %g, want %g", threads, i, out[i], 2*r)
						}
					}
					if first == nil {
						first = out
						continue
					}
					for i := range out {
						if math.Float32bits(out[i]) != math.Float32bits(first[i]) {
							t.Fatalf("3 threads differ from 1 at %d", i)
						}
					}
				}
			})
		}
	}
}

// The strided transposed convolutions run as one convolution per output
// phase (U-Net/encoder–forecaster up-sampling: kernel 4 stride 2 pad 1,
// kernel 3 stride 2 pad 1 with an output padding, and others) give the
// definition's values at 1 and 3 threads, the epilogue once per plane; a
// geometry that would crop a phase's input (padding past a tap's reach)
// takes the scatter-add instead, with the same values.
func TestConvTransposePhases(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(15, 16))
	cases := []struct {
		s       ConvTransposeSpec
		n, h, w int
		phases  bool
	}{
		{ConvTransposeSpec{C: 8, M: 4, KH: 4, KW: 4, PadT: 1, PadL: 1, StrideH: 2, StrideW: 2, HO: 22, WO: 18}, 2, 11, 9, true},
		{ConvTransposeSpec{C: 6, M: 5, KH: 3, KW: 3, PadT: 1, PadL: 1, StrideH: 2, StrideW: 2, HO: 14, WO: 16}, 1, 7, 8, true}, // output_padding 1
		{ConvTransposeSpec{C: 3, M: 2, KH: 3, KW: 5, PadT: 0, PadL: 2, StrideH: 3, StrideW: 2, HO: 17, WO: 13}, 1, 5, 7, true},
		{ConvTransposeSpec{C: 4, M: 3, KH: 2, KW: 2, StrideH: 2, StrideW: 2, HO: 12, WO: 10}, 2, 6, 5, true},
		{ConvTransposeSpec{C: 4, M: 3, KH: 4, KW: 4, PadT: 3, PadL: 3, StrideH: 2, StrideW: 2, HO: 10, WO: 10}, 1, 7, 7, false}, // crops
		{ConvTransposeSpec{C: 4, M: 3, KH: 4, KW: 4, PadT: -1, PadL: 1, StrideH: 2, StrideW: 2, HO: 16, WO: 14}, 1, 7, 7, true}, // a negative padding pads the phases more
	}
	for _, tc := range cases {
		s := tc.s
		wt := randSlice(rng, s.C*s.M*s.KH*s.KW, 0.3)
		bias := randSlice(rng, s.M, 1)
		x := randSlice(rng, tc.n*s.C*tc.h*tc.w, 1)
		c, err := NewConvTranspose2D(wt, bias, s)
		if err != nil {
			t.Fatal(err)
		}
		ref := naiveConvTranspose(x, tc.n, tc.h, tc.w, wt, bias, s)
		for _, threads := range []int{1, 3} {
			pool := NewPool(threads)
			p, err := c.NewPlan(tc.n, tc.h, tc.w)
			if err != nil {
				t.Fatal(err)
			}
			if (p.phases != nil) != tc.phases {
				t.Fatalf("%+v: phases %v, want %v", s, p.phases != nil, tc.phases)
			}
			out := make([]float32, len(ref))
			for i := range out {
				out[i] = float32(math.NaN()) // every value must be written
			}
			seen := make([]int, s.M)
			p.ApplyEpilogue(pool, x, out, func(plane []float32, ch int) {
				seen[ch]++
				for i := range plane {
					plane[i] = -plane[i]
				}
			})
			pool.Close()
			for ch, k := range seen {
				if k != tc.n {
					t.Fatalf("%+v: epilogue saw channel %d %d times, want %d", s, ch, k, tc.n)
				}
			}
			for i, r := range ref {
				if d := math.Abs(float64(out[i]) + r); !(d <= 1e-5*(1+math.Abs(r))) {
					t.Fatalf("%+v, %d threads: value %d = %g, want %g", s, threads, i, out[i], -r)
				}
			}
		}
	}
}
