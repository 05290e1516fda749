package ops

import "fmt"

// Winograd F(2×2, 3×3) for the 3×3, pad-1, stride-1 convolutions (and
// F(2×2, 5×5) for the 5×5, pad-2 ones: winograd5.go).
//
// Each frame's output is cut into 2×2 tiles; tile (ty, tx) reads the 4×4
// input window at padded rows 2ty.., columns 2tx... With the usual
//
//	Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//	G  = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//	Aᵀ = [1 1 1 0; 0 1 -1 -1]
//
// a tile's output is Aᵀ [Σ_ch U[ch] ⊙ V[ch]] A with U = G g Gᵀ (per weight
// 3×3, once at load) and V = Bᵀ d B (per input window). The 16 element-wise
// sums over channels are 16 GEMMs M[ξ] = U[ξ]·V[ξ] (M×C times C×tiles), run
// by ConvGemm with plain-row offsets, so they use the tuned GEMM kernel.
//
// Tiles are handled in groups of 8 consecutive tiles of one tile row (one
// vector of 8 lanes in the transforms) and groups in blocks of winoBlock
// groups, so a block's V and M fit in L2. Inside a group the tiles sit in the
// lane order winoLane (the order a shuffle-based deinterleave of the input
// row produces and the unpack-based interleave of the output undoes).

// winoLane[lane] is the tile (within its group of 8) held in that lane.
var winoLane = [8]int{0, 1, 4, 5, 2, 3, 6, 7}

// Tuning: groups of 8 tiles per block and output rows per GEMM row chunk.
// A block's 8·winoBlock columns should be a multiple of every GEMM tile
// width (NEON 12, AVX2 24, AVX-512 48): on a Zen 5 with full-width AVX-512,
// blocks of 3 and 9 groups (24 and 72 columns, partly masked tails) ran the
// avx512 Winograd conv 40% and 20% slower than 6 or 12, while avx2 hardly
// cared; 6 and 12, and winoRows 64, 128 or 256, were within the noise.
var (
	winoBlock = 6  // 48 tiles (must be ≥ 1)
	winoRows  = 64 // multiple of panelRows
)

// Winograd is a 3×3 or 5×5 convolution's weights in the Winograd domain,
// F(2×2, 3×3) or F(2×2, 5×5), ready to compute the convolution with 16/36
// or 36/100 of the direct method's multiplies. It is read-only after
// NewWinograd3x3 or NewWinograd5x5: Conv may run concurrently, each call
// with its own workspace.
//
// Speed (one Zen 3 core, AVX2, vs the direct ConvGemm on the same layout):
// about 1.5–2× for M = 256, C = 64 at 64×64 and 128×128; the transforms cost
// O(C + M) per tile against the GEMMs' O(C·M), so the gain shrinks with C:
// ~1.6× at C = 32, ~1.3× at C = 16, none at C = 8 and a loss at C = 1 (use
// the direct conv there).
//
// Accuracy: every output is a sum of C products per ξ followed by a few
// adds, so its float32 rounding error is smaller than the direct offset
// GEMM's (a chain of 9·C FMAs): at the runtime's scales (weights
// U(±1/√(9C)), inputs N(0,1) or in (-1, 1)) the max error against float64 is
// 4–9e-7 where the direct conv has 3–4e-6 (TestWinograd3x3Error). F(2×2,
// 5×5)'s transforms have larger coefficients (up to 5 in Bᵀ, 1/24 in G):
// TestWinograd5x5Error bounds its error against float64.
type Winograd struct {
	M, C   int
	r      int // kernel side: 3 or 5
	nx     int // ξ planes: (r+1)²
	block  int // groups per block
	rows   int // output rows per GEMM chunk
	pad    int // floats after each ξ plane of the scratch
	u      []*PackedA
	chunks [][]PackedA // u[ξ] cut into row chunks of `rows` rows
	offs   []int32     // offs[k] = k·ldv
	// bf16 holds U in bfloat16 channel pairs for the native bfloat16
	// GEMM (NewWinograd3x3BF16, native, where BF16Native); nil otherwise.
	bf16 *winoBF16
}

// NewWinograd3x3 transforms w, an (m, c, 3, 3) row-major PyTorch weight.
func NewWinograd3x3(w []float32, m, c int) *Winograd {
	return newWinograd(w, m, c, 3, false, false)
}

// NewWinograd5x5 transforms w, an (m, c, 5, 5) row-major PyTorch weight,
// for F(2×2, 5×5): 36 GEMMs over C channels, where 5×5 run as four
// zero-padded 3×3 blocks of F(2×2, 3×3) takes 16 over 4·C (1.78× the
// multiplies).
func NewWinograd5x5(w []float32, m, c int) *Winograd {
	return newWinograd(w, m, c, 5, false, false)
}

// winoG is the G matrix of F(2×2, r×r), r+1 rows of r: for r = 3 with the
// interpolation points 0, 1, -1, ∞; for r = 5 with 0, 1, -1, ½, -2, ∞ and
// the row scales that make winoIn5Go's Bᵀ and winoOut5Go's Aᵀ integers.
func winoG(r int) [][]float64 {
	if r == 3 {
		return [][]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	}
	return [][]float64{
		{1.0 / 2, 0, 0, 0, 0},
		{1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6},
		{-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6},
		{-8.0 / 15, -4.0 / 15, -2.0 / 15, -1.0 / 15, -1.0 / 30},
		{1.0 / 30, -1.0 / 15, 2.0 / 15, -4.0 / 15, 8.0 / 15},
		{0, 0, 0, 0, 1.0 / 2},
	}
}

func newWinograd(w []float32, m, c, r int, bf16, native bool) *Winograd {
	kk := r * r
	if m <= 0 || c <= 0 || len(w) < m*c*kk {
		panic(fmt.Sprintf("ops.NewWinograd%dx%d: %d values for a (%d, %d, %d, %d) weight", r, r, len(w), m, c, r, r))
	}
	a := r + 1
	nx := a * a
	u := make([][]float32, nx)
	for x := range u {
		u[x] = make([]float32, m*c)
	}
	gm := winoG(r)
	t := make([][]float64, a)
	for i := range t {
		t[i] = make([]float64, r)
	}
	for i := 0; i < m; i++ {
		for ch := 0; ch < c; ch++ {
			g := w[(i*c+ch)*kk : (i*c+ch)*kk+kk]
			// t = G g (α×r), then U = t Gᵀ (α×α), in float64.
			for p := 0; p < a; p++ {
				for q := 0; q < r; q++ {
					var v float64
					for k := 0; k < r; k++ {
						v += gm[p][k] * float64(g[k*r+q])
					}
					t[p][q] = v
				}
			}
			for p := 0; p < a; p++ {
				for b := 0; b < a; b++ {
					var v float64
					for q := 0; q < r; q++ {
						v += t[p][q] * gm[b][q]
					}
					u[p*a+b][i*c+ch] = float32(v)
				}
			}
		}
	}
	wg := &Winograd{M: m, C: c, r: r, nx: nx, block: max(1, winoBlock), rows: min(max(panelRows, winoRows/panelRows*panelRows), (m+panelRows-1)/panelRows*panelRows), pad: max(0, winoPad)}
	if bf16 {
		if native && BF16Native() {
			wg.bf16 = newWinoBF16(u, m, c, wg.rows)
		}
		for x := range u {
			RoundBF16(u[x], u[x])
		}
	}
	wg.u = make([]*PackedA, nx)
	wg.chunks = make([][]PackedA, nx)
	for x := range u {
		wg.u[x] = PackA(u[x], m, c)
		for i0 := 0; i0 < m; i0 += wg.rows {
			p := i0 / panelRows
			wg.chunks[x] = append(wg.chunks[x], PackedA{M: min(wg.rows, m-i0), K: c, MR: panelRows, Data: wg.u[x].Data[p*c*panelRows:]})
		}
	}
	ldv := wg.ldv()
	wg.offs = make([]int32, c)
	for k := range wg.offs {
		wg.offs[k] = int32(k * ldv)
	}
	return wg
}

// R is the kernel side the convolution was made for: 3 or 5.
func (w *Winograd) R() int { return w.r }

func (w *Winograd) ldv() int { return 8 * w.block }

// Workspace returns the number of float32s of scratch one part of Conv needs.
// It depends only on M and C, not on the image: about 16·48·(C+64) floats,
// 420 KB for C = 64, so one part's working set stays in a core's L2.
func (w *Winograd) Workspace() int {
	xsv, xsm := w.strides()
	return w.nx*xsv + w.nx*xsm + w.C*w.inEdge() + w.rows*winoOutEdge
}

// strides returns the ξ strides of V and of the GEMM output buffer. A plane
// is padded by one cache line so that the 16 planes' same rows fall in
// different L1 sets (plain C·ldv is a multiple of 4 KiB for C = 64, ldv = 48·k
// and would make all 16 ξ of a row contend for one set in the transforms).
func (w *Winograd) strides() (xsv, xsm int) {
	ldv := w.ldv()
	return w.C*ldv + w.pad, w.rows*ldv + w.pad
}

// winoPad is the cache line of padding after each ξ plane.
var winoPad = 16

// winoOutEdge is one row's 2×16 output of a group.
const winoOutEdge = 2 * 16

// inCols is the width of a group's input window: 16 + r - 1 columns.
func (w *Winograd) inCols() int { return 15 + w.r }

// inEdge is one channel's (r+1)×inCols input window of a group.
func (w *Winograd) inEdge() int { return (w.r + 1) * w.inCols() }

// winoInFor and winoOutFor are the set's transforms of F(2×2, r×r).
func (k *kernelSet) winoInFor(r int) func(dst []float32, xs int, src []float32, rs, ng int) {
	if r == 5 {
		return k.winoIn5
	}
	return k.winoIn
}

func (k *kernelSet) winoOutFor(r int) func(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	if r == 5 {
		return k.winoOut5
	}
	return k.winoOut
}

// Conv computes, for i < M, f < frames, y < h, x < wd,
//
//	out[i*ldc + f*s + y*wp + x] = (accumulate ? out[...] : bias[i]) + conv3x3(in)[i, f, y, x]
//
// from the zero-padded input in[ch*chanStride + f*s + yy*wp + xx] (yy < h+2,
// xx < wd+2 ≤ wp, s ≥ (h+2)·wp). It writes exactly those elements of out and
// no others (padding-position columns are left untouched), and reads in only
// inside each frame's (h+2)×(wd+2) window. bias may be nil (zero); in and out
// must not overlap.
//
// The tile groups are split into parts contiguous ranges; Conv(…, part, parts)
// for part < parts may run concurrently (each with its own ws of at least
// Workspace() floats). Every output's value is independent of
// parts.
func (w *Winograd) Conv(out []float32, ldc int, bias []float32, in []float32, chanStride, frames, h, wd, wp, s int, accumulate bool, ws []float32, part, parts int) {
	srcs := [1]WinoInput{{in, chanStride, w.C}}
	w.conv(out, WinoOut{ldc, s, wp}, bias, srcs[:], frames, h, wd, wp, s, accumulate, ws, part, parts, false)
}

// WinoInput is one zero-padded input of ConvMulti: Channels channels laid
// out as Conv's in, ChanStride apart.
type WinoInput struct {
	Data       []float32
	ChanStride int
	Channels   int
}

// ConvMulti is Conv over the channel concatenation of every input in srcs,
// in order; their channels must add up to C. It computes conv(cat(x, h)) of
// a ConvLSTM step without copying either input (one GEMM over all C channels
// and one output transform replace the two of separate convolutions), and a
// larger kernel as a sum of 3×3 blocks: each block is an input whose Data
// starts at the block's offset in the padded image.
//
// Parts split the tiles between them, or with byM the output channels (in
// chunks; Chunks says how many): each such part transforms the whole input
// itself and reads only its chunks of the transformed weights, which pays
// when the image has few tiles and the weights are large (a 16×16 step
// with 128 → 256 channels: 2 MB of weights for 64 tiles). Either way every
// output value is computed the same way: the same bits.
func (w *Winograd) ConvMulti(out []float32, ldc int, bias []float32, srcs []WinoInput, frames, h, wd, wp, s int, accumulate bool, ws []float32, part, parts int, byM bool) {
	w.ConvMultiOut(out, WinoOut{ldc, s, wp}, bias, srcs, frames, h, wd, wp, s, accumulate, ws, part, parts, byM)
}

// WinoOut is where ConvMultiOut writes output (i, f, y, x): at
// i·Ldc + f·FrameStride + y·RowStride + x. ConvMulti's layout is the
// input's (FrameStride s, RowStride wp); a dense (frames, M, h, wd) array
// is Ldc h·wd, FrameStride M·h·wd, RowStride wd.
type WinoOut struct {
	Ldc, FrameStride, RowStride int
}

// ConvMultiOut is ConvMulti writing its output with layout o (the values
// and bits are ConvMulti's).
func (w *Winograd) ConvMultiOut(out []float32, o WinoOut, bias []float32, srcs []WinoInput, frames, h, wd, wp, s int, accumulate bool, ws []float32, part, parts int, byM bool) {
	total := 0
	for _, src := range srcs {
		if src.Channels < 0 {
			panic(fmt.Sprintf("ops.Winograd.ConvMultiOut: %d channels", src.Channels))
		}
		total += src.Channels
	}
	if total != w.C {
		panic(fmt.Sprintf("ops.Winograd.ConvMultiOut: inputs have %d channels, C=%d", total, w.C))
	}
	w.conv(out, o, bias, srcs, frames, h, wd, wp, s, accumulate, ws, part, parts, byM)
}

// disjoint reports whether o gives every output (i < m, f < frames,
// y < h, x < wd) its own place: rows of wd in their row stride, then the
// frames inside each channel's stride or the channels inside each frame's.
func (o WinoOut) disjoint(m, frames, h, wd int) bool {
	if o.RowStride < wd || o.Ldc < 0 || o.FrameStride < 0 {
		return false
	}
	image := (h-1)*o.RowStride + wd
	return m == 1 && frames == 1 ||
		(frames == 1 || o.FrameStride >= image) && (m == 1 || o.Ldc >= (frames-1)*o.FrameStride+image) ||
		(m == 1 || o.Ldc >= image) && (frames == 1 || o.FrameStride >= (m-1)*o.Ldc+image)
}

// Chunks is how many parts ConvMulti can split the output channels into
// with byM.
func (w *Winograd) Chunks() int { return len(w.chunks[0]) }

// Groups is how many tile groups (the unit a part of ConvMulti takes
// without byM) an image of frames frames of h×wd has.
func Groups(frames, h, wd int) int { return frames * (h + 1) / 2 * (((wd+1)/2 + 7) / 8) }

func (w *Winograd) conv(out []float32, ol WinoOut, bias []float32, srcs []WinoInput, frames, h, wd, wp, s int, accumulate bool, ws []float32, part, parts int, byM bool) {
	if frames <= 0 || h <= 0 || wd <= 0 {
		return
	}
	M, C := w.M, w.C
	hp := h + w.r - 1
	for _, src := range srcs {
		if wp < wd+w.r-1 || s < hp*wp || src.ChanStride < (frames-1)*s+hp*wp && src.Channels > 1 {
			panic(fmt.Sprintf("ops.Winograd.Conv: bad layout wp=%d s=%d chanStride=%d for %d frames of %d×%d", wp, s, src.ChanStride, frames, h, wd))
		}
		if need := (src.Channels-1)*src.ChanStride + (frames-1)*s + hp*wp; src.Channels > 0 && len(src.Data) < need {
			panic(fmt.Sprintf("ops.Winograd.Conv: input has %d values, need %d", len(src.Data), need))
		}
	}
	ldc, os, ows := ol.Ldc, ol.FrameStride, ol.RowStride
	if !ol.disjoint(M, frames, h, wd) || len(out) < (M-1)*ldc+(frames-1)*os+(h-1)*ows+wd {
		panic(fmt.Sprintf("ops.Winograd.Conv: output of %d values with layout %+v, too small or overlapping for (%d, %d, %d, %d)", len(out), ol, frames, M, h, wd))
	}
	if bias != nil && len(bias) < M {
		panic("ops.Winograd.Conv: bias shorter than M")
	}
	if need := w.Workspace(); len(ws) < need {
		panic(fmt.Sprintf("ops.Winograd.Conv: workspace has %d floats, need %d", len(ws), need))
	}
	if parts <= 0 || part < 0 || part >= parts {
		panic(fmt.Sprintf("ops.Winograd.Conv: part %d of %d", part, parts))
	}
	mode := 0
	if accumulate {
		mode = 2
	} else if bias != nil {
		mode = 1
	}

	nty, ntx := (h+1)/2, (wd+1)/2
	ngx := (ntx + 7) / 8
	perFrame := nty * ngx
	total := frames * perFrame
	g0, g1 := total*part/parts, total*(part+1)/parts
	c0, c1 := 0, len(w.chunks[0])
	if byM {
		g0, g1 = 0, total
		c0, c1 = c1*part/parts, c1*(part+1)/parts
	}

	ldv := w.ldv()
	xsv, xsm := w.strides() // ξ strides of V and of the M buffer
	nx, ie, ic := w.nx, w.inEdge(), w.inCols()
	v := ws[:nx*xsv]
	mb := ws[nx*xsv : nx*xsv+nx*xsm]
	edgeIn := ws[nx*xsv+nx*xsm : nx*xsv+nx*xsm+C*ie]
	edgeOut := ws[nx*xsv+nx*xsm+C*ie : nx*xsv+nx*xsm+C*ie+w.rows*winoOutEdge]
	winoIn, winoOut := kernels.winoInFor(w.r), kernels.winoOutFor(w.r)

	for b0 := g0; b0 < g1; b0 += w.block {
		nb := min(w.block, g1-b0)
		// Input transform, a run of full groups of one tile row at a time.
		for q := 0; q < nb; {
			f, ty, gx := w.group(b0+q, perFrame, ngx)
			base := f*s + 2*ty*wp + 16*gx
			if run := w.fullRun(q, nb, gx, ty, ngx, h, wd); run > 0 {
				ch0 := 0
				for _, src := range srcs {
					for ch := 0; ch < src.Channels; ch++ {
						winoIn(v[8*q+(ch0+ch)*ldv:], xsv, src.Data[base+ch*src.ChanStride:], wp, run)
					}
					ch0 += src.Channels
				}
				q += run
				continue
			}
			rowsIn := min(w.r+1, hp-2*ty)
			colsIn := min(ic, wd+w.r-1-16*gx)
			clear(edgeIn)
			ch0 := 0
			for _, src := range srcs {
				for ch := 0; ch < src.Channels; ch++ {
					e := (ch0 + ch) * ie
					for r := 0; r < rowsIn; r++ {
						o := ch*src.ChanStride + base + r*wp
						copy(edgeIn[e+r*ic:e+r*ic+colsIn], src.Data[o:o+colsIn])
					}
					winoIn(v[8*q+(ch0+ch)*ldv:], xsv, edgeIn[e:], ic, 1)
				}
				ch0 += src.Channels
			}
			q++
		}
		// GEMMs and output transform, a chunk of output rows at a time.
		n := 8 * nb
		if w.bf16 != nil {
			w.bf16.pairV(v, xsv, ldv, C, n)
		}
		for ci := c0; ci < c1; ci++ {
			i0 := ci * w.rows
			rows := w.chunks[0][ci].M
			for x := 0; w.bf16 != nil && x < nx; x++ {
				w.bf16.gemm(mb[x*xsm:], ldv, x, ci, v[x*xsv:x*xsv+C*ldv], w.offs, n)
			}
			for x := 0; w.bf16 == nil && x < nx; x++ {
				// The kernel directly: ConvGemm's checks hold by
				// construction (offs[k] = k·ldv, n ≤ ldv, each M plane
				// xsm ≥ rows·ldv) and cost ~2% at C = 64.
				kernels.convGemm(mb[x*xsm:], ldv, &w.chunks[x][ci], nil, v[x*xsv:x*xsv+C*ldv], w.offs, n, false)
			}
			var bs []float32
			if mode == 1 {
				bs = bias[i0 : i0+rows]
			}
			for q := 0; q < nb; {
				f, ty, gx := w.group(b0+q, perFrame, ngx)
				base := i0*ldc + f*os + 2*ty*ows + 16*gx
				if run := w.fullRun(q, nb, gx, ty, ngx, h, wd); run > 0 {
					winoOut(out[base:], ldc, ows, mb[8*q:], xsm, ldv, bs, rows, mode, run)
					q += run
					continue
				}
				winoOut(edgeOut, winoOutEdge, 16, mb[8*q:], xsm, ldv, nil, rows, 0, 1)
				rowsOut := min(2, h-2*ty)
				colsOut := min(16, wd-16*gx)
				for r := 0; r < rows; r++ {
					for dy := 0; dy < rowsOut; dy++ {
						src := edgeOut[r*winoOutEdge+dy*16 : r*winoOutEdge+dy*16+colsOut]
						dst := out[base+r*ldc+dy*ows : base+r*ldc+dy*ows+colsOut]
						switch mode {
						case 0:
							copy(dst, src)
						case 1:
							b := bias[i0+r]
							for k, y := range src {
								dst[k] = b + y
							}
						default:
							for k, y := range src {
								dst[k] += y
							}
						}
					}
				}
				q++
			}
		}
	}
}

// fullRun returns how many groups from block position q on (q < nb; the
// group is gx in tile row ty) are full (all 8 tiles inside the image) and
// in the same tile row, or 0 if group q itself is not full.
func (w *Winograd) fullRun(q, nb, gx, ty, ngx, h, wd int) int {
	if 2*ty+2 > h {
		return 0
	}
	fullGx := wd / 16 // groups gx < fullGx are full
	return max(0, min(nb-q, fullGx-gx, ngx-gx))
}

// group returns the frame, tile row and group column of tile group g.
func (w *Winograd) group(g, perFrame, ngx int) (f, ty, gx int) {
	f, r := g/perFrame, g%perFrame
	return f, r / ngx, r % ngx
}

// winoInGo is the input transform of ng consecutive groups of 8 tiles of
// one channel: src is the first group's window origin (padded row 2ty,
// column 16gx) with row stride rs; for g < ng it reads src[16g + r*rs +
// 0..17], r < 4, and writes dst[ξ*xs + 8g + lane] for ξ < 16, lane < 8.
func winoInGo(dst []float32, xs int, src []float32, rs, ng int) {
	for g := 0; g < ng; g++ {
		for lane, tile := range winoLane {
			// t[r][q] = (d B)[r][q] for the tile's 4×4 window d.
			o := 16*g + 2*tile
			d := src[o : o+4 : o+4]
			t00, t01, t02, t03 := d[0]-d[2], d[1]+d[2], d[2]-d[1], d[1]-d[3]
			d = src[o+rs : o+rs+4 : o+rs+4]
			t10, t11, t12, t13 := d[0]-d[2], d[1]+d[2], d[2]-d[1], d[1]-d[3]
			d = src[o+2*rs : o+2*rs+4 : o+2*rs+4]
			t20, t21, t22, t23 := d[0]-d[2], d[1]+d[2], d[2]-d[1], d[1]-d[3]
			d = src[o+3*rs : o+3*rs+4 : o+3*rs+4]
			t30, t31, t32, t33 := d[0]-d[2], d[1]+d[2], d[2]-d[1], d[1]-d[3]
			// V = Bᵀ t: ξ = 4a + q.
			p := 8*g + lane
			dst[p], dst[p+xs], dst[p+2*xs], dst[p+3*xs] = t00-t20, t01-t21, t02-t22, t03-t23
			p += 4 * xs
			dst[p], dst[p+xs], dst[p+2*xs], dst[p+3*xs] = t10+t20, t11+t21, t12+t22, t13+t23
			p += 4 * xs
			dst[p], dst[p+xs], dst[p+2*xs], dst[p+3*xs] = t20-t10, t21-t11, t22-t12, t23-t13
			p += 4 * xs
			dst[p], dst[p+xs], dst[p+2*xs], dst[p+3*xs] = t10-t30, t11-t31, t12-t32, t13-t33
		}
	}
}

// winoOutGo is the output transform of ng consecutive groups of 8 tiles for
// `rows` rows: for r < rows, g < ng it reads m[ξ*xs + r*ldm + 8g + lane] and
// writes out[r*ldc + dy*wp + 16g + 0..15] (dy < 2), adding bias[r] (mode 1)
// or the old out value (mode 2).
func winoOutGo(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	winoOutTiles(out, ldc, wp, ldm, bias, rows, mode, ng, func(p int) (v00, v01, v10, v11 float32) {
		// a_i = m0 + m1 + m2, b_i = m1 - m2 - m3 over ξ = 4i..4i+3.
		a0, b0 := m[p]+m[p+xs]+m[p+2*xs], m[p+xs]-m[p+2*xs]-m[p+3*xs]
		p += 4 * xs
		a1, b1 := m[p]+m[p+xs]+m[p+2*xs], m[p+xs]-m[p+2*xs]-m[p+3*xs]
		p += 4 * xs
		a2, b2 := m[p]+m[p+xs]+m[p+2*xs], m[p+xs]-m[p+2*xs]-m[p+3*xs]
		p += 4 * xs
		a3, b3 := m[p]+m[p+xs]+m[p+2*xs], m[p+xs]-m[p+2*xs]-m[p+3*xs]
		return a0 + a1 + a2, b0 + b1 + b2, a1 - a2 - a3, b1 - b2 - b3
	})
}

// winoOutTiles is the loop of both output transforms' Go twins: for every
// row r < rows, group g < ng and lane, tile(p) computes the 2×2 tile from
// the ξ values at m[p + ξ·xs] (p = r·ldm + 8g + lane), which winoStore
// writes at out[r·ldc + dy·wp + 16g + 2·tile…].
func winoOutTiles(out []float32, ldc, wp, ldm int, bias []float32, rows, mode, ng int, tile func(p int) (v00, v01, v10, v11 float32)) {
	for r := 0; r < rows; r++ {
		var bv float32
		if mode == 1 {
			bv = bias[r]
		}
		for g := 0; g < ng; g++ {
			o := r*ldc + 16*g
			y0 := out[o : o+16 : o+16]          // output row dy = 0
			y1 := out[o+wp : o+wp+16 : o+wp+16] // dy = 1
			for lane, t := range winoLane {
				v00, v01, v10, v11 := tile(r*ldm + 8*g + lane)
				winoStore(y0, y1, 2*t, mode, bv, v00, v01, v10, v11)
			}
		}
	}
}

// winoStore writes a 2×2 output tile at columns q, q+1 of output rows y0
// (dy = 0: v00, v01) and y1 (dy = 1: v10, v11): as they are (mode 0), plus
// bv (mode 1) or plus the old values (mode 2).
func winoStore(y0, y1 []float32, q, mode int, bv, v00, v01, v10, v11 float32) {
	switch mode {
	case 0:
		y0[q], y0[q+1], y1[q], y1[q+1] = v00, v01, v10, v11
	case 1:
		y0[q], y0[q+1], y1[q], y1[q+1] = bv+v00, bv+v01, bv+v10, bv+v11
	default:
		y0[q], y0[q+1], y1[q], y1[q+1] = y0[q]+v00, y0[q+1]+v01, y1[q]+v10, y1[q+1]+v11
	}
}
