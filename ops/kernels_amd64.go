//go:build amd64 && !purego

package ops

//go:generate go run ./internal/asmgen -out kernels_amd64.s -stubs stubs_amd64.go -pkg ops

// gemmPanelFunc is the shape of the generated GEMM kernels.
type gemmPanelFunc func(c *float32, ldc int, a *float32, bias *float32, b *float32, offs *int32, k int, n int, rows int, mode int)

// convGemmAVX2 uses the 4-row × 24-column AVX2 tile, twice per panel.
func convGemmAVX2(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool) {
	convGemmAsm(c, ldc, a, bias, b, offs, n, accumulate, gemmPanelAVX2)
}

// convGemmAVX512 uses the 8-row × 48-column AVX-512 tile.
func convGemmAVX512(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool) {
	convGemmAsm(c, ldc, a, bias, b, offs, n, accumulate, gemmPanelAVX512)
}

// convGemmAsm walks column blocks and, inside each, the packed panels; the
// kernel covers one panel's rows over the block's columns.
func convGemmAsm(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool, kern gemmPanelFunc) {
	K := a.K
	if K == 0 || n <= 0 {
		// Nothing to sum; the kernels assume at least one k.
		convGemmGeneric(c, ldc, a, bias, b, offs, n, accumulate)
		return
	}
	mode := 0
	if accumulate {
		mode = 2
	} else if bias != nil {
		mode = 1
	}
	var bp *float32
	kc := K
	if gemmBlockK > 0 {
		// Even blocks: K = 577 runs as 193+192+192, not 192·3+1.
		blocks := (K + gemmBlockK - 1) / gemmBlockK
		kc = (K + blocks - 1) / blocks
	}
	for j0, nb := 0, 0; j0 < n; j0 += nb {
		nb = min(gemmBlockCols, n-j0)
		if n-j0-nb < gemmBlockCols/2 {
			// A short last block would repeat every panel's A sweep
			// for few columns: fold it into this one.
			nb = n - j0
		}
		for i0 := 0; i0 < a.M; i0 += panelRows {
			rows := min(panelRows, a.M-i0)
			if mode == 1 {
				bp = &bias[i0]
			}
			// Later k blocks continue from the partial sums in c: the
			// float32 store and reload are exact, so each column still
			// sees one FMA chain over k = 0..K-1.
			md := mode
			for k0 := 0; k0 < K; k0 += kc {
				kn := min(kc, K-k0)
				kern(&c[i0*ldc+j0], ldc, &a.Data[i0*K+k0*panelRows], bp, &b[j0], &offs[k0], kn, nb, rows, md)
				md = 2
			}
		}
	}
}

// gemmBlockK bounds the k range of one kernel call, so the B rows a column
// tile touches plus its slice of the A panel stay in L1 (for K = 576 one
// tile otherwise touches ~50 KB). Zero means no blocking. 192 measured best
// of 96..384 on Zen 5 with AVX2 (K = 576: +20-30% over no blocking).
var gemmBlockK = 192

// gemmBlockCols bounds the columns one sweep over all row panels covers, so
// the B rows of a block (about Cin·(gemmBlockCols + 2 image rows) floats for
// a 3×3 conv) stay in L2 while every panel of A passes over them. A multiple
// of both tile widths keeps tails to the end of the row.
var gemmBlockCols = 480

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

func lstmGatesAsm(gi, gf, gO, gg, c, h []float32, wide bool) {
	width := 16
	if wide {
		width = 32
	}
	n := len(c)
	full := n - n%width
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
