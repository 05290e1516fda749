package ops

// Winograd F(2×2, 5×5): the 5×5, pad-2, stride-1 convolutions.
//
// Output tiles are 2×2 as in F(2×2, 3×3), so tiles, groups of 8 tiles,
// lanes (winoLane), blocks, GEMM chunks and output layout are shared; a
// tile reads the 6×6 input window at padded rows 2ty.., columns 2tx... The
// interpolation points are 0, 1, -1, 1/2, -2 and ∞, with Bᵀ's rows and Aᵀ's
// columns scaled to small integers (G, in winoG, takes the inverse scales):
//
//	Bᵀ = [2 -3 -4 3 2 0; 0 -2 1 5 2 0; 0 2 -5 1 2 0;
//	      0 -2 -1 2 1 0; 0 1 -2 -1 2 0; 0 2 -3 -4 3 2]
//	Aᵀ = [1 1 1 2 1 0; 0 1 -1 1 -2 1]
//
// The usual points 0, ±1, ±2 (Bᵀ as in F(4×4, 3×3)) cost fewer additions
// but had twice the rounding error of a direct convolution against float64
// at C = 64 (1.0e-5 vs 5.1e-6 on N(0,1) inputs); with ½ and -2 the error
// is about the direct convolution's (TestWinograd5x5Error).
//
// The transforms multiply only by powers of two, so a fused multiply-add
// gives the same bits as a multiply and an add: the vector versions use
// FMAs and stay bit-identical to these Go twins, which fix the order of
// every addition.

// winoRow5 is one 6-point pass of Bᵀ: q = Bᵀ d.
func winoRow5(d0, d1, d2, d3, d4, d5 float32) (q0, q1, q2, q3, q4, q5 float32) {
	a := d4 - d2
	b := d3 - d1
	q0 = 2*((d0+d4)-2*d2) + (b + 2*b)
	q1 = 4*d3 + (2*(d4-d1) + (d2 + d3))
	q2 = (2*(d4+d1) + (d3 - d2)) - 4*d2
	q3 = a + 2*b
	q4 = 2*a - b
	q5 = 2*((d1+d5)-2*d3) + (a + 2*a)
	return
}

// winoIn5Go is the input transform of ng consecutive groups of 8 tiles of
// one channel: src is the first group's window origin (padded row 2ty,
// column 16gx) with row stride rs; for g < ng it reads src[16g + r*rs +
// 0..19], r < 6, and writes dst[ξ*xs + 8g + lane] for ξ < 36, lane < 8.
func winoIn5Go(dst []float32, xs int, src []float32, rs, ng int) {
	var t [6][6]float32
	for g := 0; g < ng; g++ {
		for lane, tile := range winoLane {
			o := 16*g + 2*tile
			// t[r] = (d B)[r] = Bᵀ applied to input row r.
			for r := 0; r < 6; r++ {
				d := src[o+r*rs : o+r*rs+6 : o+r*rs+6]
				t[r][0], t[r][1], t[r][2], t[r][3], t[r][4], t[r][5] = winoRow5(d[0], d[1], d[2], d[3], d[4], d[5])
			}
			// V = Bᵀ t: ξ = 6a + q.
			p := 8*g + lane
			for q := 0; q < 6; q++ {
				v0, v1, v2, v3, v4, v5 := winoRow5(t[0][q], t[1][q], t[2][q], t[3][q], t[4][q], t[5][q])
				dst[p+q*xs] = v0
				dst[p+(6+q)*xs] = v1
				dst[p+(12+q)*xs] = v2
				dst[p+(18+q)*xs] = v3
				dst[p+(24+q)*xs] = v4
				dst[p+(30+q)*xs] = v5
			}
		}
	}
}

// winoCol5 is one 6-point pass of Aᵀ: (y0, y1) = Aᵀ m.
func winoCol5(m0, m1, m2, m3, m4, m5 float32) (y0, y1 float32) {
	y0 = (m0 + (m1 + m2)) + (2*m3 + m4)
	y1 = ((m1 - m2) + (m3 - 2*m4)) + m5
	return
}

// winoOut5Go is the output transform of ng consecutive groups of 8 tiles
// for `rows` rows: for r < rows, g < ng it reads m[ξ*xs + r*ldm + 8g +
// lane] (ξ < 36) and writes out[r*ldc + dy*wp + 16g + 0..15] (dy < 2),
// adding bias[r] (mode 1) or the old out value (mode 2).
func winoOut5Go(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	var s, t [6]float32
	winoOutTiles(out, ldc, wp, ldm, bias, rows, mode, ng, func(p int) (v00, v01, v10, v11 float32) {
		// (s_a, t_a) = Aᵀ over ξ = 6a..6a+5, then the same down a.
		for a := 0; a < 6; a++ {
			b := p + 6*a*xs
			s[a], t[a] = winoCol5(m[b], m[b+xs], m[b+2*xs], m[b+3*xs], m[b+4*xs], m[b+5*xs])
		}
		v00, v10 = winoCol5(s[0], s[1], s[2], s[3], s[4], s[5])
		v01, v11 = winoCol5(t[0], t[1], t[2], t[3], t[4], t[5])
		return
	})
}
