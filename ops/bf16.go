package ops

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// The bfloat16 GEMM of the bf16 precision option.
//
// A bfloat16 is the top half of a float32 (8 exponent bits, 8 significant
// bits). AVX512_BF16's VDPBF16PS multiplies pairs of bfloat16 values and
// accumulates in float32: each 32-bit lane of its operands holds one pair
// (lo | hi<<16), and per lane
//
//	acc += a.hi·b.hi;  acc += a.lo·b.lo
//
// each step an FMA rounded to nearest even, denormal inputs read as zero
// and denormal results flushed to zero (Intel SDM, VDPBF16PS; MXCSR is not
// used). So the k dimension of ConvGemmBF16 runs over pairs: the convolution
// pairs input channels 2p and 2p+1 at the same tap, and its B operand is a
// "pair plane" per channel pair (BF16Pairs), read through the same offset
// table as the float32 GEMM's channel planes. The conversion is one pass over
// the input (per step, for a recurrent state); the GEMM does half as many
// multiply instructions, each twice the work.

// PackedBF16 is a weight matrix of M rows and K pairs of k, packed as
// PackedA is (panels of panelRows rows, K×panelRows words, row fastest; the
// last panel zero-filled), one word per pair: lo | hi<<16.
type PackedBF16 struct {
	M, K int
	Data []uint32
}

// PackBF16 packs the m×(c·taps) row-major weight w (k = ch·taps + t, the
// (out, in, kh, kw) order of a PyTorch convolution weight with taps = kh·kw)
// pairing channels: pair k' = p·taps + t holds w[i, 2p, t] in its low half
// and w[i, 2p+1, t] in its high half, both rounded to the nearest bfloat16
// (ties to even: tensor.Float32ToBFloat16); for odd c the last pairs' high
// halves are zero. The B operand must pair its channels the same way.
func PackBF16(w []float32, m, c, taps int) *PackedBF16 {
	if m < 0 || c < 0 || taps < 1 || len(w) < m*c*taps {
		panic(fmt.Sprintf("ops.PackBF16: %d values for a %d×%d×%d weight", len(w), m, c, taps))
	}
	cp := (c + 1) / 2
	k := cp * taps
	panels := (m + panelRows - 1) / panelRows
	data := make([]uint32, panels*k*panelRows)
	for i := 0; i < m; i++ {
		dst := data[i/panelRows*k*panelRows+i%panelRows:]
		row := w[i*c*taps : (i+1)*c*taps]
		for p := 0; p < cp; p++ {
			for t := 0; t < taps; t++ {
				v := uint32(tensor.Float32ToBFloat16(row[2*p*taps+t]))
				if 2*p+1 < c {
					v |= uint32(tensor.Float32ToBFloat16(row[(2*p+1)*taps+t])) << 16
				}
				dst[(p*taps+t)*panelRows] = v
			}
		}
	}
	return &PackedBF16{M: m, K: k, Data: data}
}

// RoundBF16 sets dst[i] to src[i] rounded to the nearest bfloat16 (ties to
// even) and widened back: the weights of the bf16 option where the CPU has
// no bfloat16 arithmetic and float32 kernels run.
func RoundBF16(dst, src []float32) {
	for i, v := range src[:len(dst)] {
		dst[i] = tensor.BFloat16ToFloat32(tensor.Float32ToBFloat16(v))
	}
}

// BF16Pairs writes dst[j] = bf16(lo[j]) | bf16(hi[j])<<16 for j < len(dst),
// rounding as VCVTNE2PS2BF16 does (to nearest even; a denormal becomes a
// zero of its sign, a NaN a quiet NaN); hi == nil gives zero high halves.
// lo and hi must hold at least len(dst) values; dst may share lo's memory
// exactly (in place) but must not overlap it or hi otherwise.
func BF16Pairs(dst []uint32, lo, hi []float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	if len(lo) < n || hi != nil && len(hi) < n {
		panic(fmt.Sprintf("ops.BF16Pairs: %d pairs from %d and %d values", n, len(lo), len(hi)))
	}
	bf16Impl().pairs(dst, lo[:n], hi)
}

// ConvGemmBF16 is ConvGemm over pairs: for i < a.M and j < n,
//
//	c[i*ldc+j] = (accumulate ? c[i*ldc+j] : bias[i]) + Σ_k dot(A[i,k], b[offs[k]+j])
//
// with dot VDPBF16PS's pair product (see PackedBF16), the k in order. bias
// may be nil (zero). As ConvGemm, it reads b only at offs[k]+j for j < n,
// writes c only at i*ldc+j for j < n, and a column's result does not depend
// on how columns are split between calls. Without AVX512_BF16 (BF16Native
// false) it runs the Go twin, which is slow: callers then use float32
// kernels on rounded weights instead.
func ConvGemmBF16(c []float32, ldc int, a *PackedBF16, bias []float32, b []uint32, offs []int32, n int, accumulate bool) {
	if n <= 0 || a.M == 0 {
		return
	}
	checkGemmArgs("ops.ConvGemmBF16", "pairs", c, ldc, a.M, a.K, bias, len(b), offs, n)
	bf16Impl().gemm(c, ldc, a, bias, b, offs, n, accumulate)
}

// bf16Set is one implementation of the bfloat16 kernels.
type bf16Set struct {
	name  string
	gemm  func(c []float32, ldc int, a *PackedBF16, bias []float32, b []uint32, offs []int32, n int, accumulate bool)
	pairs func(dst []uint32, lo, hi []float32)
}

var genericBF16 = bf16Set{name: "generic", gemm: convGemmBF16Generic, pairs: bf16PairsGo}

// bf16Kernels is the native bfloat16 set, chosen on first use (after the
// float32 set, which it must match); nil when this CPU or build has none
// (or it failed its check), and the bf16 option runs on float32 kernels.
var (
	bf16Kernels *bf16Set
	bf16Once    sync.Once
)

func bf16Select() { bf16Once.Do(func() { bf16Kernels = selectBF16(kernels) }) }

// selectBF16 returns the bfloat16 set to use with the float32 set k: one
// that this CPU can run beside k and that passes its start-up check, or nil.
func selectBF16(k kernelSet) *bf16Set {
	s := cpuBF16(k)
	if s == nil || !bf16AgreesWithGeneric(*s) {
		return nil
	}
	return s
}

func bf16Impl() *bf16Set {
	bf16Select()
	if bf16Kernels != nil {
		return bf16Kernels
	}
	return &genericBF16
}

// BF16Native reports whether the bf16 option has native bfloat16
// arithmetic here: the AVX512_BF16 kernels, chosen only with the avx512
// float32 set (so CONVLSTM_KERNEL=avx2 turns them off too) and after a
// start-up check against their Go twins. When false, the option rounds the
// weights to bfloat16 and runs the float32 kernels: the same weights, not
// faster.
func BF16Native() bool {
	bf16Select()
	return bf16Kernels != nil
}

// BF16KernelName names the native bfloat16 kernels ("avx512bf16"), or
// returns "" when there are none (BF16Native false).
func BF16KernelName() string {
	bf16Select()
	if bf16Kernels == nil {
		return ""
	}
	return bf16Kernels.name
}

// bf16Word is VCVTNE2PS2BF16's conversion of one float32.
func bf16Word(f float32) uint32 {
	b := math.Float32bits(f)
	switch {
	case b&0x7f800000 == 0: // zero or denormal: a zero of its sign
		return b >> 16 & 0x8000
	case b&0x7fffffff > 0x7f800000: // NaN: truncated, made quiet
		return b>>16 | 0x40
	}
	return (b + 0x7fff + b>>16&1) >> 16
}

func bf16PairsGo(dst []uint32, lo, hi []float32) {
	lo = lo[:len(dst)]
	if hi == nil {
		for j, v := range lo {
			dst[j] = bf16Word(v)
		}
		return
	}
	hi = hi[:len(dst)]
	for j := range dst {
		dst[j] = bf16Word(lo[j]) | bf16Word(hi[j])<<16
	}
}

// bf16In widens a bfloat16 as VDPBF16PS reads it: denormals as zero.
func bf16In(h uint32) float64 {
	if h&0x7f80 == 0 {
		h &= 0x8000
	}
	return float64(math.Float32frombits(h << 16))
}

// ftz flushes a denormal float32 to a zero of its sign.
func ftz(f float32) float32 {
	if b := math.Float32bits(f); b&0x7f800000 == 0 {
		return math.Float32frombits(b & 0x80000000)
	}
	return f
}

// dpBF16 is one lane of VDPBF16PS: acc + a.hi·b.hi, then + a.lo·b.lo, each
// an FMA rounded to nearest even with denormals in read as zero and
// denormals out flushed. A product of two bfloat16 values and its sum with a
// float32 are exact in float64 unless their exponents lie far apart, and
// then the float64 rounding error is too small to move the float32 rounding,
// so the float64 sum rounded once to float32 is the FMA's result.
func dpBF16(acc float32, a, b uint32) float32 {
	acc = ftz(acc)
	acc = ftz(float32(float64(acc) + bf16In(a>>16)*bf16In(b>>16)))
	return ftz(float32(float64(acc) + bf16In(a&0xffff)*bf16In(b&0xffff)))
}

// convGemmBF16Generic is the Go twin of the bfloat16 GEMM: every column's
// chain of dpBF16 over k in order, as the kernel computes it.
func convGemmBF16Generic(c []float32, ldc int, a *PackedBF16, bias []float32, b []uint32, offs []int32, n int, accumulate bool) {
	K := a.K
	for i := 0; i < a.M; i++ {
		ap := a.Data[i/panelRows*K*panelRows+i%panelRows:]
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			var s float32
			switch {
			case accumulate:
				s = row[j]
			case bias != nil:
				s = bias[i]
			}
			for k, o := range offs {
				s = dpBF16(s, ap[k*panelRows], b[int(o)+j])
			}
			row[j] = s
		}
	}
}

// bf16AgreesWithGeneric runs s on small problems (row and column tails,
// odd and even K, bias, accumulation; special values in the conversion) and
// compares with the Go twins bit for bit.
func bf16AgreesWithGeneric(s bf16Set) bool {
	seed := uint32(7)
	rnd := func() float32 {
		seed = seed*1664525 + 1013904223
		return float32(seed>>8)/(1<<24)*2 - 1
	}
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = rnd()
		}
		return v
	}
	lo, hi := fill(53), fill(53)
	copy(lo, []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000), math.Float32frombits(0x7f7fffff)})
	for _, h := range [][]float32{hi, nil} {
		got, want := make([]uint32, len(lo)), make([]uint32, len(lo))
		s.pairs(got, lo, h)
		genericBF16.pairs(want, lo, h)
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
	}

	const ldc = 60
	for _, sz := range [][3]int{{13, 11, 53}, {8, 2, 48}, {3, 1, 5}} {
		m, kk, n := sz[0], sz[1], sz[2]
		a := PackBF16(fill(m*2*kk), m, 2*kk, 1)
		bias := fill(m)
		offs := make([]int32, kk)
		for i := range offs {
			offs[i] = int32(i * 7)
		}
		b := make([]uint32, int(offs[kk-1])+n)
		bf16PairsGo(b, fill(len(b)), fill(len(b)))
		c0 := fill((m-1)*ldc + n)
		for mode := 0; mode < 3; mode++ {
			got, want := append([]float32(nil), c0...), append([]float32(nil), c0...)
			bs := bias
			if mode == 0 {
				bs = nil
			}
			s.gemm(got, ldc, a, bs, b, offs, n, mode == 2)
			genericBF16.gemm(want, ldc, a, bs, b, offs, n, mode == 2)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					return false
				}
			}
		}
	}
	return true
}

// asWords views float32 scratch as 32-bit words: the Winograd workspace
// holds the transformed input's bfloat16 pairs in place of its float32
// values.
func asWords(f []float32) []uint32 {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&f[0])), len(f))
}

var (
	bf16PeakOnce sync.Once
	bf16Peak     float64
)

// PeakBF16 measures, once per process, one core's peak of independent
// VDPBF16PS chains in GFLOP/s (a bfloat16 product-add counted as two flops,
// as a float32 FMA is), the yardstick of the native bfloat16 kernels; 0
// where the CPU has no AVX512_BF16.
func PeakBF16() float64 {
	bf16PeakOnce.Do(func() {
		if ps := bf16Probes(); len(ps) > 0 {
			bf16Peak = measurePeaks(ps)[0].GFLOPS
		}
	})
	return bf16Peak
}
