package ops

import (
	"math"
	"os"
	"slices"
)

// kernels is the kernel set the exported functions call, chosen at start-up:
// GEMM, gate update and Winograd transforms always come from the same set,
// so KernelName, CONVLSTM_KERNEL and the start-up check describe every
// kernel that runs. The generic set is always available as the twin.
var kernels = genericKernels

// kernelSet is one complete implementation of the kernels.
type kernelSet struct {
	name      string
	bits      int // register width of its arithmetic (32: scalar)
	convGemm  func(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool)
	lstmGates func(gi, gf, gO, gg, c, h []float32)
	// lstmPeep is the peephole cell update (lstmPeepGeneric, within
	// lstmGates' tolerance), nil where a set has no vector form of it.
	lstmPeep func(gi, gf, gO, gg, wi, wf, wo, c, cNew, h []float32)
	// winoIn and winoOut are the Winograd input and output transforms
	// (contracts at winoInGo and winoOutGo). Every set computes them with
	// the Go twins' operations in the Go twins' order, so they are
	// bit-identical across sets.
	winoIn  func(dst []float32, xs int, src []float32, rs, ng int)
	winoOut func(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int)
	// winoIn5 and winoOut5 are those of F(2×2, 5×5) (winoIn5Go,
	// winoOut5Go), under the same rule.
	winoIn5  func(dst []float32, xs int, src []float32, rs, ng int)
	winoOut5 func(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int)
	// relu, mulAdd and blend are Relu's, MulAdd's and Blend's loops
	// (reluGeneric, mulAddGeneric, blendGeneric), bit-identical across
	// sets.
	relu func(d []float32)
	// leakyRelu is LeakyRelu's (leakyReluGeneric), bit-identical across
	// sets.
	leakyRelu func(d []float32, alpha float32)
	// max2 and maxPairs are Max2's and MaxPairs' (max2Generic,
	// maxPairsGeneric), bit-identical across sets.
	max2     func(d, a, b []float32)
	maxPairs func(d, src []float32)
	mulAdd   func(d, a, b, c []float32)
	blend    func(d, a, b []float32, wa, wb float32)
	// gather2 is Taps2.Apply's loop (gather2Generic), bit-identical
	// across sets; its indices are already checked.
	gather2 func(d, src []float32, i0, i1 []int32, w0, w1 []float32)
	// perm2 is gather2 for tables whose every 16 outputs read within 32
	// consecutive values (perm2Generic, bit-identical), or nil where no
	// vector form beats gather2 (Taps2 then gathers).
	perm2 func(d, src []float32, base, r0, r1 []int32, w0, w1 []float32)
	// scaleShift, normElem and moments are ScaleShift's, NormElem's and
	// Moments' loops (…Generic), bit-identical across sets.
	scaleShift func(d, x []float32, sub, mul, add float32)
	normElem   func(d, x, sc, bs []float32, sub, mul float32)
	moments    func(acc *[32]float64, x []float32, k float64)
	// unverified sets are offered only if agreesWithGeneric passes.
	unverified bool
}

var genericKernels = kernelSet{
	name:       "generic",
	bits:       32,
	convGemm:   convGemmGeneric,
	lstmGates:  lstmGatesGeneric,
	lstmPeep:   lstmPeepGeneric,
	winoIn:     winoInGo,
	winoOut:    winoOutGo,
	winoIn5:    winoIn5Go,
	winoOut5:   winoOut5Go,
	relu:       reluGeneric,
	leakyRelu:  leakyReluGeneric,
	max2:       max2Generic,
	maxPairs:   maxPairsGeneric,
	mulAdd:     mulAddGeneric,
	blend:      blendGeneric,
	gather2:    gather2Generic,
	scaleShift: scaleShiftGeneric,
	normElem:   normElemGeneric,
	moments:    momentsGeneric,
}

// availableKernels is cpuKernels less any unverified set that disagrees
// with the generic kernels.
func availableKernels() []kernelSet {
	var ks []kernelSet
	for _, k := range cpuKernels() {
		if !k.unverified || agreesWithGeneric(k) {
			ks = append(ks, k)
		}
	}
	return ks
}

// KernelName reports which kernel set ConvGemm, LSTMGates and the Winograd
// transforms use: "generic", "avx2", "avx512" or "neon". A set that fails
// its start-up check is never used (an AVX-512 CPU then reports "avx2").
func KernelName() string { return kernels.name }

// selectKernels installs the preferred available set (the last one), or the
// one CONVLSTM_KERNEL names if this CPU can run it.
func selectKernels(avail []kernelSet) {
	k := avail[len(avail)-1]
	if want := os.Getenv("CONVLSTM_KERNEL"); want != "" {
		for _, s := range avail {
			if s.name == want {
				k = s
			}
		}
	}
	kernels = k
}

func init() { selectKernels(availableKernels()) }

// agreesWithGeneric runs k on small problems with row and column tails,
// bias and accumulation, and compares with the generic kernels: GEMM and
// gates within rounding, the Winograd transforms bit for bit.
func agreesWithGeneric(k kernelSet) bool {
	seed := uint32(1)
	rnd := func() float32 {
		seed = seed*1664525 + 1013904223
		return float32(seed>>8)/(1<<24)*2 - 1
	}
	fill := func(n int, scale float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = scale * rnd()
		}
		return v
	}
	same := func(a, b []float32, tol float64) bool {
		for i := range a {
			if !(math.Abs(float64(a[i]-b[i])) <= tol) {
				return false
			}
		}
		return true
	}

	const m, kk, n, ldc = 13, 11, 53, 60
	a := PackA(fill(m*kk, 1), m, kk)
	bias := fill(m, 1)
	offs := make([]int32, kk)
	for i := range offs {
		offs[i] = int32(i * 7)
	}
	b := fill(int(offs[kk-1])+n, 1)
	got, want := make([]float32, (m-1)*ldc+n), make([]float32, (m-1)*ldc+n)
	for _, acc := range []bool{false, true} {
		k.convGemm(got, ldc, a, bias, b, offs, n, acc)
		genericKernels.convGemm(want, ldc, a, bias, b, offs, n, acc)
		if !same(got, want, 1e-4) {
			return false
		}
	}

	const gn = 37
	g := make([][]float32, 6)
	for q := range g {
		g[q] = fill(gn, 4)
	}
	c2 := append([]float32(nil), g[4]...)
	h2 := make([]float32, gn)
	k.lstmGates(g[0], g[1], g[2], g[3], g[4], g[5])
	genericKernels.lstmGates(g[0], g[1], g[2], g[3], c2, h2)
	if !same(g[4], c2, 1e-5) || !same(g[5], h2, 1e-5) {
		return false
	}
	if k.lstmPeep != nil {
		w := [3][]float32{fill(gn, 1), fill(gn, 1), fill(gn, 1)}
		c, hk, ck, hg, cg := fill(gn, 4), make([]float32, gn), make([]float32, gn), make([]float32, gn), make([]float32, gn)
		k.lstmPeep(g[0], g[1], g[2], g[3], w[0], w[1], w[2], c, ck, hk)
		lstmPeepGeneric(g[0], g[1], g[2], g[3], w[0], w[1], w[2], c, cg, hg)
		if !same(ck, cg, 1e-5) || !same(hk, hg, 1e-5) {
			return false
		}
	}

	// bitsAgree runs f with k and with the generic set, each on its own
	// copy of d, and reports whether they leave the same bits (NaNs
	// included): the transforms and the streaming kernels are bit-identical
	// across sets.
	bitsAgree := func(d []float32, f func(ks kernelSet, d []float32)) bool {
		a, b := slices.Clone(d), slices.Clone(d)
		f(k, a)
		f(genericKernels, b)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				return false
			}
		}
		return true
	}

	// perm2 on three blocks of 16, every offset and both weights' signs.
	if k.perm2 != nil {
		src := fill(80, 2)
		base, r0, r1 := []int32{0, 48, 17}, make([]int32, 48), make([]int32, 48)
		for o := range r0 {
			r0[o], r1[o] = int32(o*7%32), int32((o*13+5)%32)
		}
		w0, w1 := fill(48, 1), fill(48, 1)
		if !bitsAgree(fill(48, 1), func(ks kernelSet, d []float32) {
			if ks.perm2 == nil {
				perm2Generic(d, src, base, r0, r1, w0, w1)
				return
			}
			ks.perm2(d, src, base, r0, r1, w0, w1)
		}) {
			return false
		}
	}

	// The Winograd transforms of F(2×2, 3×3) and F(2×2, 5×5): two groups of
	// 8 tiles, ξ planes xs apart; then the output transform of 3 rows in
	// each mode, bias rows and old values included.
	const ng, rs, xs, rows, ldm, wp, ldo = 2, 37, 19, 3, 23, 35, 80
	for _, r := range []int{3, 5} {
		nx := (r + 1) * (r + 1)
		src := fill(r*rs+16*ng+r-1, 1)
		if !bitsAgree(fill((nx-1)*xs+8*ng, 1), func(ks kernelSet, v []float32) { ks.winoInFor(r)(v, xs, src, rs, ng) }) {
			return false
		}
		mIn := fill((nx-1)*xs*3+(rows-1)*ldm+8*ng, 1)
		for mode := 0; mode < 3; mode++ {
			if !bitsAgree(fill((rows-1)*ldo+wp+16*ng, 1), func(ks kernelSet, o []float32) {
				ks.winoOutFor(r)(o, ldo, wp, mIn, 3*xs, ldm, bias, rows, mode, ng)
			}) {
				return false
			}
		}
	}

	// The streaming kernels over every tail length, with NaN and ±0 among
	// the values where the kernel treats them specially (the first half of
	// a), finite values elsewhere (its second half, b, c).
	negZero, nan := float32(math.Copysign(0, -1)), float32(math.NaN())
	for n := 0; n <= 37; n++ {
		d := fill(n+1, 1)
		if n > 2 {
			d[1], d[2] = negZero, nan
		}
		a, b, c := fill(2*n, 2), fill(n, 2), fill(n, 2)
		if n > 3 {
			a[1], b[1], a[2], b[2], a[3], b[3] = nan, 2, negZero, 0, negZero, negZero
		}
		i0, i1 := make([]int32, n), make([]int32, n)
		for o := range i0 {
			i0[o], i1[o] = int32(seed>>9)%29, int32(o*7%29)
			rnd()
		}
		src := fill(29, 2)
		for _, f := range []func(ks kernelSet, d []float32){
			func(ks kernelSet, d []float32) { ks.relu(d[:n]) },
			func(ks kernelSet, d []float32) { ks.leakyRelu(d[:n], 0.1) },
			func(ks kernelSet, d []float32) { ks.max2(d[:n], a[:n], b) },
			func(ks kernelSet, d []float32) { ks.maxPairs(d[:n], a) },
			func(ks kernelSet, d []float32) { ks.mulAdd(d[:n], a[n:], b, c) },
			func(ks kernelSet, d []float32) { ks.blend(d[:n], a[n:], b, 0.3, -1.7) },
			func(ks kernelSet, d []float32) { ks.gather2(d[:n], src, i0, i1, b, c) },
			func(ks kernelSet, d []float32) { ks.scaleShift(d[:n], a[n:], 0.25, 1.7, -0.3) },
			func(ks kernelSet, d []float32) { ks.normElem(d[:n], a[n:], b, c, 0.25, 1.7) },
		} {
			if !bitsAgree(d, f) {
				return false
			}
		}
		var acc [2][32]float64
		k.moments(&acc[0], a[n:], 0.5)
		genericKernels.moments(&acc[1], a[n:], 0.5)
		if acc[0] != acc[1] {
			return false
		}
	}
	return true
}
