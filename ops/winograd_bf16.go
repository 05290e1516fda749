package ops

// The bfloat16 Winograd convolution: the transforms stay float32; the nξ
// (16 or 36) GEMMs M[ξ] = U[ξ]·V[ξ] run on bfloat16 channel pairs. U is
// rounded and paired once (newWinoBF16); each block's V is converted to pairs in place
// after its input transform (row p of plane ξ becomes the pairs of rows 2p
// and 2p+1), a pass of C·nξ·n values against the GEMMs' M·C·nξ·n products.

// NewWinograd3x3BF16 is NewWinograd3x3 for the bf16 option: the
// Winograd-domain weights U are rounded to bfloat16. With native (and
// BF16Native), its GEMMs run with VDPBF16PS on bfloat16 pairs of U and of
// the transformed input; otherwise the rounded U is widened back and the
// float32 kernels run (the same weights, the input kept in float32, and no
// faster).
func NewWinograd3x3BF16(w []float32, m, c int, native bool) *Winograd {
	return newWinograd(w, m, c, 3, true, native)
}

// BF16 reports whether the convolution's GEMMs run on native bfloat16
// arithmetic.
func (w *Winograd) BF16() bool { return w.bf16 != nil }

type winoBF16 struct {
	cp     int            // channel pairs
	chunks [][]PackedBF16 // U[ξ] in pairs, cut into row chunks
}

func newWinoBF16(u [][]float32, m, c, rows int) *winoBF16 {
	b := &winoBF16{cp: (c + 1) / 2, chunks: make([][]PackedBF16, len(u))}
	for x := range u {
		p := PackBF16(u[x], m, c, 1)
		for i0 := 0; i0 < m; i0 += rows {
			b.chunks[x] = append(b.chunks[x], PackedBF16{M: min(rows, m-i0), K: b.cp, Data: p.Data[i0*b.cp:]})
		}
	}
	return b
}

// pairV converts the first n columns of each ξ plane of V (c rows ldv
// apart, planes xs apart) to bfloat16 pairs in place.
func (b *winoBF16) pairV(v []float32, xs, ldv, c, n int) {
	k := bf16Impl()
	for x := range b.chunks {
		plane := v[x*xs : x*xs+c*ldv]
		words := asWords(plane)
		for p := 0; p < b.cp; p++ {
			var hi []float32
			if 2*p+1 < c {
				hi = plane[(2*p+1)*ldv : (2*p+1)*ldv+n]
			}
			k.pairs(words[p*ldv:p*ldv+n], plane[2*p*ldv:2*p*ldv+n], hi)
		}
	}
}

// gemm is M[ξ] = U[ξ]·V[ξ] for row chunk ci over n columns of the paired
// plane v.
func (b *winoBF16) gemm(m []float32, ldm, x, ci int, v []float32, offs []int32, n int) {
	bf16Impl().gemm(m, ldm, &b.chunks[x][ci], nil, asWords(v), offs[:b.cp], n, false)
}
