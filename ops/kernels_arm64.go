//go:build arm64 && !purego

package ops

// convGemmNEON runs the 8-row × 12-column NEON tile over the columns in
// multiples of 4 and the last n mod 4 columns through gemmTailNEON.
func convGemmNEON(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool) {
	n4 := n &^ 3
	if n4 > 0 {
		convGemmAsm(c, ldc, a, bias, b, offs, n4, accumulate, gemmPanelNEON)
	}
	if n4 < n && a.K > 0 {
		gemmTailNEON(c[n4:], ldc, a, bias, b[n4:], offs, n-n4, accumulate)
	} else if n4 < n {
		convGemmGeneric(c[n4:], ldc, a, bias, b[n4:], offs, n-n4, accumulate)
	}
}

// gemmTailK is the k block of gemmTailNEON's padded copy of B.
const gemmTailK = 256

// gemmTailOffs are the offsets of the padded copy: row k at 4k.
var gemmTailOffs = func() (o [gemmTailK]int32) {
	for k := range o {
		o[k] = int32(4 * k)
	}
	return o
}()

// gemmTailNEON computes m < 4 columns with the NEON kernel's 4-column tile
// on zero-padded copies of their B values and C rows (NEON has no masked
// loads, and the kernel must not touch memory past column m-1), k block by
// k block. Each column's sum is the kernel's FMA chain over k in order, as
// in the full tiles, so results do not depend on column splits.
func gemmTailNEON(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, m int, accumulate bool) {
	var bt [gemmTailK * 4]float32
	var ct [panelRows * 4]float32
	K := a.K
	for i0 := 0; i0 < a.M; i0 += panelRows {
		rows := min(panelRows, a.M-i0)
		mode := 0
		var bp *float32
		switch {
		case accumulate:
			mode = 2
			for r := 0; r < rows; r++ {
				copy(ct[4*r:4*r+m], c[(i0+r)*ldc:(i0+r)*ldc+m])
			}
		case bias != nil:
			mode = 1
			bp = &bias[i0]
		}
		for k0 := 0; k0 < K; k0 += gemmTailK {
			kn := min(gemmTailK, K-k0)
			for k := 0; k < kn; k++ {
				o := int(offs[k0+k])
				copy(bt[4*k:4*k+m], b[o:o+m])
			}
			gemmPanelNEON(&ct[0], 4, &a.Data[i0*K+k0*panelRows], bp, &bt[0], &gemmTailOffs[0], kn, 4, rows, mode)
			mode = 2
		}
		for r := 0; r < rows; r++ {
			copy(c[(i0+r)*ldc:(i0+r)*ldc+m], ct[4*r:4*r+m])
		}
	}
}

// lstmGatesNEON runs the vector kernel over whole iterations (8 positions)
// and pushes the remainder through the same kernel via a padded copy, so
// every position gets the same arithmetic however the caller splits.
func lstmGatesNEON(gi, gf, gO, gg, c, h []float32) {
	const width = 8
	n := len(c)
	full := n - n%width
	if full > 0 {
		gatesNEON(&gi[0], &gf[0], &gO[0], &gg[0], &c[0], &h[0], full)
	}
	if full == n {
		return
	}
	var buf [6][width]float32
	copy(buf[0][:], gi[full:n])
	copy(buf[1][:], gf[full:n])
	copy(buf[2][:], gO[full:n])
	copy(buf[3][:], gg[full:n])
	copy(buf[4][:], c[full:n])
	gatesNEON(&buf[0][0], &buf[1][0], &buf[2][0], &buf[3][0], &buf[4][0], &buf[5][0], width)
	copy(c[full:n], buf[4][:])
	copy(h[full:n], buf[5][:])
}

func winoInNEONSlices(dst []float32, xs int, src []float32, rs, ng int) {
	winoInAsm(3, winoInNEON, dst, xs, src, rs, ng)
}

func winoOutNEONSlices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	winoOutAsm(3, winoOutNEON, out, ldc, wp, m, xs, ldm, bias, rows, mode, ng)
}
