package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// bf16Sets is every bfloat16 implementation this machine runs: the Go twin
// and, where the CPU has AVX512_BF16, the native kernels.
func bf16Sets() []bf16Set {
	sets := []bf16Set{genericBF16}
	if BF16Native() {
		sets = append(sets, *bf16Kernels)
	}
	return sets
}

// nativeBF16 returns the native set, or skips the test.
func nativeBF16(t *testing.T) bf16Set {
	t.Helper()
	if !BF16Native() {
		t.Skipf("no native bfloat16 kernels here (kernel set %s)", KernelName())
	}
	return *bf16Kernels
}

func TestPackBF16RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, sz := range [][3]int{{1, 1, 1}, {5, 3, 9}, {8, 2, 9}, {13, 7, 1}, {17, 64, 9}, {3, 65, 25}} {
		m, c, taps := sz[0], sz[1], sz[2]
		w := make([]float32, m*c*taps)
		for i := range w {
			w[i] = float32(rng.NormFloat64())
		}
		a := PackBF16(w, m, c, taps)
		cp := (c + 1) / 2
		if a.M != m || a.K != cp*taps || len(a.Data) != (m+7)/8*8*a.K {
			t.Fatalf("%v: packed M=%d K=%d len=%d", sz, a.M, a.K, len(a.Data))
		}
		rounded := make([]float32, len(w))
		RoundBF16(rounded, w)
		for i := 0; i < (m+7)/8*8; i++ {
			for p := 0; p < cp; p++ {
				for tp := 0; tp < taps; tp++ {
					word := a.Data[i/8*a.K*8+(p*taps+tp)*8+i%8]
					lo, hi := tensor.BFloat16ToFloat32(uint16(word)), tensor.BFloat16ToFloat32(uint16(word>>16))
					var wlo, whi float32
					if i < m {
						wlo = rounded[(i*c+2*p)*taps+tp]
						if 2*p+1 < c {
							whi = rounded[(i*c+2*p+1)*taps+tp]
						}
					}
					if lo != wlo || hi != whi {
						t.Fatalf("%v: row %d pair %d tap %d holds (%v, %v), want (%v, %v)", sz, i, p, tp, lo, hi, wlo, whi)
					}
					// Rounding to nearest: within half a bfloat16 ulp,
					// at most 2^-8 of the value.
					if i < m {
						x := float64(w[(i*c+2*p)*taps+tp])
						if d := math.Abs(float64(lo) - x); d > math.Abs(x)*(1.0/256) {
							t.Fatalf("%v: %v rounded to %v", sz, x, lo)
						}
					}
				}
			}
		}
	}
}

// specialFloats are the values whose conversion is not the plain rounding:
// signed zeros, denormals, infinities, NaNs, ties, the overflow to Inf.
func specialFloats() []float32 {
	return []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, math.Float32frombits(0x007fffff),
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.Float32frombits(0xff800001),
		math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000), math.Float32frombits(0x3f808001),
		math.Float32frombits(0x7f7fffff), math.Float32frombits(0x00800000), 1, -2.5}
}

func TestBF16PairsTwin(t *testing.T) {
	s := nativeBF16(t)
	rng := rand.New(rand.NewPCG(23, 24))
	for _, n := range []int{1, 5, 15, 16, 17, 31, 63, 64, 65, 200, 1000} {
		lo, hi := make([]float32, n), make([]float32, n)
		for i := range lo {
			lo[i], hi[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64()*1e-3)
		}
		sp := specialFloats()
		copy(lo, sp)
		for i := range min(n, len(sp)) {
			hi[n-1-i] = sp[i]
		}
		for _, h := range [][]float32{hi, nil} {
			const guard = 19
			buf := make([]uint32, n+2*guard)
			for i := range buf {
				buf[i] = 0xdeadbeef
			}
			want := make([]uint32, n)
			genericBF16.pairs(want, lo, h)
			s.pairs(buf[guard:guard+n], lo, h)
			for i, v := range buf {
				j := i - guard
				switch {
				case j < 0 || j >= n:
					if v != 0xdeadbeef {
						t.Fatalf("n=%d: wrote outside dst at %d", n, j)
					}
				case v != want[j]:
					t.Fatalf("n=%d hi=%v: pair %d of (%v, %v) is %#08x, the Go twin gives %#08x", n, h != nil, j, lo[j], at(h, j), v, want[j])
				}
			}
			// In place, over lo's own memory.
			inplace := append([]float32(nil), lo...)
			dst := asWords(inplace)
			s.pairs(dst, inplace, h)
			for j := range dst {
				if dst[j] != want[j] {
					t.Fatalf("n=%d hi=%v: in place, pair %d is %#08x, want %#08x", n, h != nil, j, dst[j], want[j])
				}
			}
		}
	}
}

func at(v []float32, i int) float32 {
	if v == nil {
		return 0
	}
	return v[i]
}

// TestBF16WordMatchesTensor: away from denormals, the activations' rounding
// is the weights' (tensor.Float32ToBFloat16).
func TestBF16WordMatchesTensor(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for i := 0; i < 100000; i++ {
		f := math.Float32frombits(rng.Uint32())
		if b := math.Float32bits(f); b&0x7f800000 == 0 {
			continue
		}
		if got, want := bf16Word(f), uint32(tensor.Float32ToBFloat16(f)); got != want {
			t.Fatalf("%v (%#08x): %#04x, tensor gives %#04x", f, math.Float32bits(f), got, want)
		}
	}
	if bf16Word(1e-40) != 0 || bf16Word(-1e-40) != 0x8000 {
		t.Errorf("denormals not flushed to signed zero: %#x %#x", bf16Word(1e-40), bf16Word(-1e-40))
	}
}

// bf16GemmCase is a random ConvGemmBF16 problem whose b is exactly as long
// as the largest offs[k]+n, from float32 weights w (m×2k, channel pairs with
// one tap) and float32 inputs.
type bf16GemmCase struct {
	m, k, n, ldc int
	w            []float32
	a            *PackedBF16
	bias         []float32
	bf           []float32 // the B pair rows as float32: row 2k' (lo) and 2k'+1 (hi) of pair row k', at offs
	b            []uint32
	offs         []int32
}

func newBF16GemmCase(rng *rand.Rand, m, k, n int, withBias bool, scale float64) bf16GemmCase {
	g := bf16GemmCase{m: m, k: k, n: n, ldc: n + 5}
	g.w = make([]float32, m*2*k)
	for i := range g.w {
		g.w[i] = float32(rng.NormFloat64() * scale)
	}
	g.a = PackBF16(g.w, m, 2*k, 1)
	g.offs = make([]int32, k)
	for i := range g.offs {
		g.offs[i] = int32(rng.IntN(3 * n))
	}
	g.offs[rng.IntN(k)] = int32(3 * n)
	size := 4 * n
	lo, hi := make([]float32, size), make([]float32, size)
	for i := range lo {
		lo[i], hi[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	g.bf = append(lo, hi...)
	g.b = make([]uint32, size)
	bf16PairsGo(g.b, lo, hi)
	if withBias {
		g.bias = make([]float32, m)
		for i := range g.bias {
			g.bias[i] = float32(rng.NormFloat64())
		}
	}
	return g
}

func checkBF16Twin(t *testing.T, s bf16Set, g bf16GemmCase, accumulate bool, rng *rand.Rand, what string) {
	t.Helper()
	const guard = 37
	size := (g.m-1)*g.ldc + g.n
	buf := make([]float32, guard+size+guard)
	for i := range buf {
		buf[i] = sentinel
	}
	c := buf[guard : guard+size]
	for i := 0; i < g.m; i++ {
		for j := 0; j < g.n; j++ {
			c[i*g.ldc+j] = float32(rng.NormFloat64())
		}
	}
	want := append([]float32(nil), c...)
	genericBF16.gemm(want, g.ldc, g.a, g.bias, g.b, g.offs, g.n, accumulate)
	s.gemm(c, g.ldc, g.a, g.bias, g.b, g.offs, g.n, accumulate)
	name := fmt.Sprintf("%s M=%d K=%d n=%d acc=%v bias=%v, %s", s.name, g.m, g.k, g.n, accumulate, g.bias != nil, what)
	for q := range buf {
		p := q - guard
		i, j := p/g.ldc, p%g.ldc
		if p >= 0 && i < g.m && j < g.n {
			// Bit for bit; NaNs only as NaNs (x86 makes its own
			// default NaN for Inf-Inf, Go's arithmetic another).
			got := buf[q]
			if math.Float32bits(got) != math.Float32bits(want[p]) && !(got != got && want[p] != want[p]) {
				t.Fatalf("%s: c[%d,%d] = %v (%#08x), the Go twin gives %v (%#08x)", name, i, j, got, math.Float32bits(got), want[p], math.Float32bits(want[p]))
			}
		} else if buf[q] != sentinel {
			t.Fatalf("%s: wrote outside the output at buffer index %d", name, q)
		}
	}
}

// TestConvGemmBF16TwinSpecial: denormal inputs read as zero, denormal
// results flushed, infinities and NaNs, in the kernel as in the twin.
func TestConvGemmBF16TwinSpecial(t *testing.T) {
	s := nativeBF16(t)
	rng := rand.New(rand.NewPCG(29, 30))
	sp := specialFloats()
	// Tiny magnitudes whose products and sums fall in the denormal range.
	tiny := []float32{0x1p-70, -0x1p-70, 0x1.8p-63, 0x1p-126, -0x1.2p-120, 0x1p-60, 3, -1}
	for trial := 0; trial < 50; trial++ {
		g := newBF16GemmCase(rng, 9, 4, 37, trial%2 == 0, 1)
		pick := func(v []float32) float32 { return v[rng.IntN(len(v))] }
		for i := range g.w {
			if rng.IntN(3) == 0 {
				g.w[i] = pick(tiny)
			} else if rng.IntN(8) == 0 {
				g.w[i] = pick(sp)
			}
		}
		g.a = PackBF16(g.w, g.m, 2*g.k, 1)
		for i := range g.bf {
			if rng.IntN(3) == 0 {
				g.bf[i] = pick(tiny)
			} else if rng.IntN(8) == 0 {
				g.bf[i] = pick(sp)
			}
		}
		half := len(g.bf) / 2
		bf16PairsGo(g.b, g.bf[:half], g.bf[half:])
		checkBF16Twin(t, s, g, trial%3 == 0, rng, "special values")
	}
}

// TestDPBF16FlushSemantics: single products at the bottom of the float32
// range, where VDPBF16PS's documented flushing decides the result (Intel
// SDM: denormal inputs read as zero, denormal results flushed to zero).
func TestDPBF16FlushSemantics(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	for _, tc := range []struct{ a, b, acc, want float32 }{
		{0x1p-70, 0x1p-70, 0, 0},                  // product 2^-140: a denormal, flushed
		{0x1p-63, 0x1p-63, 0, 0x1p-126},           // the smallest normal stays
		{0x1p-63, 0x1p-64, -0x1p-126, negZero},    // sum -2^-127 flushed, sign kept
		{0x1p-63, -0x1p-64, 0x1p-125, 0x1.8p-126}, // normal result
		{1, 1, 1e-40, 1},                          // a denormal accumulator reads as zero
		{1e-40, 1e30, 0, 0},                       // a denormal bfloat16 input reads as zero
		{0x1p-100, 0x1p-100, 1e-40, 0},            // both
		{3, float32(math.Inf(1)), 1, float32(math.Inf(1))},
	} {
		a := &PackedBF16{M: 1, K: 1, Data: make([]uint32, panelRows)}
		a.Data[0] = uint32(tensor.Float32ToBFloat16(tc.a)) // keeps a denormal a denormal
		b := []uint32{uint32(tensor.Float32ToBFloat16(tc.b))}
		for _, s := range bf16Sets() {
			c := []float32{tc.acc}
			s.gemm(c, 1, a, nil, b, []int32{0}, 1, true)
			if math.Float32bits(c[0]) != math.Float32bits(tc.want) {
				t.Errorf("%s: %g + %g·%g = %g, want %g", s.name, tc.acc, tc.a, tc.b, c[0], tc.want)
			}
		}
	}
}

// TestDPBF16Order: the twin's order (high pair first) is not a detail the
// tests would miss: summing the low products first changes some results,
// so agreement with the hardware pins the order down.
func TestDPBF16Order(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	differ := 0
	for i := 0; i < 10000; i++ {
		acc := float32(rng.NormFloat64())
		a := bf16Word(float32(rng.NormFloat64())) | bf16Word(float32(rng.NormFloat64()))<<16
		b := bf16Word(float32(rng.NormFloat64())) | bf16Word(float32(rng.NormFloat64()))<<16
		swap := func(x uint32) uint32 { return x>>16 | x<<16 }
		if dpBF16(acc, a, b) != dpBF16(acc, swap(a), swap(b)) {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("the order of the two products never matters on these values: the twin test cannot tell the orders apart")
	}
}

// TestConvGemmBF16Error bounds the bfloat16 GEMM's error against the exact
// float32-input product (float64): each factor rounded to 8 significant
// bits (relative error ≤ 2^-8 each, so < 2^-7 + 2^-16 per product) plus
// float32 accumulation (≤ K·2^-24 of Σ|a||b|). The bound, (2^-7 + 1e-5)
// of Σ|a||b|, holds for any inputs and fails for a kernel that dropped or
// repeated a pair (≥ 1/K of it), or mixed rows up; measured: 0.6-2e-3.
func TestConvGemmBF16Error(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	for _, s := range bf16Sets() {
		for _, sz := range [][3]int{{8, 9, 48}, {13, 33, 100}, {64, 289, 96}} {
			g := newBF16GemmCase(rng, sz[0], sz[1], sz[2], true, 0.05)
			c := make([]float32, (g.m-1)*g.ldc+g.n)
			s.gemm(c, g.ldc, g.a, g.bias, g.b, g.offs, g.n, false)
			half := len(g.bf) / 2
			worst := 0.0
			for i := 0; i < g.m; i++ {
				for j := 0; j < g.n; j++ {
					want, scale := float64(g.bias[i]), math.Abs(float64(g.bias[i]))
					for k := 0; k < g.k; k++ {
						o := int(g.offs[k]) + j
						for h := 0; h < 2; h++ {
							p := float64(g.w[i*2*g.k+2*k+h]) * float64(g.bf[h*half+o])
							want += p
							scale += math.Abs(p)
						}
					}
					d := math.Abs(float64(c[i*g.ldc+j]) - want)
					if d > (1.0/128+1e-5)*scale {
						t.Fatalf("%s %v: c[%d,%d] = %v, exact %v: error %.3g > bound %.3g", s.name, sz, i, j, c[i*g.ldc+j], want, d, (1.0/128+1e-5)*scale)
					}
					worst = max(worst, d/scale)
				}
			}
			t.Logf("%s M=%d K=%d pairs: worst error %.2e of Σ|a·b|", s.name, sz[0], sz[1], worst)
		}
	}
}

// TestConvGemmBF16Split: a column's value does not depend on how the
// columns are split between calls.
func TestConvGemmBF16Split(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	g := newBF16GemmCase(rng, 20, 300, 301, true, 0.1)
	for _, s := range bf16Sets() {
		whole := make([]float32, (g.m-1)*g.ldc+g.n)
		s.gemm(whole, g.ldc, g.a, g.bias, g.b, g.offs, g.n, false)
		for _, cut := range []int{1, 16, 47, 48, 150, 300} {
			split := make([]float32, len(whole))
			s.gemm(split, g.ldc, g.a, g.bias, g.b, g.offs, cut, false)
			s.gemm(split[cut:], g.ldc, g.a, g.bias, g.b[cut:], g.offs, g.n-cut, false)
			for i := range whole {
				if whole[i] != split[i] {
					t.Fatalf("%s: cut at %d changes c[%d]", s.name, cut, i)
				}
			}
		}
	}
}

// TestBF16StartupCheck: the check accepts the native set and rejects a
// set that differs from the twin in one rounding.
func TestBF16StartupCheck(t *testing.T) {
	s := nativeBF16(t)
	if !bf16AgreesWithGeneric(s) {
		t.Fatal("the native set fails its own start-up check")
	}
	bad := s
	bad.gemm = func(c []float32, ldc int, a *PackedBF16, bias []float32, b []uint32, offs []int32, n int, accumulate bool) {
		s.gemm(c, ldc, a, bias, b, offs, n, accumulate)
		c[ldc+n/2] = math.Nextafter32(c[ldc+n/2], 10)
	}
	if bf16AgreesWithGeneric(bad) {
		t.Error("a GEMM one ulp off passes the start-up check")
	}
	bad = s
	bad.pairs = func(dst []uint32, lo, hi []float32) {
		for j := range dst {
			dst[j] = math.Float32bits(lo[j])>>16 | math.Float32bits(at(hi, j))&0xffff0000 // truncation
		}
	}
	if bf16AgreesWithGeneric(bad) {
		t.Error("a truncating conversion passes the start-up check")
	}
	if _, ok := map[string]bool{"avx512bf16": true}[BF16KernelName()]; !ok {
		t.Errorf("BF16KernelName() = %q", BF16KernelName())
	}
}

func TestBF16KernelName(t *testing.T) {
	if BF16Native() != (BF16KernelName() != "") {
		t.Fatalf("BF16Native %v but BF16KernelName %q", BF16Native(), BF16KernelName())
	}
	if BF16Native() && KernelName() != "avx512" {
		t.Fatalf("native bfloat16 kernels beside the %s set", KernelName())
	}
}
