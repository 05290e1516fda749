package engine

import (
	"fmt"

	"github.com/convlstm-go/convlstm-go/ops"
)

// ConvSpec describes a 2-D convolution as ONNX Conv and torch Conv2d do.
// Zero strides, dilations and groups mean 1.
type ConvSpec struct {
	M, C                   int // output and input channels
	KH, KW                 int // kernel size
	PadT, PadL, PadB, PadR int // zero padding: top, left, bottom, right
	StrideH, StrideW       int
	DilH, DilW             int
	Groups                 int
}

func one(v int) int { return max(1, v) }

func (s ConvSpec) strideH() int { return one(s.StrideH) }
func (s ConvSpec) strideW() int { return one(s.StrideW) }
func (s ConvSpec) dilH() int    { return one(s.DilH) }
func (s ConvSpec) dilW() int    { return one(s.DilW) }
func (s ConvSpec) groups() int  { return one(s.Groups) }

// OutSize is the output image size for an h×w input (< 1 when the kernel
// does not fit).
func (s ConvSpec) OutSize(h, w int) (int, int) {
	ho := (h+s.PadT+s.PadB-s.dilH()*(s.KH-1)-1)/s.strideH() + 1
	wo := (w+s.PadL+s.PadR-s.dilW()*(s.KW-1)-1)/s.strideW() + 1
	if h+s.PadT+s.PadB < s.dilH()*(s.KH-1)+1 || w+s.PadL+s.PadR < s.dilW()*(s.KW-1)+1 {
		return 0, 0
	}
	return ho, wo
}

// Validate checks the spec's own consistency.
func (s ConvSpec) Validate() error {
	g := s.groups()
	switch {
	case s.M < 1 || s.C < 1 || s.KH < 1 || s.KW < 1:
		return fmt.Errorf("engine: convolution %d→%d channels, kernel %d×%d: all must be at least 1", s.C, s.M, s.KH, s.KW)
	case s.M%g != 0 || s.C%g != 0:
		return fmt.Errorf("engine: %d groups do not divide %d input and %d output channels", g, s.C, s.M)
	case s.PadT < 0 || s.PadL < 0 || s.PadB < 0 || s.PadR < 0:
		return fmt.Errorf("engine: negative padding %d,%d,%d,%d", s.PadT, s.PadL, s.PadB, s.PadR)
	case s.StrideH < 0 || s.StrideW < 0 || s.DilH < 0 || s.DilW < 0 || s.Groups < 0:
		return fmt.Errorf("engine: negative stride, dilation or groups")
	}
	return nil
}

// Conv2D is a convolution whose weights are packed once, for the algorithm
// chosen for it (chooseAlgo). It is read-only after NewConv2D: plans made
// from it may run concurrently.
type Conv2D struct {
	Spec ConvSpec
	Algo Algo
	Bias []float32 // nil: none

	a     []*ops.PackedA    // Direct, Gather: per group, (M/G) × (C/G·KH·KW)
	ab    []*ops.PackedBF16 // Direct with native bf16: per group, channel pairs (a is nil)
	wino  *ops.Winograd
	prec  Precision
	parts []int // Winograd: channels of each input source, in order
	// Winograd: nbh×nbw blocks of blk×blk (the kernel's own 5×5 as one
	// F(2×2, 5×5) block, other sizes as 3×3 blocks) cover the kernel; the
	// blocks read eh rows and ew columns of zeros past the padding.
	blk, nbh, nbw, eh, ew int
}

// ConvOptions adjust NewConv2D.
type ConvOptions struct {
	// Direct forbids Winograd.
	Direct bool
	// Channels is what WinogradMinChannels is compared with (0: Spec.C).
	Channels int
	// Parts splits the input channels into separately buffered sources
	// (e.g. x and h of a ConvLSTM step), each given to Run on its own. nil
	// means one source of C channels. Only a Winograd or single-source
	// convolution can take several parts.
	Parts []int
	// Precision of the multiply-adds ("": Float32). BFloat16 packs the
	// weights as bfloat16: the direct and Winograd GEMMs run VDPBF16PS
	// where the CPU has it (BF16Native), with their input converted to
	// bfloat16 pairs once per Run; a Gather convolution, and every one
	// without native kernels, runs float32 kernels on the rounded weights.
	Precision Precision
}

// NewConv2D packs w, an (M, C/G, KH, KW) row-major weight, and bias (M
// values or nil).
func NewConv2D(w, bias []float32, s ConvSpec, o ConvOptions) (*Conv2D, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := o.Precision.check(); err != nil {
		return nil, err
	}
	g := s.groups()
	kk := s.KH * s.KW
	if len(w) != s.M*(s.C/g)*kk {
		return nil, fmt.Errorf("engine: weight has %d values, want %d for (%d, %d, %d, %d)", len(w), s.M*(s.C/g)*kk, s.M, s.C/g, s.KH, s.KW)
	}
	if bias != nil && len(bias) != s.M {
		return nil, fmt.Errorf("engine: bias has %d values, want %d", len(bias), s.M)
	}
	parts := o.Parts
	if parts == nil {
		parts = []int{s.C}
	}
	total := 0
	for _, p := range parts {
		if p < 0 {
			return nil, fmt.Errorf("engine: input part of %d channels", p)
		}
		total += p
	}
	if total != s.C {
		return nil, fmt.Errorf("engine: input parts %v add up to %d channels, the weight has %d", parts, total, s.C)
	}
	ch := o.Channels
	if ch == 0 {
		ch = s.C
	}
	c := &Conv2D{Spec: s, Algo: chooseAlgo(s, ch, o.Direct), Bias: bias, parts: parts, prec: o.Precision}
	if len(parts) > 1 && c.Algo != Winograd {
		return nil, fmt.Errorf("engine: a %s convolution takes one input source, not %d", c.Algo, len(parts))
	}
	if c.Algo == Winograd {
		// bf16 keeps 3×3 blocks: rounding F(2×2, 5×5)'s transformed
		// input (whose Bᵀ has coefficients up to 5) to bfloat16 gave
		// errors of 1.1% of Σ|w·x| on TestConv2DBF16, beyond its 0.4%.
		c.blk = 3
		if s.KH == 5 && s.KW == 5 && !o.Precision.bf16() {
			c.blk = 5
		}
		c.nbh, c.nbw = (s.KH+c.blk-1)/c.blk, (s.KW+c.blk-1)/c.blk
		c.eh, c.ew = c.blk*c.nbh-s.KH, c.blk*c.nbw-s.KW
		bw, bc := c.blockWeights(w), c.nbh*c.nbw*s.C
		switch {
		case c.blk == 5:
			c.wino = ops.NewWinograd5x5(bw, s.M, bc)
		case o.Precision.bf16():
			c.wino = ops.NewWinograd3x3BF16(bw, s.M, bc, bf16Native())
		default:
			c.wino = ops.NewWinograd3x3(bw, s.M, bc)
		}
		return c, nil
	}
	cg, mg := s.C/g, s.M/g
	if o.Precision.bf16() && c.Algo == Direct && bf16Native() {
		for gi := 0; gi < g; gi++ {
			c.ab = append(c.ab, ops.PackBF16(w[gi*mg*cg*kk:(gi+1)*mg*cg*kk], mg, cg, kk))
		}
		return c, nil
	}
	if o.Precision.bf16() {
		r := make([]float32, len(w))
		ops.RoundBF16(r, w)
		w = r
	}
	for gi := 0; gi < g; gi++ {
		c.a = append(c.a, ops.PackA(w[gi*mg*cg*kk:(gi+1)*mg*cg*kk], mg, cg*kk))
	}
	return c, nil
}

// Precision reports the precision the convolution was packed for.
func (c *Conv2D) Precision() Precision {
	if c.prec == "" {
		return Float32
	}
	return c.prec
}

// NativeBF16 reports whether the convolution's GEMMs run on native
// bfloat16 arithmetic (bf16 precision on a CPU with AVX512_BF16).
func (c *Conv2D) NativeBF16() bool {
	return c.ab != nil || c.wino != nil && c.wino.BF16()
}

// WithPads returns the convolution with other zero padding, sharing the
// packed weights (ONNX's auto_pad SAME pads depend on the input size).
func (c *Conv2D) WithPads(top, left, bottom, right int) (*Conv2D, error) {
	if top < 0 || left < 0 || bottom < 0 || right < 0 {
		return nil, fmt.Errorf("engine: negative padding %d,%d,%d,%d", top, left, bottom, right)
	}
	d := *c
	d.Spec.PadT, d.Spec.PadL, d.Spec.PadB, d.Spec.PadR = top, left, bottom, right
	return &d, nil
}

// blockWeights lays w out as the blk×blk weights of the Winograd
// convolution's input channels: for each part, for each block of the
// kernel (the kernel zero-extended to a multiple of blk), that part's
// channels.
func (c *Conv2D) blockWeights(w []float32) []float32 {
	s := c.Spec
	b := c.blk
	out := make([]float32, 0, s.M*c.nbh*c.nbw*s.C*b*b)
	for r := 0; r < s.M; r++ {
		c0 := 0
		for _, pc := range c.parts {
			for bi := 0; bi < c.nbh; bi++ {
				for bj := 0; bj < c.nbw; bj++ {
					for ch := c0; ch < c0+pc; ch++ {
						k := w[(r*s.C+ch)*s.KH*s.KW:]
						for u := 0; u < b; u++ {
							for v := 0; v < b; v++ {
								var g float32
								if ky, kx := b*bi+u, b*bj+v; ky < s.KH && kx < s.KW {
									g = k[ky*s.KW+kx]
								}
								out = append(out, g)
							}
						}
					}
				}
			}
			c0 += pc
		}
	}
	return out
}

// Layout is where a convolution finds its zero-padded input and puts its
// output. Inputs are channel-major: channel planes ChanStride apart (given
// per source to NewPlan), each holding frames of HP×WP values S apart, the
// image at rows PadT.., columns PadL... Output row i (an output channel)
// holds, for frame f, output pixel (y, x) at column f·OS + y·OWP + x; the
// columns in between (padding positions of a stride-1 convolution) are
// computed and never read, or not written at all.
type Layout struct {
	Frames  int
	H, W    int // input image
	HO, WO  int // output image
	HP, WP  int // padded input frame, including any extra zero rows/columns
	S       int // input frame stride, ≥ HP·WP
	OS, OWP int // output frame stride and row stride
}

// Cols is the width of an output row: up to the last real pixel.
func (l Layout) Cols() int { return (l.Frames-1)*l.OS + (l.HO-1)*l.OWP + l.WO }

// Slack is how many values past the last frame a source buffer must hold
// (Winograd blocks of a 5-wide kernel read a few columns past a frame).
func (c *Conv2D) Slack() int { return c.blk * max(0, c.nbw-1) }

// Layout returns the smallest layout of frames h×w images, frames packed
// S = HP·WP apart. Callers that share a buffer between convolutions (a
// ConvLSTM's x and h halves) may pass a larger HP/WP to NewPlan.
func (c *Conv2D) Layout(frames, h, w int) (Layout, error) {
	s := c.Spec
	ho, wo := s.OutSize(h, w)
	if ho < 1 || wo < 1 {
		return Layout{}, fmt.Errorf("engine: a %d×%d input with pads %d,%d,%d,%d is smaller than the %d×%d kernel (dilation %d×%d)", h, w, s.PadT, s.PadL, s.PadB, s.PadR, s.KH, s.KW, s.dilH(), s.dilW())
	}
	l := Layout{Frames: frames, H: h, W: w, HO: ho, WO: wo, HP: h + s.PadT + s.PadB + c.eh, WP: w + s.PadL + s.PadR + c.ew}
	l.S = l.HP * l.WP
	if c.Algo == Gather {
		l.OWP, l.OS = wo, ho*wo
	} else {
		l.OWP, l.OS = l.WP, l.S
	}
	return l, nil
}

// ConvPlan is a Conv2D bound to a layout, its sources' channel strides and
// a number of threads: offsets and scratch are computed once and reused by
// every Run. A plan is not safe for concurrent use.
type ConvPlan struct {
	c       *Conv2D
	L       Layout
	strides []int
	offs    [][]int32   // Direct, Gather: per group, per tap
	ws      [][]float32 // Winograd: one scratch per thread
	col     []float32   // Gather: the taps of every output pixel
	srcs    []ops.WinoInput
	gemm    gemmTask
	wino    winoTask
	gather  gatherTask
	dense   []float32 // Apply: the padded input
	outBuf  []float32 // Apply: the output rows
	apply   applyTask
	// Direct with native bf16: the input's channel pairs as bfloat16
	// pair planes of pairLen words (PairPlanes), and the GEMM's offsets
	// into them.
	pairs   []uint32
	pairLen int
	offsB   [][]int32
	pair    pairTask
}

// NewPlan prepares c for layout l (from Layout, or larger HP/WP/S with the
// same image sizes) with one channel stride per input source.
func (c *Conv2D) NewPlan(l Layout, strides []int, threads int) *ConvPlan {
	if len(strides) != len(c.parts) {
		panic(fmt.Sprintf("engine: %d channel strides for %d input sources", len(strides), len(c.parts)))
	}
	p := &ConvPlan{c: c, L: l, strides: strides}
	s := c.Spec
	g, kk := s.groups(), s.KH*s.KW
	cg := s.C / g
	switch c.Algo {
	case Winograd:
		p.ws = make([][]float32, max(1, threads))
		for i := range p.ws {
			p.ws[i] = make([]float32, c.wino.Workspace())
		}
		p.srcs = make([]ops.WinoInput, 0, len(c.parts)*c.nbh*c.nbw)
	case Direct:
		if c.ab != nil {
			p.newPairs()
			break
		}
		for gi := 0; gi < g; gi++ {
			o := make([]int32, 0, cg*kk)
			for ch := gi * cg; ch < (gi+1)*cg; ch++ {
				for ky := 0; ky < s.KH; ky++ {
					for kx := 0; kx < s.KW; kx++ {
						o = append(o, int32(ch*strides[0]+ky*s.dilH()*l.WP+kx*s.dilW()))
					}
				}
			}
			p.offs = append(p.offs, o)
		}
	case Gather:
		cols := l.Frames * l.HO * l.WO
		p.col = make([]float32, s.C*kk*cols)
		for gi := 0; gi < g; gi++ {
			o := make([]int32, cg*kk)
			for k := range o {
				o[k] = int32((gi*cg*kk + k) * cols)
			}
			p.offs = append(p.offs, o)
		}
	}
	return p
}

// Run computes the convolution of the sources (one padded buffer per input
// part, laid out as p.L says) into out, whose output channel i is row
// out[i·ldc:]: out = (acc ? out : Bias) + conv(srcs). It writes only output
// pixels' columns.
func (p *ConvPlan) Run(pool *Pool, out []float32, ldc int, srcs [][]float32, acc bool) {
	p.RunFrames(pool, out, ldc, p.c.Bias, srcs, p.L.Frames, acc)
}

// RunFrames is Run over the first frames frames (≤ p.L.Frames), with the
// given bias instead of the convolution's own (nil: none; ignored when acc).
func (p *ConvPlan) RunFrames(pool *Pool, out []float32, ldc int, bias []float32, srcs [][]float32, frames int, acc bool) {
	c, l := p.c, p.L
	if frames < 1 || frames > l.Frames || len(srcs) != len(c.parts) {
		panic(fmt.Sprintf("engine: RunFrames of %d frames (plan: %d) from %d sources (want %d)", frames, l.Frames, len(srcs), len(c.parts)))
	}
	l.Frames = frames
	if acc {
		bias = nil
	}
	n := l.Cols()
	parts := p.runParts(pool, frames)
	switch c.Algo {
	case Winograd:
		p.runWino(pool, out, ldc, bias, srcs, frames, acc, parts, false)
	case Direct:
		for i, pc := range c.parts {
			for bi := 0; bi < c.nbh; bi++ {
				for bj := 0; bj < c.nbw; bj++ {
					p.srcs = append(p.srcs, ops.WinoInput{Data: srcs[i][c.blk*(bi*l.WP+bj):], ChanStride: p.strides[i], Channels: pc})
				}
			}
		}
		if c.ab != nil {
			p.runBF16(pool, out, ldc, bias, srcs[0], frames, n, acc, parts)
			break
		}
		p.gemm = gemmTask{p: p, out: out, ldc: ldc, bias: bias, b: srcs[0], n: n, acc: acc}
		pool.Do(&p.gemm, parts)
	case Gather:
		if frames != p.L.Frames {
			panic("engine: a gather convolution runs all its plan's frames")
		}
		p.gather = gatherTask{p: p, src: srcs[0]}
		pool.Do(&p.gather, parts)
		p.gemm = gemmTask{p: p, out: out, ldc: ldc, bias: bias, b: p.col, n: n, acc: acc}
		pool.Do(&p.gemm, parts)
	}
}

// runWino is RunFrames of a Winograd convolution; dense writes out as a
// dense (frames, M, HO, WO) array (Apply's output) instead of rows ldc
// apart in the input's layout.
func (p *ConvPlan) runWino(pool *Pool, out []float32, ldc int, bias []float32, srcs [][]float32, frames int, acc bool, parts int, dense bool) {
	c, l := p.c, p.L
	p.srcs = p.srcs[:0]
	for i, pc := range c.parts {
		for bi := 0; bi < c.nbh; bi++ {
			for bj := 0; bj < c.nbw; bj++ {
				p.srcs = append(p.srcs, ops.WinoInput{Data: srcs[i][c.blk*(bi*l.WP+bj):], ChanStride: p.strides[i], Channels: pc})
			}
		}
	}
	// Few tiles for each part: split the output channels instead, so
	// that each core reads only its share of the transformed weights.
	byM := parts > 1 && ops.Groups(frames, l.HO, l.WO) < winoMinGroupsPerPart*parts && c.wino.Chunks() >= parts
	p.wino = winoTask{p: p, out: out, ldc: ldc, bias: bias, frames: frames, acc: acc, byM: byM, dense: dense}
	pool.Do(&p.wino, parts)
}

// minConvWorkPerPart (direct-convolution flops) keeps a convolution on one
// thread unless each part gets at least this much. On the 2-core test VM
// (Zen 5) a convolution of 19 MFLOP (16→16 3×3 at 64×64, 64→64 at 16×16)
// ran 0.84-0.93× as fast on 2 threads as on one, 75 MFLOP 1.2×, 300 MFLOP
// 1.6×, 1.2 GFLOP 1.76×: below this the second core's cache misses on data
// the first wrote cost more than it computes.
var minConvWorkPerPart = 16 << 20

// winoMinGroupsPerPart: a Winograd convolution run by RunFrames whose parts
// would get fewer tile groups (8 tiles of 2×2 each) than this splits its
// output channels between the parts instead of its tiles.
var winoMinGroupsPerPart = 16

// runParts is how many parts RunFrames splits frames frames into.
func (p *ConvPlan) runParts(pool *Pool, frames int) int {
	s, l := p.c.Spec, p.L
	work := 2 * s.M * (s.C / s.groups()) * s.KH * s.KW * frames * l.HO * l.WO
	parts := min(pool.PartsFor(work), max(1, work/minConvWorkPerPart))
	if p.c.Algo == Winograd {
		parts = min(parts, len(p.ws)) // one scratch per part
	}
	return max(1, min(parts, pool.Threads()))
}

// rowOwner is the part of a run split into parts that computes output row
// y of frame f: Winograd parts take consecutive groups of 8 tiles of 2×2
// pixels (ops.Winograd3x3's split), direct parts consecutive column ranges
// (gemmTask's). Apply pads and compacts each row on the part that reads
// or wrote it, so that the data stays in that core's cache.
func (p *ConvPlan) rowOwner(f, y, parts int) int {
	l := p.L
	var at, total int
	switch p.c.Algo {
	case Winograd:
		nty, ngx := (l.HO+1)/2, ((l.WO+1)/2+7)/8
		total = l.Frames * nty * ngx
		at = (f*nty + y/2) * ngx
		// Part q holds groups [total·q/parts, total·(q+1)/parts).
		q := at * parts / total
		for q+1 < parts && total*(q+1)/parts <= at {
			q++
		}
		for q > 0 && total*q/parts > at {
			q--
		}
		return q
	case Direct:
		n := l.Cols()
		at = f*l.OS + y*l.OWP
		blocks := (n + gemmAlign - 1) / gemmAlign
		// Part q holds columns from blocks·q/parts·gemmAlign on (Split).
		q := parts - 1
		for q > 0 && blocks*q/parts*gemmAlign > at {
			q--
		}
		return q
	}
	return 0
}

// gemmAlign keeps each worker's column range a multiple of the kernels'
// widest tile.
const gemmAlign = 64

// gemmTask runs ops.ConvGemm for every group, columns split between
// workers: each column is summed whole by one worker, so the result does
// not depend on the split.
type gemmTask struct {
	p            *ConvPlan
	out, bias, b []float32
	ldc, n       int
	acc          bool
}

func (t *gemmTask) Run(part, parts int) {
	j0, j1 := Split(t.n, part, parts, gemmAlign)
	if j0 >= j1 {
		return
	}
	if t.p.c.ab != nil {
		t.runBF16(j0, j1)
		return
	}
	mg := t.p.c.Spec.M / t.p.c.Spec.groups()
	for gi, a := range t.p.c.a {
		var bias []float32
		if t.bias != nil {
			bias = t.bias[gi*mg : (gi+1)*mg]
		}
		ops.ConvGemm(t.out[gi*mg*t.ldc+j0:], t.ldc, a, bias, t.b[j0:], t.p.offs[gi], j1-j0, t.acc)
	}
}

type winoTask struct {
	p           *ConvPlan
	out, bias   []float32
	ldc, frames int
	acc         bool
	byM         bool // parts take output channels, not tiles
	dense       bool // out is a dense (frames, M, HO, WO) array
}

func (t *winoTask) Run(part, parts int) {
	p := t.p
	l := p.L
	if t.dense {
		plane := l.HO * l.WO
		o := ops.WinoOut{Ldc: plane, FrameStride: p.c.Spec.M * plane, RowStride: l.WO}
		p.c.wino.ConvMultiOut(t.out, o, t.bias, p.srcs, t.frames, l.HO, l.WO, l.WP, l.S, t.acc, p.ws[part], part, parts, t.byM)
		return
	}
	p.c.wino.ConvMulti(t.out, t.ldc, t.bias, p.srcs, t.frames, l.HO, l.WO, l.WP, l.S, t.acc, p.ws[part], part, parts, t.byM)
}

// gatherTask fills the im2col matrix: row (channel, ky, kx), column (frame,
// yo, xo); rows are split between workers.
type gatherTask struct {
	p   *ConvPlan
	src []float32
}

func (t *gatherTask) Run(part, parts int) {
	p := t.p
	l, s := p.L, p.c.Spec
	kk := s.KH * s.KW
	cols := l.Frames * l.HO * l.WO
	sh, sw, dh, dw := s.strideH(), s.strideW(), s.dilH(), s.dilW()
	r0, r1 := Split(s.C*kk, part, parts, 1)
	for r := r0; r < r1; r++ {
		ch, ky, kx := r/kk, r%kk/s.KW, r%s.KW
		dst := p.col[r*cols : (r+1)*cols]
		for f := 0; f < l.Frames; f++ {
			plane := t.src[ch*p.strides[0]+f*l.S:]
			for yo := 0; yo < l.HO; yo++ {
				row := plane[(yo*sh+ky*dh)*l.WP+kx*dw:]
				d := dst[(f*l.HO+yo)*l.WO : (f*l.HO+yo+1)*l.WO]
				if sw == 1 {
					copy(d, row)
					continue
				}
				for xo := range d {
					d[xo] = row[xo*sw]
				}
			}
		}
	}
}

// Part is one input of Apply: a dense (frames, Channels, H, W) array. Several
// parts are the channel concatenation of their arrays, in order (a Concat
// folded into its convolution).
type Part struct {
	Data     []float32
	Channels int
}

// Apply runs the convolution on dense (frames, C, H, W) input, given as
// one or more parts along the channels, and writes the dense (frames, M,
// HO, WO) output out: it pads the parts into the plan's own buffer (made by
// NewDensePlan) and compacts the output rows. When epilogue is not nil it
// is applied to the values of each output plane (channel ch of a frame)
// right after they are written, while they are in cache (a fused
// activation): to whole planes, or to runs of rows of a plane when the
// work is split by rows, so it must be elementwise. Padding, compaction
// and epilogue are split between the pool's workers: the epilogue may run
// on several planes at once.
func (p *ConvPlan) Apply(pool *Pool, out []float32, epilogue func(plane []float32, ch int), xs ...Part) {
	c, l := p.c, p.L
	s := c.Spec
	hw := l.H * l.W
	ch0 := 0
	for _, x := range xs {
		if x.Channels < 0 || len(x.Data) != l.Frames*x.Channels*hw {
			panic(fmt.Sprintf("engine: Apply input part of %d values for %d channels of (%d, ·, %d, %d)", len(x.Data), x.Channels, l.Frames, l.H, l.W))
		}
		ch0 += x.Channels
	}
	if ch0 != s.C || len(out) != l.Frames*s.M*l.HO*l.WO {
		panic(fmt.Sprintf("engine: Apply on %d input channels and %d output values, the plan is for (%d, %d, %d, %d) → (%d, %d, %d, %d)", ch0, len(out), l.Frames, s.C, l.H, l.W, l.Frames, s.M, l.HO, l.WO))
	}
	cs := p.strides[0]
	direct := p.writesOut()
	if p.dense == nil {
		p.dense = make([]float32, s.C*cs+c.Slack())
		if !direct {
			p.outBuf = make([]float32, s.M*l.Cols())
		}
	}
	// Padding the input and compacting the output (with the epilogue) are
	// split between the workers too: done by the caller alone they would
	// be the serial part of a multi-threaded convolution. When the
	// convolution itself is split, they are split by rows the same way
	// (rowOwner): each part pads the input rows its tiles or columns read
	// first and compacts the output rows it wrote, in its own cache, not
	// another core's (at 2 threads, 48→128 channels 3×3 at 64×64: padding
	// and compaction took 200 µs split by planes, against 95 µs at 1 thread).
	ldc := l.Cols()
	conv := func(parts int) {
		if direct {
			p.runWino(pool, out, 0, c.Bias, [][]float32{p.dense}, l.Frames, false, parts, true)
			return
		}
		p.Run(pool, p.outBuf, ldc, [][]float32{p.dense}, false)
	}
	if parts := p.runParts(pool, l.Frames); parts > 1 && (c.Algo == Winograd || c.Algo == Direct) {
		p.apply = applyTask{p: p, xs: xs, out: out, epilogue: epilogue, rows: true}
		pool.Do(&p.apply, parts)
		conv(parts)
		if !direct || epilogue != nil {
			p.apply.compact = true
			pool.Do(&p.apply, parts)
		}
		p.apply = applyTask{}
		return
	}
	// A convolution on one core pads and compacts there too: split by
	// planes, the other core would write half the buffer this one reads
	// next, and read half of what it wrote (a 16→16 3×3 convolution at
	// 64×64: 170 µs at 2 threads, 97 µs at 1). A Gather convolution's
	// kernels split by other lines than rows.
	p.apply = applyTask{p: p, xs: xs, out: out, epilogue: epilogue}
	padParts, compactParts := 1, 1
	if c.Algo == Gather {
		padParts, compactParts = pool.PartsFor(scalarWork*s.C*l.Frames*l.S), pool.PartsFor(scalarWork*s.M*l.Frames*l.HO*l.WO)
	}
	pool.Do(&p.apply, padParts)
	conv(p.runParts(pool, l.Frames))
	if !direct || epilogue != nil {
		p.apply.compact = true
		pool.Do(&p.apply, compactParts)
	}
	p.apply = applyTask{}
}

// applyTask is Apply's padding of the input planes (compact false) or
// compaction of the output planes and epilogue (compact true), planes split
// between workers.
type applyTask struct {
	p        *ConvPlan
	xs       []Part
	out      []float32
	epilogue func(plane []float32, ch int)
	compact  bool
	rows     bool // split by rows as the convolution is (rowOwner)
}

// writesOut reports whether Apply's convolution writes its output rows
// straight into the output (Winograd, through ops.WinoOut); the others
// write the plan's padded-width rows, which Apply compacts after: then
// compaction is the epilogue alone.
func (p *ConvPlan) writesOut() bool { return p.c.Algo == Winograd }

func (t *applyTask) Run(part, parts int) {
	p := t.p
	c, l := p.c, p.L
	s := c.Spec
	if t.rows {
		t.runRows(part, parts)
		return
	}
	if !t.compact {
		hw, cs := l.H*l.W, p.strides[0]
		q0, q1 := Split(s.C*l.Frames, part, parts, 1)
		for q := q0; q < q1; q++ {
			ch, f := q/l.Frames, q%l.Frames
			// Find the part holding channel ch.
			ch0 := 0
			for _, x := range t.xs {
				if ch < ch0+x.Channels {
					PadPlane(p.dense[ch*cs+f*l.S:][:l.S], l.WP, s.PadT, s.PadL, x.Data[(f*x.Channels+ch-ch0)*hw:][:hw], l.H, l.W)
					break
				}
				ch0 += x.Channels
			}
		}
		return
	}
	ldc := l.Cols()
	plane := l.HO * l.WO
	q0, q1 := Split(s.M*l.Frames, part, parts, 1)
	for q := q0; q < q1; q++ {
		f, i := q/s.M, q%s.M
		dst := t.out[(f*s.M+i)*plane : (f*s.M+i+1)*plane]
		if !p.writesOut() {
			src := p.outBuf[i*ldc+f*l.OS:]
			for y := 0; y < l.HO; y++ {
				copy(dst[y*l.WO:(y+1)*l.WO], src[y*l.OWP:y*l.OWP+l.WO])
			}
		}
		if t.epilogue != nil {
			t.epilogue(dst, i)
		}
	}
}

// runRows pads (compact false) the padded input rows or compacts the
// output rows that part owns, of every channel: padded row r goes with
// output row min(r, HO−1), whose tiles or columns start reading there.
// The epilogue runs on each run of consecutive rows of a plane.
func (t *applyTask) runRows(part, parts int) {
	p := t.p
	c, l := p.c, p.L
	s := c.Spec
	if !t.compact {
		hw, cs := l.H*l.W, p.strides[0]
		for f := 0; f < l.Frames; f++ {
			for r := 0; r < l.HP; r++ {
				if p.rowOwner(f, min(r, l.HO-1), parts) != part {
					continue
				}
				y := r - s.PadT // the image row, when inside
				ch0 := 0
				for _, x := range t.xs {
					for ch := ch0; ch < ch0+x.Channels; ch++ {
						row := p.dense[ch*cs+f*l.S+r*l.WP:][:l.WP]
						if y < 0 || y >= l.H {
							clear(row)
							continue
						}
						clear(row[:s.PadL])
						copy(row[s.PadL:s.PadL+l.W], x.Data[(f*x.Channels+ch-ch0)*hw+y*l.W:][:l.W])
						clear(row[s.PadL+l.W:])
					}
					ch0 += x.Channels
				}
			}
		}
		return
	}
	ldc := l.Cols()
	plane := l.HO * l.WO
	for f := 0; f < l.Frames; f++ {
		for y0 := 0; y0 < l.HO; {
			if p.rowOwner(f, y0, parts) != part {
				y0++
				continue
			}
			y1 := y0 + 1
			for y1 < l.HO && p.rowOwner(f, y1, parts) == part {
				y1++
			}
			for i := 0; i < s.M; i++ {
				dst := t.out[(f*s.M+i)*plane+y0*l.WO : (f*s.M+i)*plane+y1*l.WO]
				if !p.writesOut() {
					src := p.outBuf[i*ldc+f*l.OS:]
					for y := y0; y < y1; y++ {
						copy(dst[(y-y0)*l.WO:(y-y0+1)*l.WO], src[y*l.OWP:y*l.OWP+l.WO])
					}
				}
				if t.epilogue != nil {
					t.epilogue(dst, i)
				}
			}
			y0 = y1
		}
	}
}

// NewDensePlan is NewPlan for Apply: one source, frames packed S apart in
// each channel plane.
func (c *Conv2D) NewDensePlan(frames, h, w, threads int) (*ConvPlan, error) {
	l, err := c.Layout(frames, h, w)
	if err != nil {
		return nil, err
	}
	if len(c.parts) != 1 {
		return nil, fmt.Errorf("engine: Apply takes one input source, the convolution has %d", len(c.parts))
	}
	return c.NewPlan(l, []int{frames * l.S}, threads), nil
}

// PadPlane writes an h×w image into a zero-padded plane of row stride wp,
// the image at row top, column left: the padding is cleared, the interior
// copied.
func PadPlane(dst []float32, wp, top, left int, src []float32, h, w int) {
	clear(dst[:top*wp])
	for y := 0; y < h; y++ {
		row := dst[(y+top)*wp : (y+top+1)*wp]
		clear(row[:left])
		copy(row[left:left+w], src[y*w:(y+1)*w])
		clear(row[left+w:])
	}
	clear(dst[(top+h)*wp:])
}
