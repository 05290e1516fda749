package engine

import (
	"fmt"
	"math"

	"github.com/convlstm-go/convlstm-go/ops"
)

// Resizing (ONNX Resize, Upsample) is separable too: every mode
// interpolates along one axis at a time (the ONNX reference's
// interpolate_nd is exactly that recursion). Each axis gets a table, once
// per shape, of the input positions and weights of every output position;
// the kernel is then a weighted sum of whole rows (an inner axis) or of a
// few values (the last axis).

// ResizeSpec is how positions are mapped and interpolated: the attributes
// of ONNX Resize.
type ResizeSpec struct {
	Mode string // "nearest", "linear" or "cubic"
	// Coord is coordinate_transformation_mode: "half_pixel",
	// "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
	// "asymmetric", "tf_half_pixel_for_nn" or "tf_crop_and_resize".
	Coord string
	// Nearest is nearest_mode: "round_prefer_floor", "round_prefer_ceil",
	// "floor", "ceil", or "simple" (ONNX Runtime's rule for Upsample and
	// Resize-10: floor when enlarging, ceil when shrinking).
	Nearest        string
	CubicA         float64
	ExcludeOutside bool
	Extrapolation  float32 // tf_crop_and_resize: the value outside the input
}

// Resample is one axis of a resize: output position o is
// Σ_k W[o·Taps+k]·in[Idx[o·Taps+k]], or Fill when Outside[o].
type Resample struct {
	In, Out, Taps int
	Idx           []int32
	W             []float32
	Outside       []bool // nil when no position maps outside the input
	Fill          float32
	// taps2 is the two-tap table in vector-gather form (Taps 2), for
	// rows along the innermost axis; taps2Rows the same for rows2
	// consecutive rows at once (short rows: one call, not one a row).
	taps2     *ops.Taps2
	taps2Rows *ops.Taps2
	rows2     int
}

// taps2Span is about how many outputs one call of a row block's table
// makes: a 16→32 row is two AVX-512 vectors, and the calls' own cost
// (several per row) took more than the gathers (U-Net row, 64 channels of
// 16×16 → 32×32).
const taps2Span = 512

// ResampleGeom is one axis to tabulate: In and Out positions; Scale is the
// axis's scale factor (given, or Out/In when sizes were given: then Exact),
// Roi the region of interest [start, end] (tf_crop_and_resize only).
type ResampleGeom struct {
	In, Out  int
	Scale    float64
	Exact    bool // Out was given (sizes), not derived from Scale
	RoiStart float64
	RoiEnd   float64
}

// original maps output position x to the input coordinate (ONNX Resize's
// coordinate_transformation_mode; the arithmetic follows the ONNX
// reference implementation, in float64). outside reports a
// tf_crop_and_resize position outside the input.
func (s ResizeSpec) original(x int, g ResampleGeom) (xo float64, outside bool) {
	in := float64(g.In)
	// The reference's output_width is scale·input_width, not rounded.
	ow := g.Scale * in
	if g.Exact {
		ow = float64(g.Out)
	}
	fx := float64(x)
	switch s.Coord {
	case "align_corners":
		if ow == 1 {
			return 0, false
		}
		return fx * (in - 1) / (ow - 1), false
	case "asymmetric":
		return fx / g.Scale, false
	case "tf_crop_and_resize":
		// Over the output's integer length even when it came from scales
		// (ONNX Runtime, and the spec's length_resized); the onnx 1.12
		// reference used scale·input_width here too, but no suite test
		// pins it down.
		ow = float64(g.Out)
		if ow == 1 {
			xo = (g.RoiEnd - g.RoiStart) * (in - 1) / 2
		} else {
			xo = fx * (g.RoiEnd - g.RoiStart) * (in - 1) / (ow - 1)
		}
		xo += g.RoiStart * (in - 1)
		return xo, xo < 0 || xo > in-1
	case "pytorch_half_pixel":
		if ow == 1 {
			return -0.5, false
		}
		return (fx+0.5)/g.Scale - 0.5, false
	case "tf_half_pixel_for_nn":
		return (fx + 0.5) / g.Scale, false
	case "half_pixel_symmetric":
		adj := float64(g.Out) / ow
		center := in / 2
		return center*(1-adj) + (fx+0.5)/g.Scale - 0.5, false
	default: // half_pixel
		return (fx+0.5)/g.Scale - 0.5, false
	}
}

// cubicCoeffs are the weights of positions left−1 .. left+2 for a point at
// left+ratio, ratio in (0, 1] (Keys' cubic convolution with parameter a).
func cubicCoeffs(ratio, a float64) [4]float64 {
	r1, r0, q0, q1 := ratio+1, ratio, 1-ratio, 2-ratio
	return [4]float64{
		((a*r1-5*a)*r1+8*a)*r1 - 4*a,
		((a+2)*r0-(a+3))*r0*r0 + 1,
		((a+2)*q0-(a+3))*q0*q0 + 1,
		((a*q1-5*a)*q1+8*a)*q1 - 4*a,
	}
}

// NewResample tabulates one axis.
func NewResample(g ResampleGeom, s ResizeSpec) (*Resample, error) {
	if g.In < 1 || g.Out < 0 || !(g.Scale > 0) || math.IsInf(g.Scale, 0) {
		return nil, fmt.Errorf("engine: resize of %d positions into %d with scale %g", g.In, g.Out, g.Scale)
	}
	taps := map[string]int{"nearest": 1, "linear": 2, "cubic": 4}[s.Mode]
	if taps == 0 {
		return nil, fmt.Errorf("engine: resize mode %q", s.Mode)
	}
	r := &Resample{In: g.In, Out: g.Out, Taps: taps, Idx: make([]int32, g.Out*taps), W: make([]float32, g.Out*taps), Fill: s.Extrapolation}
	clamp := func(i int) int32 { return int32(min(max(i, 0), g.In-1)) }
	for o := 0; o < g.Out; o++ {
		xo, outside := s.original(o, g)
		if outside || math.IsNaN(xo) {
			if r.Outside == nil {
				r.Outside = make([]bool, g.Out)
			}
			r.Outside[o] = true
			r.Idx[o*taps] = 0 // the weights stay 0
			continue
		}
		// The reference's neighbours: left = ⌈xo⌉−1, ratio in (0, 1].
		left := math.Ceil(xo) - 1
		ratio := xo - left
		li := int(left)
		idx, w := r.Idx[o*taps:(o+1)*taps], r.W[o*taps:(o+1)*taps]
		switch s.Mode {
		case "nearest":
			pick := li + 1 // ratio 1: xo is an integer
			if ratio < 1 {
				switch s.Nearest {
				case "floor":
					pick = li
				case "ceil":
				case "round_prefer_ceil":
					if ratio < 0.5 {
						pick = li
					}
				case "simple":
					if g.Scale >= 1 {
						pick = li
					}
				default: // round_prefer_floor
					if ratio <= 0.5 {
						pick = li
					}
				}
			}
			idx[0], w[0] = clamp(pick), 1
		case "linear":
			idx[0], idx[1] = clamp(li), clamp(li+1)
			w[0], w[1] = float32(1-ratio), float32(ratio)
		case "cubic":
			c := cubicCoeffs(ratio, s.CubicA)
			sum := 0.0
			for k := range 4 {
				p := li - 1 + k
				if s.ExcludeOutside && (p < 0 || p >= g.In) {
					c[k] = 0
				}
				sum += c[k]
			}
			for k := range 4 {
				if s.ExcludeOutside {
					c[k] /= sum
				}
				idx[k], w[k] = clamp(li-1+k), float32(c[k])
			}
		}
	}
	r.merge()
	if taps == 2 {
		i0, i1 := make([]int32, g.Out), make([]int32, g.Out)
		w0, w1 := make([]float32, g.Out), make([]float32, g.Out)
		for o := range i0 {
			i0[o], i1[o], w0[o], w1[o] = r.Idx[2*o], r.Idx[2*o+1], r.W[2*o], r.W[2*o+1]
		}
		t, err := ops.NewTaps2(i0, i1, w0, w1)
		if err != nil {
			return nil, fmt.Errorf("engine: resize table: %v", err)
		}
		r.taps2 = t
		if rows := taps2Span / max(1, g.Out); rows > 1 && rows*g.In <= math.MaxInt32 {
			n := rows * g.Out
			j0, j1 := make([]int32, n), make([]int32, n)
			v0, v1 := make([]float32, n), make([]float32, n)
			for k := range rows {
				for o := range i0 {
					at := k*g.Out + o
					j0[at], j1[at] = i0[o]+int32(k*g.In), i1[o]+int32(k*g.In)
					v0[at], v1[at] = w0[o], w1[o]
				}
			}
			if r.taps2Rows, err = ops.NewTaps2(j0, j1, v0, v1); err != nil {
				return nil, fmt.Errorf("engine: resize table: %v", err)
			}
			r.rows2 = rows
		}
	}
	return r, nil
}

// merge adds up the weights of taps that read the same (clamped) position
// and moves zero weights last, so that identity rows are recognised and
// copies need one tap.
func (r *Resample) merge() {
	t := r.Taps
	for o := 0; o < r.Out; o++ {
		idx, w := r.Idx[o*t:(o+1)*t], r.W[o*t:(o+1)*t]
		for a := 0; a < t; a++ {
			for b := a + 1; b < t; b++ {
				if w[b] != 0 && idx[b] == idx[a] {
					w[a] += w[b]
					w[b] = 0
				}
			}
		}
		n := 0
		for k := 0; k < t; k++ {
			if w[k] != 0 {
				idx[n], w[n] = idx[k], w[k]
				n++
			}
		}
		for k := n; k < t; k++ {
			idx[k], w[k] = idx[max(0, n-1)], 0
		}
	}
}

// Identity reports whether the axis leaves its input unchanged.
func (r *Resample) Identity() bool {
	if r.In != r.Out || r.Outside != nil {
		return false
	}
	t := r.Taps
	for o := 0; o < r.Out; o++ {
		if r.Idx[o*t] != int32(o) || r.W[o*t] != 1 {
			return false
		}
		for k := 1; k < t; k++ {
			if r.W[o*t+k] != 0 {
				return false
			}
		}
	}
	return true
}

// ResampleAxis resizes src, viewed as (outer, r.In, inner), along its
// middle axis into dst, (outer, r.Out, inner). Outer rows are split
// between the pool's workers.
func ResampleAxis(pool *Pool, dst, src []float32, outer, inner int, r *Resample) {
	if len(src) != outer*r.In*inner || len(dst) != outer*r.Out*inner {
		panic(fmt.Sprintf("engine: ResampleAxis of %d values into %d, want (%d, %d, %d) into (%d, %d, %d)", len(src), len(dst), outer, r.In, inner, outer, r.Out, inner))
	}
	t := &resampleTask{dst: dst, src: src, outer: outer, inner: inner, r: r}
	pool.Do(t, pool.PartsFor(scalarWork*outer*r.Out*inner*r.Taps))
}

type resampleTask struct {
	dst, src     []float32
	outer, inner int
	r            *Resample
}

func (t *resampleTask) Run(part, parts int) {
	r := t.r
	in, out, inner, taps := r.In, r.Out, t.inner, r.Taps
	r0, r1 := Split(t.outer, part, parts, 1)
	if inner == 1 && r.taps2Rows != nil && r.Outside == nil {
		// Blocks of rows2 rows, one call each; the rows left one by one.
		for ; r0+r.rows2 <= r1; r0 += r.rows2 {
			r.taps2Rows.Apply(t.dst[r0*out:(r0+r.rows2)*out], t.src[r0*in:(r0+r.rows2)*in])
		}
	}
	for row := r0; row < r1; row++ {
		src := t.src[row*in*inner : (row+1)*in*inner]
		dst := t.dst[row*out*inner : (row+1)*out*inner]
		if inner == 1 {
			resampleRow(dst, src, r)
			continue
		}
		for o := 0; o < out; o++ {
			d := dst[o*inner : (o+1)*inner]
			if r.Outside != nil && r.Outside[o] {
				for i := range d {
					d[i] = r.Fill
				}
				continue
			}
			idx, w := r.Idx[o*taps:(o+1)*taps], r.W[o*taps:(o+1)*taps]
			p := int(idx[0])
			s0 := src[p*inner : (p+1)*inner]
			switch {
			case taps == 1 || w[1] == 0:
				if w[0] == 1 {
					copy(d, s0)
				} else {
					w0 := w[0]
					for i, v := range s0[:len(d)] {
						d[i] = w0 * v
					}
				}
			case taps == 2 || w[2] == 0:
				q := int(idx[1])
				s1 := src[q*inner : (q+1)*inner]
				ops.Blend(d, s0, s1, w[0], w[1])
			default:
				w0 := w[0]
				for i, v := range s0[:len(d)] {
					d[i] = w0 * v
				}
				for k := 1; k < taps && w[k] != 0; k++ {
					q := int(idx[k])
					ops.Blend(d, d, src[q*inner:(q+1)*inner], 1, w[k]) // d + w_k·s
				}
			}
		}
	}
}

// resampleRow resizes one contiguous row (inner = 1).
func resampleRow(dst, src []float32, r *Resample) {
	taps := r.Taps
	switch taps {
	case 1:
		for o := range dst {
			dst[o] = r.W[o] * src[r.Idx[o]]
		}
	case 2:
		r.taps2.Apply(dst, src)
	default:
		for o := range dst {
			i := r.Idx[o*taps : (o+1)*taps]
			w := r.W[o*taps : (o+1)*taps]
			var s float32
			for k, wk := range w {
				s += wk * src[i[k]]
			}
			dst[o] = s
		}
	}
	if r.Outside != nil {
		for o, out := range r.Outside {
			if out {
				dst[o] = r.Fill
			}
		}
	}
}

// FillOutside writes r.Fill at every position of dst, viewed as (outer,
// r.Out, inner), whose coordinate along the axis maps outside the input: the
// last step of a tf_crop_and_resize, after every axis is resized, so that
// those values are exactly the extrapolation value whatever the other axes'
// weights did to them.
func FillOutside(dst []float32, outer, inner int, r *Resample) {
	if r.Outside == nil {
		return
	}
	for row := 0; row < outer; row++ {
		for o, out := range r.Outside {
			if out {
				d := dst[(row*r.Out+o)*inner : (row*r.Out+o+1)*inner]
				for i := range d {
					d[i] = r.Fill
				}
			}
		}
	}
}
