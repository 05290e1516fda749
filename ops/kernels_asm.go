//go:build (amd64 || arm64) && !purego

package ops

// The parts of the assembly kernel sets that are the same on every
// architecture: the blocked walk over a GEMM's columns, rows and k, and the
// checks of the Winograd transforms' slices.

// gemmPanelFunc is the shape of the generated GEMM kernels.
type gemmPanelFunc func(c *float32, ldc int, a *float32, bias *float32, b *float32, offs *int32, k int, n int, rows int, mode int)

// convGemmAsm walks column blocks and, inside each, the packed panels; the
// kernel covers one panel's rows over the block's columns.
func convGemmAsm(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool, kern gemmPanelFunc) {
	if a.K == 0 || n <= 0 {
		// Nothing to sum; the kernels assume at least one k.
		convGemmGeneric(c, ldc, a, bias, b, offs, n, accumulate)
		return
	}
	walkPanels(a.M, a.K, n, bias, accumulate, func(i0, j0, k0, kn, nb, rows int, bp *float32, mode int) {
		kern(&c[i0*ldc+j0], ldc, &a.Data[i0*a.K+k0*panelRows], bp, &b[j0], &offs[k0], kn, nb, rows, mode)
	})
}

// walkPanels is the blocking of the convolution GEMMs (float32 and
// bfloat16): column blocks of gemmBlockCols, inside each the row panels,
// inside each the k blocks of gemmBlockK. visit gets a kernel call's
// rows i0.., columns j0..j0+nb, k range k0..k0+kn, the bias pointer (mode
// 1) and the kernel mode: 0 store, 1 bias then store, 2 accumulate. K ≥ 1.
func walkPanels(M, K, n int, bias []float32, accumulate bool, visit func(i0, j0, k0, kn, nb, rows int, bp *float32, mode int)) {
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
		for i0 := 0; i0 < M; i0 += panelRows {
			rows := min(panelRows, M-i0)
			if mode == 1 {
				bp = &bias[i0]
			}
			// Later k blocks continue from the partial sums in c: the
			// float32 store and reload are exact, so each column still
			// sees one FMA chain over k = 0..K-1.
			md := mode
			for k0 := 0; k0 < K; k0 += kc {
				kn := min(kc, K-k0)
				visit(i0, j0, k0, kn, nb, rows, bp, md)
				md = 2
			}
		}
	}
}

// gemmBlockK bounds the k range of one kernel call, so the B rows a column
// tile touches plus its slice of the A panel stay in L1 (for K = 576 one
// tile otherwise touches ~50 KB). Zero means no blocking. 192 measured best
// of 96..384 on Zen 5 with AVX2 (K = 576: +20-30% over no blocking); on a
// later Zen 5 with full-width AVX-512 (shared, interleaved runs) every kc in
// {0, 192, 288, 384} × gemmBlockCols in {240 .. ∞} was within ±2% for both
// avx2 and avx512 at K = 144 and 576, so both sets keep these values.
var gemmBlockK = 192

// gemmBlockCols bounds the columns one sweep over all row panels covers, so
// the B rows of a block (about Cin·(gemmBlockCols + 2 image rows) floats for
// a 3×3 conv) stay in L2 while every panel of A passes over them. A multiple
// of every tile width (NEON 12, AVX2 24, AVX-512 48) keeps tails to the end
// of the row.
var gemmBlockCols = 480

// checkWinoIn panics if an input transform of F(2×2, r×r) would read or
// write past its slices; it reports whether there is anything to do.
func checkWinoIn(r int, dst []float32, xs int, src []float32, rs, ng int) bool {
	if ng <= 0 {
		return false
	}
	if len(dst) < ((r+1)*(r+1)-1)*xs+8*ng || len(src) < r*rs+16*ng+r-1 {
		panic("ops.winoIn: slices too short")
	}
	return true
}

// winoInAsm runs the assembly input transform k of F(2×2, r×r) on the
// slices, after checkWinoIn.
func winoInAsm(r int, k func(dst *float32, xs int, src *float32, rs, ng int), dst []float32, xs int, src []float32, rs, ng int) {
	if checkWinoIn(r, dst, xs, src, rs, ng) {
		k(&dst[0], xs, &src[0], rs, ng)
	}
}

// winoOutAsm runs the assembly output transform k of F(2×2, r×r) on the
// slices, after checkWinoOut.
func winoOutAsm(r int, k func(out *float32, ldc, wp int, m *float32, xs, ldm int, bias *float32, rows, mode, ng int), out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	if checkWinoOut(r, out, ldc, wp, m, xs, ldm, bias, rows, mode, ng) {
		k(&out[0], ldc, wp, &m[0], xs, ldm, biasPtr(bias, mode), rows, mode, ng)
	}
}

// checkWinoOut is checkWinoIn for the output transform.
func checkWinoOut(r int, out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) bool {
	if rows <= 0 || ng <= 0 {
		return false
	}
	if len(out) < (rows-1)*ldc+wp+16*ng || len(m) < ((r+1)*(r+1)-1)*xs+(rows-1)*ldm+8*ng {
		panic("ops.winoOut: slices too short")
	}
	if mode == 1 && len(bias) < rows {
		panic("ops.winoOut: bias too short")
	}
	return true
}

// biasPtr is the bias the asm reads: only in mode 1.
func biasPtr(bias []float32, mode int) *float32 {
	if mode != 1 {
		return nil
	}
	return &bias[0]
}
