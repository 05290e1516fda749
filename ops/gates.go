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
	kernels.lstmGates(gi[:n], gf[:n], gO[:n], gg[:n], c, h[:n])
}

// Sigmoid is 1/(1+e^-x) evaluated in float64 and rounded to float32.
func Sigmoid(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}

// Tanh is tanh evaluated in float64 and rounded to float32.
func Tanh(x float32) float32 {
	return float32(math.Tanh(float64(x)))
}

// lstmGatesGeneric is the portable cell update, each activation evaluated in
// float64 and rounded to float32.
func lstmGatesGeneric(gi, gf, gO, gg, c, h []float32) {
	gi, gf, gO, gg, h = gi[:len(c)], gf[:len(c)], gO[:len(c)], gg[:len(c)], h[:len(c)]
	for j, cj := range c {
		cj = Sigmoid(gf[j])*cj + Sigmoid(gi[j])*Tanh(gg[j])
		c[j] = cj
		h[j] = Sigmoid(gO[j]) * Tanh(cj)
	}
}
