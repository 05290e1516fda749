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
