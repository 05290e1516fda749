package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naiveConv is ONNX Conv in float64, straight from the definition.
func naiveConv(x []float32, n, h, w int, wt, bias []float32, s ConvSpec) ([]float64, int, int) {
	ho, wo := s.OutSize(h, w)
	g := s.groups()
	cg, mg := s.C/g, s.M/g
	out := make([]float64, n*s.M*ho*wo)
	for f := 0; f < n; f++ {
		for m := 0; m < s.M; m++ {
			gi := m / mg
			for yo := 0; yo < ho; yo++ {
				for xo := 0; xo < wo; xo++ {
					sum := 0.0
					if bias != nil {
						sum = float64(bias[m])
					}
					for c := 0; c < cg; c++ {
						for ky := 0; ky < s.KH; ky++ {
							for kx := 0; kx < s.KW; kx++ {
								yi := yo*s.strideH() - s.PadT + ky*s.dilH()
								xi := xo*s.strideW() - s.PadL + kx*s.dilW()
								if yi < 0 || yi >= h || xi < 0 || xi >= w {
									continue
								}
								sum += float64(wt[((m*cg+c)*s.KH+ky)*s.KW+kx]) * float64(x[((f*s.C+gi*cg+c)*h+yi)*w+xi])
							}
						}
					}
					out[((f*s.M+m)*ho+yo)*wo+xo] = sum
				}
			}
		}
	}
	return out, ho, wo
}

func randSlice(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	return v
}

// Every algorithm against the float64 definition, over groups, strides,
// dilations, asymmetric pads and batches; and the same bits for 1 and 3
// threads.
func TestConv2D(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		s       ConvSpec
		n, h, w int
		want    Algo
		direct  bool
	}{
		{ConvSpec{M: 8, C: 3, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, 2, 7, 9, Direct, false},
		{ConvSpec{M: 32, C: 16, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, 2, 9, 17, Winograd, false},
		{ConvSpec{M: 32, C: 16, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, 2, 9, 17, Direct, true},
		{ConvSpec{M: 24, C: 20, KH: 5, KW: 5, PadT: 2, PadL: 2, PadB: 2, PadR: 2}, 1, 11, 13, Winograd, false},
		{ConvSpec{M: 12, C: 17, KH: 3, KW: 5, PadT: 0, PadL: 1, PadB: 2, PadR: 0}, 1, 8, 10, Winograd, false},
		{ConvSpec{M: 16, C: 16, KH: 3, KW: 3}, 1, 6, 6, Winograd, false}, // valid padding
		{ConvSpec{M: 6, C: 4, KH: 3, KW: 3, PadT: 2, PadL: 2, PadB: 2, PadR: 2, DilH: 2, DilW: 2}, 2, 6, 7, Direct, false},
		{ConvSpec{M: 8, C: 4, KH: 3, KW: 1, PadT: 1, PadB: 1, Groups: 2}, 3, 5, 4, Direct, false},
		{ConvSpec{M: 16, C: 16, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1, Groups: 16}, 1, 8, 8, Direct, false}, // depthwise
		{ConvSpec{M: 10, C: 6, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1, StrideH: 2, StrideW: 2}, 2, 9, 8, Gather, false},
		{ConvSpec{M: 4, C: 4, KH: 4, KW: 2, PadT: 1, PadL: 0, PadB: 2, PadR: 1, StrideH: 3, StrideW: 2, DilH: 2, Groups: 2}, 1, 11, 7, Gather, false},
		{ConvSpec{M: 5, C: 2, KH: 1, KW: 1}, 2, 3, 3, Direct, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%+v", tc.s), func(t *testing.T) {
			s := tc.s
			wt := randSlice(rng, s.M*s.C/s.groups()*s.KH*s.KW, 1/math.Sqrt(float64(s.C*s.KH*s.KW)))
			bias := randSlice(rng, s.M, 1)
			x := randSlice(rng, tc.n*s.C*tc.h*tc.w, 1)
			c, err := NewConv2D(wt, bias, s, ConvOptions{Direct: tc.direct})
			if err != nil {
				t.Fatal(err)
			}
			if c.Algo != tc.want {
				t.Fatalf("algorithm %s, want %s", c.Algo, tc.want)
			}
			ref, ho, wo := naiveConv(x, tc.n, tc.h, tc.w, wt, bias, s)
			var first []float32
			for _, threads := range []int{1, 3} {
				pool := NewPool(threads)
				p, err := c.NewDensePlan(tc.n, tc.h, tc.w, threads)
				if err != nil {
					t.Fatal(err)
				}
				out := make([]float32, tc.n*s.M*ho*wo)
				for rep := 0; rep < 2; rep++ { // plans are reused
					p.Apply(pool, out, nil, Part{x, s.C})
				}
				pool.Close()
				for i, v := range out {
					if d := math.Abs(float64(v) - ref[i]); d > 1e-5+1e-5*math.Abs(ref[i]) {
						f, m := i/(s.M*ho*wo), i/(ho*wo)%s.M
						t.Fatalf("threads %d: (frame %d, channel %d, y %d, x %d) = %v, want %v", threads, f, m, i/wo%ho, i%wo, v, ref[i])
					}
				}
				if first == nil {
					first = out
				} else {
					for i := range out {
						if math.Float32bits(out[i]) != math.Float32bits(first[i]) {
							t.Fatalf("value %d differs between 1 and 3 threads: %v, %v", i, first[i], out[i])
						}
					}
				}
			}
		})
	}
}

func TestConv2DErrors(t *testing.T) {
	for _, tc := range []struct {
		s    ConvSpec
		w    int
		want string
	}{
		{ConvSpec{M: 4, C: 3, KH: 3, KW: 3, Groups: 2}, 4 * 3 * 9, "groups do not divide"},
		{ConvSpec{M: 4, C: 3, KH: 3, KW: 3}, 5, "weight has 5 values"},
		{ConvSpec{M: 0, C: 3, KH: 3, KW: 3}, 0, "at least 1"},
		{ConvSpec{M: 4, C: 3, KH: 3, KW: 3, PadT: -1}, 4 * 3 * 9, "negative padding"},
	} {
		if _, err := NewConv2D(make([]float32, tc.w), nil, tc.s, ConvOptions{}); err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.s, err, tc.want)
		}
	}
	c, _ := NewConv2D(make([]float32, 4*3*25), nil, ConvSpec{M: 4, C: 3, KH: 5, KW: 5}, ConvOptions{})
	if _, err := c.NewDensePlan(1, 3, 9, 1); err == nil || !contains(err.Error(), "smaller than the 5×5 kernel") {
		t.Errorf("3×9 input: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// naiveConvTranspose is ONNX ConvTranspose in float64 from the definition.
func naiveConvTranspose(x []float32, n, h, w int, wt, bias []float32, s ConvTransposeSpec) []float64 {
	g := one(s.Groups)
	cg, mg := s.C/g, s.M/g
	out := make([]float64, n*s.M*s.HO*s.WO)
	for f := 0; f < n; f++ {
		for m := 0; m < s.M; m++ {
			for i := 0; i < s.HO*s.WO; i++ {
				if bias != nil {
					out[(f*s.M+m)*s.HO*s.WO+i] = float64(bias[m])
				}
			}
			gi, ml := m/mg, m%mg
			for c := gi * cg; c < (gi+1)*cg; c++ {
				for yi := 0; yi < h; yi++ {
					for xi := 0; xi < w; xi++ {
						for ky := 0; ky < s.KH; ky++ {
							for kx := 0; kx < s.KW; kx++ {
								yo := yi*one(s.StrideH) - s.PadT + ky*one(s.DilH)
								xo := xi*one(s.StrideW) - s.PadL + kx*one(s.DilW)
								if yo < 0 || yo >= s.HO || xo < 0 || xo >= s.WO {
									continue
								}
								out[((f*s.M+m)*s.HO+yo)*s.WO+xo] += float64(x[((f*s.C+c)*h+yi)*w+xi]) * float64(wt[((c*mg+ml)*s.KH+ky)*s.KW+kx])
							}
						}
					}
				}
			}
		}
	}
	return out
}

// splitAll makes every kernel split between all threads however small, so
// that the tests exercise the splits; it returns the restore function.
func splitAll() func() {
	old := minWorkPerThread
	minWorkPerThread = 1
	return func() { minWorkPerThread = old }
}

// Apply over two parts gives the bits of Apply over their concatenation;
// the epilogue sees every output plane once, with its channel; WithPads
// shares the packed weights and changes only the padding.
func TestConv2DPartsEpilogue(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	s := ConvSpec{M: 20, C: 18, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	wt := randSlice(rng, s.M*s.C*9, 0.1)
	x := randSlice(rng, 2*s.C*6*7, 1)
	c, err := NewConv2D(wt, randSlice(rng, s.M, 1), s, ConvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool := NewPool(1)
	defer pool.Close()
	p, _ := c.NewDensePlan(2, 6, 7, 1)
	whole := make([]float32, 2*s.M*6*7)
	p.Apply(pool, whole, nil, Part{x, s.C})
	// The same channels as two arrays: frame-major within each part.
	a, b := make([]float32, 0), make([]float32, 0)
	for f := 0; f < 2; f++ {
		a = append(a, x[f*s.C*42:(f*s.C+5)*42]...)
		b = append(b, x[(f*s.C+5)*42:(f+1)*s.C*42]...)
	}
	got := make([]float32, len(whole))
	seen := map[int]int{}
	p.Apply(pool, got, func(plane []float32, ch int) {
		seen[ch]++
		for i := range plane {
			plane[i] = max(plane[i], 0)
		}
	}, Part{a, 5}, Part{b, s.C - 5})
	for i := range got {
		if got[i] != max(whole[i], 0) {
			t.Fatalf("value %d: %v, want relu(%v)", i, got[i], whole[i])
		}
	}
	for ch := 0; ch < s.M; ch++ {
		if seen[ch] != 2 {
			t.Fatalf("epilogue saw channel %d %d times, want once per frame", ch, seen[ch])
		}
	}
	valid, err := c.WithPads(0, 0, 0, 0)
	if err != nil || valid.a == nil && valid.wino != c.wino || c.Spec.PadT != 1 {
		t.Fatalf("WithPads: %v", err)
	}
	if _, err := valid.NewDensePlan(1, 6, 7, 1); err != nil {
		t.Fatal(err)
	}
	if l, _ := valid.Layout(1, 6, 7); l.HO != 4 || l.WO != 5 {
		t.Fatalf("valid padding gives %d×%d, want 4×5", l.HO, l.WO)
	}
}
