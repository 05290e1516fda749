package engine

import (
	"fmt"
	"math"
	"sync"

	"github.com/convlstm-go/convlstm-go/ops"
)

// Pooling (ONNX MaxPool, AveragePool) is separable: a window is a box, the
// maximum over a box is the maximum over one axis of the maxima over the
// others, and the mean over a box is the mean of means, since the number of
// values counted (with or without padding) is the product of the counts
// along each axis. So a pooling of any rank runs as one pass per spatial
// axis, each pass over a (outer, In, inner) view of its input with a table
// of the taps every output position reads, computed once per shape.

// Window is one axis of a pooling: output position o reads input positions
// Start[o], Start[o]+Step, ... (Count[o] of them, all inside [0, In)).
type Window struct {
	In, Out int
	Step    int
	Start   []int32
	Count   []int32
	// Scale is 1/divisor per output position (mean pooling): 1/Count[o],
	// or one over the number of taps inside the padded extent when padding
	// counts.
	Scale []float32
	// body: outputs lo..hi-1 read all taps of their windows, from
	// Start[lo] + (o-lo)·stride.
	body struct{ lo, hi, stride, taps int }
	// flat is 2 when every output o reads positions 2o and 2o+1 of In =
	// 2·Out (a 2×2 pooling's axis), 3 when output 0 reads 0 and 1 and
	// every other o reads 2o−1..2o+1 (3×3, stride 2, padding 1): then
	// consecutive rows of a max pooling are pooled as one long row.
	flat int
}

// PoolGeom is one spatial axis of a pooling, as ONNX gives it.
type PoolGeom struct {
	In             int
	Kernel, Stride int
	Dilation       int // 0 means 1
	PadBegin       int
	PadEnd         int
	Ceil           bool // ceil_mode: the output size rounds up
}

// OutSize is the number of output positions: floor (or ceil) of
// (In + pads − ((Kernel−1)·Dilation + 1)) / Stride + 1. In ceil mode a
// window that would start in the end padding is dropped (PyTorch's rule,
// and ONNX's since opset 19). It is < 1 when the kernel does not fit.
func (g PoolGeom) OutSize() int {
	d := one(g.Dilation)
	s := one(g.Stride)
	span := g.In + g.PadBegin + g.PadEnd - ((g.Kernel-1)*d + 1)
	if span < 0 {
		return 0
	}
	out := span/s + 1
	if g.Ceil && span%s != 0 {
		out++
		if (out-1)*s >= g.In+g.PadBegin {
			out--
		}
	}
	return out
}

// NewWindow tabulates the taps of each output position of g: the kernel's
// taps that fall inside the input. countPad makes the mean's divisor the
// number of taps inside the padded extent [−PadBegin, In+PadEnd) instead
// of inside the input.
func NewWindow(g PoolGeom, countPad bool) (*Window, error) {
	d, s := one(g.Dilation), one(g.Stride)
	if g.In < 1 || g.Kernel < 1 || g.PadBegin < 0 || g.PadEnd < 0 || g.Stride < 0 || g.Dilation < 0 {
		return nil, fmt.Errorf("engine: pooling window of %d over %d input positions, pads %d/%d", g.Kernel, g.In, g.PadBegin, g.PadEnd)
	}
	out := g.OutSize()
	if out < 1 {
		return nil, fmt.Errorf("engine: a pooling window of %d (dilation %d) does not fit %d positions with pads %d/%d", g.Kernel, d, g.In, g.PadBegin, g.PadEnd)
	}
	w := &Window{In: g.In, Out: out, Step: d, Start: make([]int32, out), Count: make([]int32, out), Scale: make([]float32, out)}
	for o := 0; o < out; o++ {
		first := o*s - g.PadBegin // position of tap 0
		// Taps k with 0 ≤ first + k·d < In.
		k0, k1 := 0, g.Kernel-1
		if first < 0 {
			k0 = (-first + d - 1) / d
		}
		if last := first + k1*d; last > g.In-1 {
			k1 = (g.In - 1 - first)
			if k1 < 0 {
				k1 = -1
			} else {
				k1 /= d
			}
		}
		n := max(0, k1-k0+1)
		w.Start[o], w.Count[o] = int32(first+k0*d), int32(n)
		div := n
		if countPad {
			div = 0
			for k := 0; k < g.Kernel; k++ {
				if p := first + k*d; p >= -g.PadBegin && p < g.In+g.PadEnd {
					div++
				}
			}
		}
		if n == 0 {
			w.Start[o] = 0
		}
		w.Scale[o] = 1 / float32(div) // +Inf for an empty window: the mean of nothing is NaN
	}
	// The longest run of whole windows (the interior: they are
	// consecutive).
	b := &w.body
	b.stride, b.taps = s, g.Kernel
	for o := 0; o < out; o++ {
		if int(w.Count[o]) != g.Kernel {
			continue
		}
		if b.hi == b.lo {
			b.lo, b.hi = o, o+1
		} else if b.hi == o {
			b.hi++
		}
	}
	if d == 1 && s == 2 && g.In == 2*out {
		pairs, triples := g.Kernel == 2, g.Kernel == 3
		for o := 0; o < out; o++ {
			st, n := int(w.Start[o]), int(w.Count[o])
			pairs = pairs && st == 2*o && n == 2
			triples = triples && (o == 0 && st == 0 && n == 2 || o > 0 && st == 2*o-1 && n == 3)
		}
		if pairs {
			w.flat = 2
		} else if triples {
			w.flat = 3
		}
	}
	return w, nil
}

// emptyMax is what a max pooling window with no input tap gives (ONNX
// Runtime's value).
const emptyMax = -math.MaxFloat32

// scalarWork converts a count of scalar (not vectorised) operations of the
// memory-bound kernels here into the flops of Pool.PartsFor, whose
// threshold is set for the vectorised GEMM: a scalar operation costs more
// than a GEMM flop. 16 measured best of {2, 16} on the 2-core test VM (Zen
// 5, quiet, interleaved, 2 threads, wall ms per run): U-Net 23.7 -> 19.8,
// OpenSTL 67-73 -> 59-63, encoder-forecaster 54 -> 49-50, peephole 40-41
// -> 37-45 (with convolutions kept whole below minConvWorkPerPart).
const scalarWork = 16

// PoolAxis pools src, viewed as (outer, w.In, inner), along its middle axis
// into dst, (outer, w.Out, inner): the maximum over each window's taps when
// isMax, else their sum times w.Scale. Outer rows are split between the
// pool's workers.
func PoolAxis(pool *Pool, dst, src []float32, outer, inner int, w *Window, isMax bool) {
	if len(src) != outer*w.In*inner || len(dst) != outer*w.Out*inner {
		panic(fmt.Sprintf("engine: PoolAxis of %d values into %d, want (%d, %d, %d) into (%d, %d, %d)", len(src), len(dst), outer, w.In, inner, outer, w.Out, inner))
	}
	t := &poolAxisTask{dst: dst, src: src, outer: outer, inner: inner, w: w, max: isMax}
	taps := 0
	for _, c := range w.Count {
		taps += int(c)
	}
	pool.Do(t, pool.PartsFor(scalarWork*outer*inner*taps))
}

type poolAxisTask struct {
	dst, src     []float32
	outer, inner int
	w            *Window
	max          bool
}

// The loops below take maxima with the max builtin, or ops.Max2 and
// ops.MaxPairs (vector kernels with its rule), not a comparison and a
// branch: on real data the branch is unpredictable and costs several times
// more. (max propagates NaN, as NumPy's does.)

func (t *poolAxisTask) Run(part, parts int) {
	r0, r1 := Split(t.outer, part, parts, 1)
	w := t.w
	in, out, inner := w.In, w.Out, t.inner
	if inner == 1 && t.max && w.flat != 0 && r1 > r0 {
		poolFlat(t.dst[r0*out:r1*out], t.src[r0*in:r1*in], w)
		return
	}
	for r := r0; r < r1; r++ {
		src := t.src[r*in*inner : (r+1)*in*inner]
		dst := t.dst[r*out*inner : (r+1)*out*inner]
		if inner == 1 {
			poolRow(dst, src, w, t.max)
			continue
		}
		for o := 0; o < out; o++ {
			d := dst[o*inner : (o+1)*inner]
			n := int(w.Count[o])
			if n == 0 {
				fill := float32(emptyMax)
				if !t.max {
					fill = 0 * w.Scale[o] // 0 in the padding, NaN for no tap at all
				}
				for i := range d {
					d[i] = fill
				}
				continue
			}
			p := int(w.Start[o])
			s0 := src[p*inner : (p+1)*inner]
			s0 = s0[:len(d)]
			if n == 1 {
				copy(d, s0)
			} else {
				p += w.Step
				s1 := src[p*inner : (p+1)*inner]
				s1 = s1[:len(d)]
				if t.max {
					ops.Max2(d, s0, s1)
				} else {
					for i := range d {
						d[i] = s0[i] + s1[i]
					}
				}
			}
			for k := 2; k < n; k++ {
				p += w.Step
				s := src[p*inner : (p+1)*inner]
				s = s[:len(d)]
				if t.max {
					ops.Max2(d, d, s)
				} else {
					for i, v := range s {
						d[i] += v
					}
				}
			}
			if !t.max {
				sc := w.Scale[o]
				for i := range d {
					d[i] *= sc
				}
			}
		}
	}
}

// flatScratch holds poolFlat's blocks of pairs (a stack array passed to the
// kernels would escape: they are called through the kernel table).
var flatScratch = sync.Pool{New: func() any { b := make([]float32, 1024); return &b }}

// poolFlat max-pools consecutive rows of a w.flat window as one long row:
// rows of In = 2·Out values line up with their outputs, so a pair pass
// over them all is every row's pairs. For 3×3 windows, max(a, b, c) =
// max(max(b, c), max(a, b)) exactly (max of a set, NaN and signed zeros
// included): a pair pass from position 0 (b, c of each window), another
// from position 1 folded in, shifted by one output, and each row's first
// output, whose window is clipped, set again to its pair.
func poolFlat(dst, src []float32, w *Window) {
	ops.MaxPairs(dst, src)
	if w.flat == 2 || len(dst) < 2 {
		return
	}
	n := len(dst)
	// The pairs from position 1, in blocks: a[k] = max(src[2k+1], src[2k+2]).
	bp := flatScratch.Get().(*[]float32)
	defer flatScratch.Put(bp)
	buf := *bp
	for k0 := 0; k0 < n-1; k0 += len(buf) {
		m := min(len(buf), n-1-k0)
		a := buf[:m]
		ops.MaxPairs(a, src[2*k0+1:2*(k0+m)+1])
		ops.Max2(dst[k0+1:k0+1+m], dst[k0+1:k0+1+m], a)
	}
	for r := 0; r < n; r += w.Out {
		dst[r] = max(src[2*r], src[2*r+1])
	}
}

// poolRow pools one contiguous row (inner = 1).
func poolRow(dst, src []float32, w *Window, isMax bool) {
	if isMax && w.Step == 1 && w.body.hi > w.body.lo {
		// The outputs whose windows are whole and evenly spaced (all but
		// those in the padding) in one loop per kernel size: most of a
		// row, without the tables.
		lo, hi, s := w.body.lo, w.body.hi, w.body.stride
		d := dst[lo:hi]
		p0 := int(w.Start[lo])
		switch w.body.taps {
		case 2:
			if s == 2 {
				ops.MaxPairs(d, src[p0:p0+2*len(d)])
			} else {
				for o := range d {
					p := p0 + o*s
					d[o] = max(src[p], src[p+1])
				}
			}
		case 3:
			if s == 2 {
				src := src[p0 : p0+2*len(d)+1]
				for o := range d {
					d[o] = max(src[2*o], src[2*o+1], src[2*o+2])
				}
			} else {
				for o := range d {
					p := p0 + o*s
					d[o] = max(src[p], src[p+1], src[p+2])
				}
			}
		default:
			poolRowRange(dst, src, w, isMax, lo, hi)
		}
		poolRowRange(dst, src, w, isMax, 0, lo)
		poolRowRange(dst, src, w, isMax, hi, len(dst))
		return
	}
	poolRowRange(dst, src, w, isMax, 0, len(dst))
}

// poolRowRange pools outputs lo..hi-1 of one contiguous row from the
// window's tables.
func poolRowRange(dst, src []float32, w *Window, isMax bool, lo, hi int) {
	step := w.Step
	for o := lo; o < hi; o++ {
		n := int(w.Count[o])
		if n == 0 {
			if isMax {
				dst[o] = emptyMax
			} else {
				dst[o] = 0 * w.Scale[o]
			}
			continue
		}
		p := int(w.Start[o])
		taps := src[p : p+(n-1)*step+1]
		if isMax {
			m := taps[0]
			for k := step; k < len(taps); k += step {
				m = max(m, taps[k])
			}
			dst[o] = m
			continue
		}
		var s float32
		for k := 0; k < len(taps); k += step {
			s += taps[k]
		}
		dst[o] = s * w.Scale[o]
	}
}
