package ops

import (
	"fmt"
	"math"
)

// Elementwise kernels on float32 slices, vectorised in every kernel set.

// Relu sets d[i] = max(d[i], 0) in place: negative values and −0 become
// +0, NaN stays NaN. It runs the selected kernel set's vector loop (the
// fused activation of a convolution's output planes).
func Relu(d []float32) {
	if len(d) > 0 {
		kernels.relu(d)
	}
}

// reluGeneric is Relu by masking: the sign bit, spread, clears a negative
// value (−0 included) to +0; NaN keeps its bits. About twice as fast as the
// max builtin, many times faster than a branch on the sign.
func reluGeneric(d []float32) {
	for i, v := range d {
		u := math.Float32bits(v)
		r := u &^ uint32(int32(u)>>31)
		if u&0x7fffffff > 0x7f800000 {
			r = u
		}
		d[i] = math.Float32frombits(r)
	}
}

// LeakyRelu sets d[i] = alpha·d[i] where d[i] is negative (its sign bit
// set: −0 and negative NaNs too), in place; other values stay.
func LeakyRelu(d []float32, alpha float32) {
	if len(d) > 0 {
		kernels.leakyRelu(d, alpha)
	}
}

// leakyReluGeneric chooses by a mask of the sign bit: a branch on the sign
// mispredicts on real data.
func leakyReluGeneric(d []float32, alpha float32) {
	for i, v := range d {
		m := uint32(int32(math.Float32bits(v)) >> 31)
		d[i] = math.Float32frombits(math.Float32bits(v)&^m | math.Float32bits(alpha*v)&m)
	}
}

// MulAdd sets d[i] = a[i]·b[i] + c[i] for i < len(d), the product rounded
// to float32 before the add (ONNX Mul then Add, as PyTorch computes
// `w * c + x`). a, b and c must hold at least len(d) values; d may be one
// of them.
func MulAdd(d, a, b, c []float32) {
	n := len(d)
	if len(a) < n || len(b) < n || len(c) < n {
		panic("ops.MulAdd: inputs shorter than the output")
	}
	if n > 0 {
		kernels.mulAdd(d, a[:n], b[:n], c[:n])
	}
}

// mulAddGeneric is MulAdd's loop; the explicit conversion keeps Go from
// fusing the multiply and the add.
func mulAddGeneric(d, a, b, c []float32) {
	a, b, c = a[:len(d)], b[:len(d)], c[:len(d)]
	for i := range d {
		d[i] = float32(a[i]*b[i]) + c[i]
	}
}

// Blend sets d[i] = wa·a[i] + wb·b[i] for i < len(d), each product rounded
// to float32 before the add (a linear resampling step between two rows).
// a and b must hold at least len(d) values; d may be one of them.
func Blend(d, a, b []float32, wa, wb float32) {
	n := len(d)
	if len(a) < n || len(b) < n {
		panic("ops.Blend: inputs shorter than the output")
	}
	if n > 0 {
		kernels.blend(d, a[:n], b[:n], wa, wb)
	}
}

// blendGeneric is Blend's loop; the conversions keep Go from fusing a
// product into the add.
func blendGeneric(d, a, b []float32, wa, wb float32) {
	a, b = a[:len(d)], b[:len(d)]
	for i := range d {
		d[i] = float32(wa*a[i]) + float32(wb*b[i])
	}
}

// Taps2 is a table of two-tap gathers, a linear resampling along the
// innermost axis: output o is W0[o]·src[I0[o]] + W1[o]·src[I1[o]], each
// product rounded to float32 before the add. The indices are checked once,
// by NewTaps2; Apply then gathers with vector instructions.
type Taps2 struct {
	i0, i1 []int32
	w0, w1 []float32
	need   int // the smallest source length the indices allow
	// The table as windows (perm2), when every 16 outputs read within 32
	// consecutive values: the first of them for each 16 (clamped so that
	// all 32 lie below need) and each tap's offset from it.
	base, r0, r1 []int32
}

// NewTaps2 makes the table of len(i0) outputs; the four slices must have
// the same length and the indices must be non-negative.
func NewTaps2(i0, i1 []int32, w0, w1 []float32) (*Taps2, error) {
	n := len(i0)
	if len(i1) != n || len(w0) != n || len(w1) != n {
		return nil, fmt.Errorf("ops.NewTaps2: tables of %d, %d, %d and %d entries", len(i0), len(i1), len(w0), len(w1))
	}
	t := &Taps2{i0: i0, i1: i1, w0: w0, w1: w1}
	for o := range i0 {
		if i0[o] < 0 || i1[o] < 0 {
			return nil, fmt.Errorf("ops.NewTaps2: negative index at output %d", o)
		}
		t.need = max(t.need, int(i0[o])+1, int(i1[o])+1)
	}
	t.windows()
	return t, nil
}

// windows makes the perm2 form of the table's whole blocks of 16 outputs,
// if each reads within 32 consecutive values (upsampling does: a 2×
// row's 16 outputs read 9).
func (t *Taps2) windows() {
	nb := len(t.i0) / 16
	if nb == 0 || t.need < 32 {
		return
	}
	base, r0, r1 := make([]int32, nb), make([]int32, 16*nb), make([]int32, 16*nb)
	for b := range base {
		lo, hi := t.i0[16*b], t.i0[16*b]
		for o := 16 * b; o < 16*b+16; o++ {
			lo, hi = min(lo, t.i0[o], t.i1[o]), max(hi, t.i0[o], t.i1[o])
		}
		if hi-lo >= 32 {
			return
		}
		base[b] = min(lo, int32(t.need-32))
		for o := 16 * b; o < 16*b+16; o++ {
			r0[o], r1[o] = t.i0[o]-base[b], t.i1[o]-base[b]
		}
	}
	t.base, t.r0, t.r1 = base, r0, r1
}

// Apply writes the table's outputs into d (len(d) must be the table's
// length) from src, which must hold every index the table reads.
func (t *Taps2) Apply(d, src []float32) {
	if len(d) != len(t.i0) || len(src) < t.need {
		panic(fmt.Sprintf("ops.Taps2.Apply: %d outputs from %d values, the table has %d outputs reading %d", len(d), len(src), len(t.i0), t.need))
	}
	v := 0
	if t.base != nil && kernels.perm2 != nil {
		v = 16 * len(t.base)
		kernels.perm2(d[:v], src, t.base, t.r0, t.r1, t.w0, t.w1)
	}
	if len(d) > v {
		kernels.gather2(d[v:], src, t.i0[v:], t.i1[v:], t.w0[v:], t.w1[v:])
	}
}

// perm2Generic is perm2's loop: gather2Generic with i = base + r.
func perm2Generic(d, src []float32, base, r0, r1 []int32, w0, w1 []float32) {
	r0, r1, w0, w1 = r0[:len(d)], r1[:len(d)], w0[:len(d)], w1[:len(d)]
	for o := range d {
		b := int(base[o/16])
		d[o] = float32(w0[o]*src[b+int(r0[o])]) + float32(w1[o]*src[b+int(r1[o])])
	}
}

// gather2Generic is Taps2.Apply's loop.
func gather2Generic(d, src []float32, i0, i1 []int32, w0, w1 []float32) {
	i0, i1, w0, w1 = i0[:len(d)], i1[:len(d)], w0[:len(d)], w1[:len(d)]
	for o := range d {
		d[o] = float32(w0[o]*src[i0[o]]) + float32(w1[o]*src[i1[o]])
	}
}

// ScaleShift sets d[i] = (x[i] − sub)·mul + add for i < len(d), each
// operation rounded to float32 (a normalisation's per-row affine step).
// x must hold at least len(d) values; d may be x.
func ScaleShift(d, x []float32, sub, mul, add float32) {
	if len(x) < len(d) {
		panic("ops.ScaleShift: input shorter than the output")
	}
	if len(d) > 0 {
		kernels.scaleShift(d, x[:len(d)], sub, mul, add)
	}
}

func scaleShiftGeneric(d, x []float32, sub, mul, add float32) {
	x = x[:len(d)]
	for i, v := range x {
		d[i] = float32(float32(v-sub)*mul) + add
	}
}

// NormElem sets d[i] = ((x[i] − sub)·mul)·sc[i] + bs[i] for i < len(d),
// each operation rounded to float32 (LayerNormalization's per-element
// scale and bias, in the ONNX reference's order). x, sc and bs must hold at
// least len(d) values; d may be x.
func NormElem(d, x, sc, bs []float32, sub, mul float32) {
	n := len(d)
	if len(x) < n || len(sc) < n || len(bs) < n {
		panic("ops.NormElem: inputs shorter than the output")
	}
	if n > 0 {
		kernels.normElem(d, x[:n], sc[:n], bs[:n], sub, mul)
	}
}

func normElemGeneric(d, x, sc, bs []float32, sub, mul float32) {
	x, sc, bs = x[:len(d)], sc[:len(d)], bs[:len(d)]
	for i, v := range x {
		d[i] = float32(float32(float32(v-sub)*mul)*sc[i]) + bs[i]
	}
}

// Moments returns Σ(x[i]−k) and Σ(x[i]−k)² in float64 (each square
// rounded, then added), summed in 16 interleaved partial sums (value i
// into sum i%16) that are then added in order: the same bits on every
// kernel set.
func Moments(x []float32, k float64) (s, q float64) {
	var acc [32]float64
	kernels.moments(&acc, x, k)
	for j := 0; j < 16; j++ {
		s += acc[j]
		q += acc[16+j]
	}
	return s, q
}

func momentsGeneric(acc *[32]float64, x []float32, k float64) {
	for i, v := range x {
		a := float64(v) - k
		acc[i%16] += a
		acc[16+i%16] += float64(a * a)
	}
}

// Max2 sets d[i] = max(a[i], b[i]) for i < len(d) with the rule of Go's
// max builtin (maxGeneric): NaN if either is NaN, +0 of ±0 unless both are
// −0. a and b must hold at least len(d) values; d may be one of them.
func Max2(d, a, b []float32) {
	n := len(d)
	if len(a) < n || len(b) < n {
		panic("ops.Max2: inputs shorter than the output")
	}
	if n > 0 {
		kernels.max2(d, a[:n], b[:n])
	}
}

// MaxPairs sets d[o] = max(src[2o], src[2o+1]) for o < len(d), as Max2:
// a 2-wide, stride-2 max pool along a row. src must hold 2·len(d) values.
func MaxPairs(d, src []float32) {
	if len(src) < 2*len(d) {
		panic("ops.MaxPairs: input shorter than twice the output")
	}
	if len(d) > 0 {
		kernels.maxPairs(d, src[:2*len(d)])
	}
}

// maxGeneric is max(x, y) spelled out as the runtime's fmax does it, so
// that the vector kernels can give its bits: y if y is NaN or greater, x if
// x is NaN or greater, else (equal values) x AND y, which of ±0 is −0 only
// when both are.
func maxGeneric(x, y float32) float32 {
	if y != y || y > x {
		return y
	}
	if x != x || x > y {
		return x
	}
	return math.Float32frombits(math.Float32bits(x) & math.Float32bits(y))
}

func max2Generic(d, a, b []float32) {
	a, b = a[:len(d)], b[:len(d)]
	for i := range d {
		d[i] = maxGeneric(a[i], b[i])
	}
}

func maxPairsGeneric(d, src []float32) {
	src = src[:2*len(d)]
	for o := range d {
		d[o] = maxGeneric(src[2*o], src[2*o+1])
	}
}
