package ops

import "math"

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
