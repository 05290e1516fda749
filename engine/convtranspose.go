package engine

import (
	"fmt"

	"github.com/convlstm-go/convlstm-go/ops"
)

// ConvTransposeSpec describes a 2-D transposed convolution (ONNX
// ConvTranspose, torch ConvTranspose2d): C input channels, M output
// channels, weight (C, M/G, KH, KW). Output pixel
//
//	y[m, yo, xo] = bias[m] + Σ x[c, yi, xi]·w[c, m, ky, kx]
//
// over yo = yi·StrideH − PadT + ky·DilH (and likewise for x); the output
// size is given (ONNX derives it from pads, output_padding or
// output_shape). Zero strides, dilations and groups mean 1.
type ConvTransposeSpec struct {
	C, M             int
	KH, KW           int
	PadT, PadL       int
	StrideH, StrideW int
	DilH, DilW       int
	Groups           int
	HO, WO           int // output size (for the input size the plan is made for)
}

// ConvTranspose2D is a transposed convolution computed as a GEMM
// (Wᵀ·x: every input pixel's contribution to the KH·KW output positions it
// touches) followed by a scatter-add of those contributions (col2im).
type ConvTranspose2D struct {
	Spec ConvTransposeSpec
	Bias []float32
	a    []*ops.PackedA // per group: (M/G·KH·KW) × (C/G)
	// phases, for a strided transposed convolution without groups or
	// dilation: one convolution per output phase (see ctPhase).
	phases []ctPhase
}

// ctPhase is one output phase (ry, rx) of a strided transposed
// convolution: the outputs yo ≡ ry − PadT (mod StrideH), xo likewise. Only
// the taps ky ≡ ry, kx ≡ rx reach them, and output q of the phase reads
// input rows q−Ty+1 .. q: an ordinary stride-1 convolution of the input
// with that sub-kernel, flipped (a "sub-pixel" decomposition). Run as
// Conv2Ds on the GEMM, the phases replace the contributions' scatter-add
// (col2im): U-Net/encoder–forecaster up-sampling (kernel 4 or 3, stride 2)
// ran at ~50 GFLOP/s that way.
type ctPhase struct {
	ry, rx int
	ty, tx int     // taps of the sub-kernel (0: the phase gets the bias only)
	conv   *Conv2D // (M, C, ty, tx), the bias included, no padding
}

// NewConvTranspose2D packs w, a (C, M/G, KH, KW) row-major weight.
func NewConvTranspose2D(w, bias []float32, s ConvTransposeSpec) (*ConvTranspose2D, error) {
	g := one(s.Groups)
	if s.C < 1 || s.M < 1 || s.KH < 1 || s.KW < 1 || s.C%g != 0 || s.M%g != 0 || s.Groups < 0 ||
		s.StrideH < 0 || s.StrideW < 0 || s.DilH < 0 || s.DilW < 0 {
		return nil, fmt.Errorf("engine: transposed convolution %d→%d, kernel %d×%d, %d groups: sizes must be positive and the groups divide the channels", s.C, s.M, s.KH, s.KW, g)
	}
	cg, mg, kk := s.C/g, s.M/g, s.KH*s.KW
	if len(w) != s.C*mg*kk {
		return nil, fmt.Errorf("engine: weight has %d values, want %d for (%d, %d, %d, %d)", len(w), s.C*mg*kk, s.C, mg, s.KH, s.KW)
	}
	if bias != nil && len(bias) != s.M {
		return nil, fmt.Errorf("engine: bias has %d values, want %d", len(bias), s.M)
	}
	c := &ConvTranspose2D{Spec: s, Bias: bias}
	for gi := 0; gi < g; gi++ {
		// Row (m, ky, kx) of Wᵀ, column c: w[gi·cg + c, m, ky, kx].
		t := make([]float32, mg*kk*cg)
		for ci := 0; ci < cg; ci++ {
			src := w[(gi*cg+ci)*mg*kk : (gi*cg+ci+1)*mg*kk]
			for r, v := range src {
				t[r*cg+ci] = v
			}
		}
		c.a = append(c.a, ops.PackA(t, mg*kk, cg))
	}
	sh, sw := one(s.StrideH), one(s.StrideW)
	if g == 1 && one(s.DilH) == 1 && one(s.DilW) == 1 && sh*sw > 1 && sh <= s.KH && sw <= s.KW {
		for ry := 0; ry < sh; ry++ {
			for rx := 0; rx < sw; rx++ {
				ph := ctPhase{ry: ry, rx: rx, ty: (s.KH - ry + sh - 1) / sh, tx: (s.KW - rx + sw - 1) / sw}
				// w'[m, c, a, b] = w[c, m, ry + sh·(ty−1−a), rx + sw·(tx−1−b)]
				wp := make([]float32, 0, s.M*s.C*ph.ty*ph.tx)
				for m := 0; m < s.M; m++ {
					for ci := 0; ci < s.C; ci++ {
						for a := 0; a < ph.ty; a++ {
							for b := 0; b < ph.tx; b++ {
								ky, kx := ry+sh*(ph.ty-1-a), rx+sw*(ph.tx-1-b)
								wp = append(wp, w[((ci*s.M+m)*s.KH+ky)*s.KW+kx])
							}
						}
					}
				}
				conv, err := NewConv2D(wp, bias, ConvSpec{M: s.M, C: s.C, KH: ph.ty, KW: ph.tx}, ConvOptions{Direct: true})
				if err != nil {
					return nil, err
				}
				ph.conv = conv
				c.phases = append(c.phases, ph)
			}
		}
	}
	return c, nil
}

// ConvTransposePlan holds the scratch of one input size.
type ConvTransposePlan struct {
	c      *ConvTranspose2D
	frames int
	h, w   int
	// The contributions are computed for rb input rows at a time, so that
	// they are scattered while in cache: z holds (M·KH·KW) rows of rb·W.
	rb      int
	z       []float32
	offs    [][]int32
	gemm    ctGemmTask
	scatter ctScatterTask
	// The phase convolutions, when every phase fits (no cropping): they
	// read one zero-padded copy of the input (dense, padded by the most
	// any phase needs: a phase reads it from its own origin), and each
	// writes its rows into phOut, from where they are interleaved into
	// the output.
	phases []ctPhasePlan
	dense  []float32
	padT   int
	padL   int
	lay    Layout // the shared padded input
	phOut  []float32
	pad    ctPadTask
	inter  ctInterleaveTask
}

// ctPhasePlan places phase outputs (q, p) at yo = y0 + q·StrideH,
// xo = x0 + p·StrideW, q < hq, p < wq.
type ctPhasePlan struct {
	ph             *ctPhase
	plan           *ConvPlan // nil: no taps or no outputs
	origin         int       // where its padded input starts in dense
	y0, x0, hq, wq int
	pads           [4]int
}

// ctBlockBytes bounds the contributions of one block of input rows (a
// variable so that tests can force many blocks).
var ctBlockBytes = 256 << 10

// NewPlan prepares the transposed convolution for frames h×w images.
func (c *ConvTranspose2D) NewPlan(frames, h, w int) (*ConvTransposePlan, error) {
	s := c.Spec
	if frames < 1 || h < 1 || w < 1 || s.HO < 1 || s.WO < 1 {
		return nil, fmt.Errorf("engine: transposed convolution of %d frames of %d×%d into %d×%d", frames, h, w, s.HO, s.WO)
	}
	g := one(s.Groups)
	cg, kk := s.C/g, s.KH*s.KW
	rb := max(1, min(h, ctBlockBytes/(4*s.M*kk*w)))
	if phases, ok := c.phasePlans(frames, h, w); ok {
		return c.newPhasePlan(phases, frames, h, w), nil
	}
	p := &ConvTransposePlan{c: c, frames: frames, h: h, w: w, rb: rb, z: make([]float32, s.M*kk*rb*w)}
	for gi := 0; gi < g; gi++ {
		o := make([]int32, cg)
		for ci := range o {
			o[ci] = int32((gi*cg + ci) * h * w)
		}
		p.offs = append(p.offs, o)
	}
	return p, nil
}

// phasePlans lays out the phase convolutions for this geometry; false when
// a phase would need its input cropped (a negative padding), left to the
// scatter-add.
func (c *ConvTranspose2D) phasePlans(frames, h, w int) ([]ctPhasePlan, bool) {
	if c.phases == nil {
		return nil, false
	}
	s := c.Spec
	sh, sw := one(s.StrideH), one(s.StrideW)
	// axis places one phase along an axis: first output, count, and the
	// convolution's paddings.
	axis := func(r, t, stride, pad, in, out int) (o0, n, padB, padE int, ok bool) {
		o0 = ((r-pad)%stride + stride) % stride
		if o0 >= out {
			return o0, 0, 0, 0, true
		}
		n = (out-1-o0)/stride + 1
		q0 := (o0 + pad - r) / stride // exact: o0 + pad ≡ r
		padB = t - 1 - q0
		padE = q0 + n - in
		return o0, n, padB, padE, padB >= 0 && padE >= 0
	}
	var plans []ctPhasePlan
	for i := range c.phases {
		ph := &c.phases[i]
		pp := ctPhasePlan{ph: ph}
		var pt, pb, pl, pr int
		var okY, okX bool
		pp.y0, pp.hq, pt, pb, okY = axis(ph.ry, max(ph.ty, 1), sh, s.PadT, h, s.HO)
		pp.x0, pp.wq, pl, pr, okX = axis(ph.rx, max(ph.tx, 1), sw, s.PadL, w, s.WO)
		if pp.hq > 0 && pp.wq > 0 && ph.ty > 0 && ph.tx > 0 {
			if !okY || !okX {
				return nil, false
			}
			pp.pads = [4]int{pt, pl, pb, pr}
		}
		plans = append(plans, pp)
	}
	return plans, true
}

// newPhasePlan lays the phases out on one padded copy of the input.
func (c *ConvTranspose2D) newPhasePlan(phases []ctPhasePlan, frames, h, w int) *ConvTransposePlan {
	s := c.Spec
	var most [4]int
	for _, pp := range phases {
		for k := range most {
			most[k] = max(most[k], pp.pads[k])
		}
	}
	l := Layout{Frames: frames, H: h, W: w, HP: h + most[0] + most[2], WP: w + most[1] + most[3]}
	l.S = l.HP * l.WP
	p := &ConvTransposePlan{c: c, frames: frames, h: h, w: w, phases: phases, padT: most[0], padL: most[1], lay: l}
	p.dense = make([]float32, s.C*frames*l.S)
	n := 0
	for i := range p.phases {
		pp := &p.phases[i]
		if pp.hq == 0 || pp.wq == 0 || pp.ph.ty == 0 || pp.ph.tx == 0 {
			continue
		}
		conv, _ := pp.ph.conv.WithPads(pp.pads[0], pp.pads[1], pp.pads[2], pp.pads[3])
		pl := l
		pl.HO, pl.WO, pl.OS, pl.OWP = pp.hq, pp.wq, l.S, l.WP
		pp.origin = (most[0]-pp.pads[0])*l.WP + most[1] - pp.pads[1]
		pp.plan = conv.NewPlan(pl, []int{frames * l.S}, 1)
		n = max(n, s.M*pl.Cols())
	}
	p.phOut = make([]float32, n)
	return p
}

// WithGeometry returns the transposed convolution with another padding and
// output size, sharing the packed weights (ONNX derives them from the input
// size under auto_pad and output_shape).
func (c *ConvTranspose2D) WithGeometry(padT, padL, ho, wo int) *ConvTranspose2D {
	d := *c
	d.Spec.PadT, d.Spec.PadL, d.Spec.HO, d.Spec.WO = padT, padL, ho, wo
	return &d
}

// Apply computes the dense (frames, M, HO, WO) output of the dense
// (frames, C, H, W) input x.
func (p *ConvTransposePlan) Apply(pool *Pool, x, out []float32) {
	p.ApplyEpilogue(pool, x, out, nil)
}

// ApplyEpilogue is Apply, with epilogue (when not nil) applied to each
// output plane (channel ch of a frame) right after it is written, while it
// is in cache (a fused activation).
func (p *ConvTransposePlan) ApplyEpilogue(pool *Pool, x, out []float32, epilogue func(plane []float32, ch int)) {
	s := p.c.Spec
	hw := p.h * p.w
	if len(x) != p.frames*s.C*hw || len(out) != p.frames*s.M*s.HO*s.WO {
		panic(fmt.Sprintf("engine: ConvTranspose Apply on %d input and %d output values, the plan is for (%d, %d, %d, %d) → (%d, %d, %d, %d)", len(x), len(out), p.frames, s.C, p.h, p.w, p.frames, s.M, s.HO, s.WO))
	}
	if p.phases != nil {
		p.applyPhases(pool, x, out, epilogue)
		return
	}
	g := one(s.Groups)
	rows := s.M / g * s.KH * s.KW
	for f := 0; f < p.frames; f++ {
		xf := x[f*s.C*hw : (f+1)*s.C*hw]
		of := out[f*s.M*s.HO*s.WO : (f+1)*s.M*s.HO*s.WO]
		for y0 := 0; y0 < p.h; y0 += p.rb {
			y1 := min(p.h, y0+p.rb)
			cols := (y1 - y0) * p.w
			p.gemm = ctGemmTask{p: p, x: xf, rows: rows, c0: y0 * p.w, c1: y1 * p.w}
			pool.Do(&p.gemm, pool.PartsFor(2*s.C/g*rows*cols*g))
			p.scatter = ctScatterTask{p: p, out: of, y0: y0, y1: y1, epi: epilogue}
			pool.Do(&p.scatter, pool.PartsFor(scalarWork*s.M*s.KH*s.KW*cols))
		}
	}
	p.gemm, p.scatter = ctGemmTask{}, ctScatterTask{}
}

// ctGemmTask computes the contributions of input columns [c0, c1) (whole
// rows) into z, columns split between workers.
type ctGemmTask struct {
	p      *ConvTransposePlan
	x      []float32
	rows   int
	c0, c1 int
}

func (t *ctGemmTask) Run(part, parts int) {
	ldz := t.p.rb * t.p.w
	j0, j1 := Split(t.c1-t.c0, part, parts, gemmAlign)
	if j0 >= j1 {
		return
	}
	for gi, a := range t.p.c.a {
		ops.ConvGemm(t.p.z[gi*t.rows*ldz+j0:], ldz, a, nil, t.x[t.c0+j0:], t.p.offs[gi], j1-j0, false)
	}
}

// ctScatterTask adds the contributions of input rows [y0, y1) into the
// output, output channels split between workers (each output value is
// summed by one worker, in a fixed order: blocks of input rows in order,
// then taps, then input pixels), the planes set to the bias before the
// first block and handed to the epilogue after the last.
type ctScatterTask struct {
	p      *ConvTransposePlan
	out    []float32
	y0, y1 int
	epi    func(plane []float32, ch int)
}

func (t *ctScatterTask) Run(part, parts int) {
	p := t.p
	s := p.c.Spec
	sh, sw, dh, dw := one(s.StrideH), one(s.StrideW), one(s.DilH), one(s.DilW)
	ldz := p.rb * p.w
	m0, m1 := Split(s.M, part, parts, 1)
	for m := m0; m < m1; m++ {
		plane := t.out[m*s.HO*s.WO : (m+1)*s.HO*s.WO]
		if t.y0 == 0 {
			var b float32
			if p.c.Bias != nil {
				b = p.c.Bias[m]
			}
			for i := range plane {
				plane[i] = b
			}
		}
		for ky := 0; ky < s.KH; ky++ {
			for kx := 0; kx < s.KW; kx++ {
				z := p.z[((m*s.KH+ky)*s.KW+kx)*ldz:]
				// Input columns whose output column lies inside.
				x0, x1 := 0, p.w
				for x0 < x1 && x0*sw-s.PadL+kx*dw < 0 {
					x0++
				}
				for x1 > x0 && (x1-1)*sw-s.PadL+kx*dw >= s.WO {
					x1--
				}
				if x0 >= x1 {
					continue
				}
				for y := t.y0; y < t.y1; y++ {
					yo := y*sh - s.PadT + ky*dh
					if yo < 0 || yo >= s.HO {
						continue
					}
					xo := x0*sw - s.PadL + kx*dw
					zr := z[(y-t.y0)*p.w+x0 : (y-t.y0)*p.w+x1]
					if sw == 1 {
						row := plane[yo*s.WO+xo : yo*s.WO+xo+len(zr)]
						for i, v := range zr {
							row[i] += v
						}
						continue
					}
					row := plane[yo*s.WO+xo : yo*s.WO+xo+(len(zr)-1)*sw+1]
					for i, v := range zr {
						row[i*sw] += v
					}
				}
			}
		}
		if t.epi != nil && t.y1 == p.h {
			t.epi(plane, m)
		}
	}
}

// applyPhases pads the input once, runs each phase's convolution on it
// and interleaves its output rows into out; positions of a phase without
// taps get the bias; then the epilogue, plane by plane.
func (p *ConvTransposePlan) applyPhases(pool *Pool, x, out []float32, epilogue func(plane []float32, ch int)) {
	s := p.c.Spec
	p.pad = ctPadTask{p: p, x: x}
	pool.Do(&p.pad, pool.PartsFor(scalarWork*s.C*p.frames*p.lay.S))
	for i := range p.phases {
		pp := &p.phases[i]
		if pp.hq == 0 || pp.wq == 0 {
			continue
		}
		var src []float32
		ldc := 0
		if pp.plan != nil {
			ldc = pp.plan.L.Cols()
			src = p.phOut[:s.M*ldc]
			pp.plan.Run(pool, src, ldc, [][]float32{p.dense[pp.origin:]}, false)
		}
		p.inter = ctInterleaveTask{p: p, pp: pp, src: src, ldc: ldc, out: out}
		pool.Do(&p.inter, pool.PartsFor(scalarWork*p.frames*s.M*pp.hq*pp.wq))
	}
	if epilogue != nil {
		p.inter = ctInterleaveTask{p: p, out: out, epi: epilogue}
		pool.Do(&p.inter, pool.PartsFor(scalarWork*p.frames*s.M*s.HO*s.WO))
	}
	p.inter, p.pad = ctInterleaveTask{}, ctPadTask{}
}

// ctPadTask writes the input planes, zero-padded, into the shared buffer;
// planes split between workers.
type ctPadTask struct {
	p *ConvTransposePlan
	x []float32
}

func (t *ctPadTask) Run(part, parts int) {
	p := t.p
	l := p.lay
	hw := p.h * p.w
	q0, q1 := Split(p.c.Spec.C*p.frames, part, parts, 1)
	for q := q0; q < q1; q++ {
		ch, f := q/p.frames, q%p.frames
		PadPlane(p.dense[(ch*p.frames+f)*l.S:][:l.S], l.WP, p.padT, p.padL, t.x[(f*p.c.Spec.C+ch)*hw:][:hw], p.h, p.w)
	}
}

// ctInterleaveTask writes one phase's output rows (or the bias, when src
// is nil) into its positions of the output planes, or, with epi set, runs
// the epilogue on every plane; planes split between workers.
type ctInterleaveTask struct {
	p        *ConvTransposePlan
	pp       *ctPhasePlan
	src, out []float32
	ldc      int
	epi      func(plane []float32, ch int)
}

func (t *ctInterleaveTask) Run(part, parts int) {
	p := t.p
	s := p.c.Spec
	sh, sw := one(s.StrideH), one(s.StrideW)
	n := s.HO * s.WO
	q0, q1 := Split(p.frames*s.M, part, parts, 1)
	for q := q0; q < q1; q++ {
		plane := t.out[q*n : (q+1)*n]
		f, m := q/s.M, q%s.M
		if t.epi != nil {
			t.epi(plane, m)
			continue
		}
		pp := t.pp
		if t.src == nil {
			var b float32
			if p.c.Bias != nil {
				b = p.c.Bias[m]
			}
			for y := 0; y < pp.hq; y++ {
				row := plane[(pp.y0+y*sh)*s.WO:]
				for x := 0; x < pp.wq; x++ {
					row[pp.x0+x*sw] = b
				}
			}
			continue
		}
		// Row m of the phase's output, frame f at f·S, pixel (y, x) at
		// y·WP + x.
		src := t.src[m*t.ldc+f*p.lay.S:]
		for y := 0; y < pp.hq; y++ {
			row := plane[(pp.y0+y*sh)*s.WO+pp.x0:]
			sr := src[y*p.lay.WP : y*p.lay.WP+pp.wq]
			if sw == 2 {
				row = row[:2*(len(sr)-1)+1]
				for x, v := range sr {
					row[2*x] = v
				}
				continue
			}
			for x, v := range sr {
				row[x*sw] = v
			}
		}
	}
}
