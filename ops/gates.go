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

// lstmGatesGeneric is the portable cell update: the vector kernels' exp,
// σ and tanh (expf, sigmoidf, tanhf) in scalar Go, within the same error
// bounds (TestActivationAccuracy) and 1.4× the speed of float64 math.Exp
// and math.Tanh. Every product is rounded before it is added (float32(a*b)),
// so no architecture fuses them: the generic results are the same
// everywhere.
func lstmGatesGeneric(gi, gf, gO, gg, c, h []float32) {
	gi, gf, gO, gg, h = gi[:len(c)], gf[:len(c)], gO[:len(c)], gg[:len(c)], h[:len(c)]
	for j, cj := range c {
		cj = float32(sigmoidf(gf[j])*cj) + float32(sigmoidf(gi[j])*tanhf(gg[j]))
		c[j] = cj
		h[j] = sigmoidf(gO[j]) * tanhf(cj)
	}
}

// expf is e^x as the vector kernels compute it (ops/internal/asmgen): x
// clamped so 2^n stays normal, n = round(x·log2 e) by the 1.5·2^23 trick,
// r = x - n·ln 2 in Cephes' two parts, a degree-5 polynomial, times 2^n.
// A NaN x gives NaN.
func expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		magic = 12582912 // 1.5·2^23
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	x = max(min(x, 86), -87.3)
	t := float32(x*log2e) + magic
	n := t - magic
	x = x - float32(n*ln2hi)
	x = x - float32(n*ln2lo)
	p := float32(1.9875691500e-4)
	p = float32(p*x) + 1.3981999507e-3
	p = float32(p*x) + 8.3334519073e-3
	p = float32(p*x) + 4.1665795894e-2
	p = float32(p*x) + 1.6666665459e-1
	p = float32(p*x) + 5.0000001201e-1
	p = float32(p*float32(x*x)) + x + 1
	return p * math.Float32frombits(math.Float32bits(t)<<23+127<<23)
}

// sigmoidf is 1/(1+e^-x) by expf.
func sigmoidf(x float32) float32 { return 1 / (1 + expf(-x)) }

// tanhf is tanh by Cephes' odd polynomial for |x| < 0.625 and
// 1 - 2/(e^{2|x|}+1) with the sign of x above.
func tanhf(x float32) float32 {
	a := math.Abs(float64(x))
	if a < 0.625 {
		z := float32(x * x)
		p := float32(-5.70498872745e-3)
		p = float32(p*z) + 2.06390887954e-2
		p = float32(p*z) - 5.37397155531e-2
		p = float32(p*z) + 1.33314422036e-1
		p = float32(p*z) - 3.33332819422e-1
		return float32(float32(p*z)*x) + x
	}
	r := 1 - 2/(expf(float32(a)+float32(a))+1)
	if x < 0 {
		return -r
	}
	return r // NaN for a NaN x
}
