package ops

import "math"

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
