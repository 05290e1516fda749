//go:build amd64 && !purego

package ops

// convGemmAVX2 uses the 4-row × 24-column AVX2 tile, twice per panel.
func convGemmAVX2(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool) {
	convGemmAsm(c, ldc, a, bias, b, offs, n, accumulate, gemmPanelAVX2)
}

// convGemmAVX512 uses the 8-row × 48-column AVX-512 tile.
func convGemmAVX512(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool) {
	convGemmAsm(c, ldc, a, bias, b, offs, n, accumulate, gemmPanelAVX512)
}

// lstmGatesAVX2 and lstmGatesAVX512 run the vector kernel over whole
// iterations (two vectors) and push the remainder through the same kernel
// via a padded copy, so every position gets bit-identical arithmetic however
// the caller splits.
func lstmGatesAVX2(gi, gf, gO, gg, c, h []float32) {
	lstmGatesAsm(gi, gf, gO, gg, c, h, false)
}

func lstmGatesAVX512(gi, gf, gO, gg, c, h []float32) {
	lstmGatesAsm(gi, gf, gO, gg, c, h, true)
}

// gatesAsm calls the kernel directly, not through a func value: an indirect
// call would make the padded tail buffer escape to the heap.
func gatesAsm(wide bool, gi, gf, gO, gg, c, h *float32, n int) {
	if wide {
		gatesAVX512(gi, gf, gO, gg, c, h, n)
	} else {
		gatesAVX2(gi, gf, gO, gg, c, h, n)
	}
}

// gateIterations splits n positions into the whole iterations of a gate
// kernel (two vectors each) and a tail of fewer than width.
func gateIterations(n int, wide bool) (width, full int) {
	width = 16
	if wide {
		width = 32
	}
	return width, n - n%width
}

func lstmGatesAsm(gi, gf, gO, gg, c, h []float32, wide bool) {
	n := len(c)
	width, full := gateIterations(n, wide)
	if full > 0 {
		gatesAsm(wide, &gi[0], &gf[0], &gO[0], &gg[0], &c[0], &h[0], full)
	}
	if full == n {
		return
	}
	var buf [6][32]float32
	copy(buf[0][:], gi[full:n])
	copy(buf[1][:], gf[full:n])
	copy(buf[2][:], gO[full:n])
	copy(buf[3][:], gg[full:n])
	copy(buf[4][:], c[full:n])
	gatesAsm(wide, &buf[0][0], &buf[1][0], &buf[2][0], &buf[3][0], &buf[4][0], &buf[5][0], width)
	copy(c[full:n], buf[4][:])
	copy(h[full:n], buf[5][:])
}

// lstmPeepAVX2 and lstmPeepAVX512 are lstmGatesAsm for the peephole
// kernel: whole iterations, then the rest through a padded copy.
func lstmPeepAVX2(gi, gf, gO, gg, wi, wf, wo, c, cNew, h []float32) {
	lstmPeepAsm(false, gi, gf, gO, gg, wi, wf, wo, c, cNew, h)
}

func lstmPeepAVX512(gi, gf, gO, gg, wi, wf, wo, c, cNew, h []float32) {
	lstmPeepAsm(true, gi, gf, gO, gg, wi, wf, wo, c, cNew, h)
}

// peepAsm calls the kernel directly (see gatesAsm).
func peepAsm(wide bool, gi, gf, gO, gg, wi, wf, wo, c, cNew, h *float32, n int) {
	if wide {
		gatesPeepAVX512(gi, gf, gO, gg, wi, wf, wo, c, cNew, h, n)
	} else {
		gatesPeepAVX2(gi, gf, gO, gg, wi, wf, wo, c, cNew, h, n)
	}
}

func lstmPeepAsm(wide bool, gi, gf, gO, gg, wi, wf, wo, c, cNew, h []float32) {
	n := len(c)
	width, full := gateIterations(n, wide)
	if full > 0 {
		peepAsm(wide, &gi[0], &gf[0], &gO[0], &gg[0], &wi[0], &wf[0], &wo[0], &c[0], &cNew[0], &h[0], full)
	}
	if full == n {
		return
	}
	var buf [10][32]float32
	for q, x := range [][]float32{gi, gf, gO, gg, wi, wf, wo, c} {
		copy(buf[q][:], x[full:n])
	}
	peepAsm(wide, &buf[0][0], &buf[1][0], &buf[2][0], &buf[3][0], &buf[4][0], &buf[5][0], &buf[6][0], &buf[7][0], &buf[8][0], &buf[9][0], width)
	copy(cNew[full:n], buf[8][:])
	copy(h[full:n], buf[9][:])
}

// The streaming kernels below run the vector loop over whole vectors of d
// (whole groups of 16 for moments) and the Go loop over the rest: the same
// operations per value, so the same bits. Lengths are checked by the
// exported functions (Relu, MulAdd, Blend, Taps2.Apply, ScaleShift,
// NormElem, Moments).

func reluAVX2Slices(d []float32)   { reluVec(reluAVX2, 8, d) }
func reluAVX512Slices(d []float32) { reluVec(reluAVX512, 16, d) }

func reluVec(k func(d *float32, n int), width int, d []float32) {
	v := len(d) / width * width
	if v > 0 {
		k(&d[0], v)
	}
	reluGeneric(d[v:])
}

func leakyReluAVX2Slices(d []float32, alpha float32)   { leakyReluVec(leakyReluAVX2, 8, d, alpha) }
func leakyReluAVX512Slices(d []float32, alpha float32) { leakyReluVec(leakyReluAVX512, 16, d, alpha) }

func leakyReluVec(k func(d *float32, alpha float32, n int), width int, d []float32, alpha float32) {
	v := len(d) / width * width
	if v > 0 {
		k(&d[0], alpha, v)
	}
	leakyReluGeneric(d[v:], alpha)
}

func max2AVX2Slices(d, a, b []float32)   { max2Vec(max2AVX2, 8, d, a, b) }
func max2AVX512Slices(d, a, b []float32) { max2Vec(max2AVX512, 16, d, a, b) }

func max2Vec(k func(d, a, b *float32, n int), width int, d, a, b []float32) {
	v := len(d) / width * width
	if v > 0 {
		k(&d[0], &a[0], &b[0], v)
	}
	max2Generic(d[v:], a[v:], b[v:])
}

func maxPairsAVX2Slices(d, src []float32)   { maxPairsVec(maxPairsAVX2, 8, d, src) }
func maxPairsAVX512Slices(d, src []float32) { maxPairsVec(maxPairsAVX512, 16, d, src) }

func maxPairsVec(k func(d, src *float32, n int), width int, d, src []float32) {
	v := len(d) / width * width
	if v > 0 {
		k(&d[0], &src[0], v)
	}
	maxPairsGeneric(d[v:], src[2*v:])
}

func mulAddAVX2Slices(d, a, b, c []float32)   { mulAddVec(mulAddAVX2, 8, d, a, b, c) }
func mulAddAVX512Slices(d, a, b, c []float32) { mulAddVec(mulAddAVX512, 16, d, a, b, c) }

func mulAddVec(k func(d, a, b, c *float32, n int), width int, d, a, b, c []float32) {
	v := len(d) / width * width
	if v > 0 {
		k(&d[0], &a[0], &b[0], &c[0], v)
	}
	mulAddGeneric(d[v:], a[v:], b[v:], c[v:])
}

func blendAVX2Slices(d, a, b []float32, wa, wb float32) { blendVec(blendAVX2, 8, d, a, b, wa, wb) }
func blendAVX512Slices(d, a, b []float32, wa, wb float32) {
	blendVec(blendAVX512, 16, d, a, b, wa, wb)
}

func blendVec(k func(d, a, b *float32, wa, wb float32, n int), width int, d, a, b []float32, wa, wb float32) {
	v := len(d) / width * width
	if v > 0 {
		k(&d[0], &a[0], &b[0], wa, wb, v)
	}
	blendGeneric(d[v:], a[v:], b[v:], wa, wb)
}

// perm2AVX512Slices is perm2Generic: len(d) a multiple of 16, the
// table checked by NewTaps2.
func perm2AVX512Slices(d, src []float32, base, r0, r1 []int32, w0, w1 []float32) {
	if len(d) > 0 {
		perm2AVX512(&d[0], &src[0], &base[0], &r0[0], &r1[0], &w0[0], &w1[0], len(d))
	}
}

// The indices of gather2 are checked by NewTaps2.
func gather2AVX2Slices(d, src []float32, i0, i1 []int32, w0, w1 []float32) {
	gather2Vec(gather2AVX2, 8, d, src, i0, i1, w0, w1)
}

func gather2AVX512Slices(d, src []float32, i0, i1 []int32, w0, w1 []float32) {
	gather2Vec(gather2AVX512, 16, d, src, i0, i1, w0, w1)
}

func gather2Vec(k func(d, src *float32, i0, i1 *int32, w0, w1 *float32, n int), width int, d, src []float32, i0, i1 []int32, w0, w1 []float32) {
	v := len(d) / width * width
	if v > 0 {
		k(&d[0], &src[0], &i0[0], &i1[0], &w0[0], &w1[0], v)
	}
	gather2Generic(d[v:], src, i0[v:], i1[v:], w0[v:], w1[v:])
}

func scaleShiftAVX2Slices(d, x []float32, sub, mul, add float32) {
	scaleShiftVec(scaleShiftAVX2, 8, d, x, sub, mul, add)
}

func scaleShiftAVX512Slices(d, x []float32, sub, mul, add float32) {
	scaleShiftVec(scaleShiftAVX512, 16, d, x, sub, mul, add)
}

func scaleShiftVec(k func(d, x *float32, sub, mul, add float32, n int), width int, d, x []float32, sub, mul, add float32) {
	v := len(d) / width * width
	if v > 0 {
		k(&d[0], &x[0], sub, mul, add, v)
	}
	scaleShiftGeneric(d[v:], x[v:], sub, mul, add)
}

func normElemAVX2Slices(d, x, sc, bs []float32, sub, mul float32) {
	normElemVec(normElemAVX2, 8, d, x, sc, bs, sub, mul)
}

func normElemAVX512Slices(d, x, sc, bs []float32, sub, mul float32) {
	normElemVec(normElemAVX512, 16, d, x, sc, bs, sub, mul)
}

func normElemVec(k func(d, x, sc, bs *float32, sub, mul float32, n int), width int, d, x, sc, bs []float32, sub, mul float32) {
	v := len(d) / width * width
	if v > 0 {
		k(&d[0], &x[0], &sc[0], &bs[0], sub, mul, v)
	}
	normElemGeneric(d[v:], x[v:], sc[v:], bs[v:], sub, mul)
}

func momentsAVX2Slices(acc *[32]float64, x []float32, k float64) {
	momentsVec(momentsAVX2, acc, x, k)
}

func momentsAVX512Slices(acc *[32]float64, x []float32, k float64) {
	momentsVec(momentsAVX512, acc, x, k)
}

func momentsVec(kern func(acc *float64, x *float32, k float64, n int), acc *[32]float64, x []float32, k float64) {
	v := len(x) / 16 * 16
	if v > 0 {
		kern(&acc[0], &x[0], k, v)
	}
	momentsGeneric(acc, x[v:], k) // v is a multiple of 16: the same lanes
}
