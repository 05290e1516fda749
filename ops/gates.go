package ops

import (
	"fmt"
	"math"
)

// LSTMGates applies the ConvLSTM cell update to n positions, reading the
// four pre-activation gate rows (canonical order i, f, o, g):
//
//	c = σ(f)·c + σ(i)·tanh(g)
//	h = σ(o)·tanh(c)
//
// c is updated in place and h is written. This is the one pass over the gate
// buffer that follows each step's convolution.
func LSTMGates(gi, gf, gO, gg, c, h []float32) {
	n := len(c)
	if len(gi) < n || len(gf) < n || len(gO) < n || len(gg) < n || len(h) < n {
		panic(fmt.Sprintf("ops.LSTMGates: slices shorter than c (%d)", n))
	}
	lstmGates(gi[:n], gf[:n], gO[:n], gg[:n], c, h[:n])
}

// LSTMGatesRef is the reference cell update in float64-free, float32 maths
// with the standard library's exp/tanh.
func LSTMGatesRef(gi, gf, gO, gg, c, h []float32) {
	for j := range c {
		i := SigmoidRef(gi[j])
		f := SigmoidRef(gf[j])
		o := SigmoidRef(gO[j])
		g := TanhRef(gg[j])
		c[j] = f*c[j] + i*g
		h[j] = o * TanhRef(c[j])
	}
}

// SigmoidRef is 1/(1+e^-x) evaluated in float64 and rounded to float32.
func SigmoidRef(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}

// TanhRef is tanh evaluated in float64 and rounded to float32.
func TanhRef(x float32) float32 {
	return float32(math.Tanh(float64(x)))
}

// lstmGatesGeneric is the portable cell update.
func lstmGatesGeneric(gi, gf, gO, gg, c, h []float32) {
	LSTMGatesRef(gi, gf, gO, gg, c, h)
}
