package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/ops"
)

func TestParsePrecision(t *testing.T) {
	for in, want := range map[string]Precision{"": Float32, "float32": Float32, "FP32": Float32, "bf16": BFloat16, "bfloat16": BFloat16, " BF16 ": BFloat16} {
		if got, err := ParsePrecision(in); err != nil || got != want {
			t.Errorf("ParsePrecision(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"fp16", "int8", "bf", "float64"} {
		if _, err := ParsePrecision(in); err == nil || !contains(err.Error(), in) {
			t.Errorf("ParsePrecision(%q): error %v", in, err)
		}
	}
	if _, err := NewConv2D(make([]float32, 9), nil, ConvSpec{M: 1, C: 1, KH: 3, KW: 3}, ConvOptions{Precision: "fp8"}); err == nil || !contains(err.Error(), "fp8") {
		t.Errorf("NewConv2D with precision fp8: %v", err)
	}
}

// bf16Paths runs f on the converted path and, where the CPU has them, on
// the native kernels.
func bf16Paths(t *testing.T, f func(t *testing.T, native bool)) {
	paths := []bool{false}
	if ops.BF16Native() {
		paths = append(paths, true)
	}
	for _, native := range paths {
		t.Run(fmt.Sprintf("native=%v", native), func(t *testing.T) {
			defer func(f func() bool) { bf16Native = f }(bf16Native)
			bf16Native = func() bool { return native }
			f(t, native)
		})
	}
}

func absSlice(v []float32) []float32 {
	a := make([]float32, len(v))
	for i, x := range v {
		a[i] = float32(math.Abs(float64(x)))
	}
	return a
}

// TestConv2DBF16 runs TestConv2D's convolutions in bf16 on both paths:
// within a bound relative to Σ|w·x| of the float64 definition, the same
// bits for 1 and 3 threads, the native kernels used exactly where they
// apply, and the converted path bit for bit the float32 convolution of the
// rounded weights (direct and gather). Rounding to bfloat16 errs by at most
// 2^-8 of a value, so a direct convolution errs by at most 2^-8 (weights
// rounded) or 2^-7 + 2^-16 (weights and inputs) of Σ|w·x| plus float32
// accumulation: the bars 4e-3 and 8e-3, which a lost channel or tap (≥ 1/9
// of Σ|w·x| here) would far exceed. Winograd's transforms could in theory
// amplify U's and V's rounding; measured, they stay under 2.5e-3.
func TestConv2DBF16(t *testing.T) {
	defer splitAll()()
	cases := []struct {
		s       ConvSpec
		n, h, w int
		direct  bool
	}{
		{ConvSpec{M: 8, C: 3, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, 2, 7, 9, false},
		{ConvSpec{M: 32, C: 16, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, 2, 9, 17, false},
		{ConvSpec{M: 32, C: 17, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, 2, 9, 17, true},
		{ConvSpec{M: 24, C: 20, KH: 5, KW: 5, PadT: 2, PadL: 2, PadB: 2, PadR: 2}, 1, 11, 13, false},
		{ConvSpec{M: 12, C: 17, KH: 3, KW: 5, PadT: 0, PadL: 1, PadB: 2, PadR: 0}, 1, 8, 10, false},
		{ConvSpec{M: 6, C: 4, KH: 3, KW: 3, PadT: 2, PadL: 2, PadB: 2, PadR: 2, DilH: 2, DilW: 2}, 2, 6, 7, false},
		{ConvSpec{M: 8, C: 6, KH: 3, KW: 1, PadT: 1, PadB: 1, Groups: 2}, 3, 5, 4, false},
		{ConvSpec{M: 16, C: 16, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1, Groups: 16}, 1, 8, 8, false},
		{ConvSpec{M: 10, C: 6, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1, StrideH: 2, StrideW: 2}, 2, 9, 8, false},
		{ConvSpec{M: 5, C: 1, KH: 1, KW: 1}, 2, 3, 3, false},
	}
	bf16Paths(t, func(t *testing.T, native bool) {
		rng := rand.New(rand.NewPCG(11, 12))
		for _, tc := range cases {
			s := tc.s
			wt := randSlice(rng, s.M*s.C/s.groups()*s.KH*s.KW, 1/math.Sqrt(float64(s.C/s.groups()*s.KH*s.KW)))
			bias := randSlice(rng, s.M, 1)
			x := randSlice(rng, tc.n*s.C*tc.h*tc.w, 1)
			c, err := NewConv2D(wt, bias, s, ConvOptions{Direct: tc.direct, Precision: BFloat16})
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%s %+v", c.Algo, s)
			if want := native && c.Algo != Gather; c.NativeBF16() != want || c.Precision() != BFloat16 {
				t.Fatalf("%s: NativeBF16 %v, Precision %q", name, c.NativeBF16(), c.Precision())
			}
			ref, ho, wo := naiveConv(x, tc.n, tc.h, tc.w, wt, bias, s)
			scale, _, _ := naiveConv(absSlice(x), tc.n, tc.h, tc.w, absSlice(wt), absSlice(bias), s)
			bar := 4e-3
			if native {
				bar = 8e-3
			}
			var first []float32
			worst := 0.0
			for _, threads := range []int{1, 3} {
				pool := NewPool(threads)
				p, err := c.NewDensePlan(tc.n, tc.h, tc.w, threads)
				if err != nil {
					t.Fatal(err)
				}
				out := make([]float32, tc.n*s.M*ho*wo)
				for rep := 0; rep < 2; rep++ {
					p.Apply(pool, out, nil, Part{x, s.C})
				}
				pool.Close()
				for i, v := range out {
					d := math.Abs(float64(v) - ref[i])
					if d > bar*scale[i] {
						t.Fatalf("%s threads %d: value %d = %v, want %v: error %.3g > %.0e·Σ|w·x| = %.3g", name, threads, i, v, ref[i], d, bar, bar*scale[i])
					}
					worst = max(worst, d/scale[i])
				}
				if first == nil {
					first = out
				} else {
					for i := range out {
						if math.Float32bits(out[i]) != math.Float32bits(first[i]) {
							t.Fatalf("%s: value %d differs between 1 and 3 threads", name, i)
						}
					}
				}
			}
			t.Logf("%s: worst error %.2e of Σ|w·x|", name, worst)
			if native && c.Algo != Gather || c.Algo == Winograd {
				continue
			}
			// The converted path is the float32 convolution of the
			// rounded weights.
			rw := make([]float32, len(wt))
			ops.RoundBF16(rw, wt)
			c32, _ := NewConv2D(rw, bias, s, ConvOptions{Direct: tc.direct})
			p, _ := c32.NewDensePlan(tc.n, tc.h, tc.w, 1)
			pool := NewPool(1)
			want := make([]float32, len(first))
			p.Apply(pool, want, nil, Part{x, s.C})
			pool.Close()
			for i := range want {
				if math.Float32bits(want[i]) != math.Float32bits(first[i]) {
					t.Fatalf("%s: value %d = %v, the float32 convolution of the rounded weights gives %v", name, i, first[i], want[i])
				}
			}
		}
	})
}

// TestCellBF16: in bf16 a cell's Step still gives Run's bits (both
// algorithms, both paths), and its h stays within a loose bound of the
// float32 cell's over a few steps.
func TestCellBF16(t *testing.T) {
	defer splitAll()()
	bf16Paths(t, func(t *testing.T, native bool) {
		rng := rand.New(rand.NewPCG(13, 14))
		for _, tc := range []struct {
			in, hd, kh, kw int
			algo           Algo
		}{
			{2, 5, 3, 3, Direct}, {3, 16, 3, 3, Winograd}, {16, 16, 3, 3, Winograd}, {1, 16, 5, 5, Winograd}, {4, 6, 5, 1, Direct},
		} {
			const B, T, H, W = 2, 4, 5, 7
			l := randLayer(rng, tc.in, tc.hd, tc.kh, tc.kw)
			cell, err := NewCellOptions(l, convlstm.GatesIFOG, CellOptions{Precision: BFloat16})
			if err != nil {
				t.Fatal(err)
			}
			c32, _ := NewCell(l, convlstm.GatesIFOG, false)
			if cell.Algo() != tc.algo || cell.Precision() != BFloat16 || c32.Precision() != Float32 {
				t.Fatalf("%+v: algorithm %s, precision %q", tc, cell.Algo(), cell.Precision())
			}
			pool := NewPool(2)
			x := randSlice(rng, B*T*tc.in*H*W, 1)
			plane := H * W
			run := func(c *Cell) []float32 {
				out := make([]float32, B*T*tc.hd*plane)
				p := c.NewPlan(B, H, W, T, 2)
				p.ZeroState()
				p.Run(pool, SeqLayout(x, B, T, tc.in, plane, false), SeqLayout(out, B, T, tc.hd, plane, false), T, true)
				return out
			}
			ref, got := run(c32), run(cell)
			q := cell.NewPlan(B, H, W, 1, 2)
			h, c := make([]float32, B*tc.hd*plane), make([]float32, B*tc.hd*plane)
			worst := 0.0
			for step := 0; step < T; step++ {
				xt := make([]float32, B*tc.in*plane)
				for b := 0; b < B; b++ {
					copy(xt[b*tc.in*plane:(b+1)*tc.in*plane], x[(b*T+step)*tc.in*plane:])
				}
				q.Step(pool, xt, h, c, h, c)
				for b := 0; b < B; b++ {
					for i := 0; i < tc.hd*plane; i++ {
						k := (b*T+step)*tc.hd*plane + i
						if math.Float32bits(h[b*tc.hd*plane+i]) != math.Float32bits(got[k]) {
							t.Fatalf("%+v step %d: Step %v, Run %v", tc, step, h[b*tc.hd*plane+i], got[k])
						}
						worst = max(worst, math.Abs(float64(got[k]-ref[k])))
					}
				}
			}
			pool.Close()
			// h is in (-1, 1); bfloat16 weights (and inputs) move it by
			// about 1e-3 here; a broken kernel moves it by 0.1 or more.
			t.Logf("%+v: max |h_bf16 − h_f32| %.2e", tc, worst)
			if worst > 0.02 {
				t.Errorf("%+v: max |h_bf16 − h_f32| = %.3g", tc, worst)
			}
		}
	})
}
