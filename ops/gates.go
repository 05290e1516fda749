package ops

import (
	"fmt"
	"math"

	"github.com/convlstm-go/convlstm-go/ops/internal/gatepoly"
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

// LSTMPeephole is LSTMGates for a peephole cell: i = σ(gi + wi⊙c),
// f = σ(gf + wf⊙c), c' = f⊙c + i⊙tanh(gg), o = σ(gO + wo⊙c'),
// h = o⊙tanh(c'), each peephole product rounded to float32 before it is
// added (as Mul then Add give it). c' goes to cNew (c is left as it is).
// It reports false, doing nothing, when the kernel set leaves it out (the
// NEON set: there its Go loop would be slower than LSTMGates twice).
func LSTMPeephole(gi, gf, gO, gg, wi, wf, wo, c, cNew, h []float32) bool {
	n := len(c)
	if len(gi) < n || len(gf) < n || len(gO) < n || len(gg) < n || len(wi) < n || len(wf) < n || len(wo) < n || len(cNew) < n || len(h) < n {
		panic(fmt.Sprintf("ops.LSTMPeephole: slices shorter than c (%d)", n))
	}
	if kernels.lstmPeep == nil {
		return false
	}
	kernels.lstmPeep(gi[:n], gf[:n], gO[:n], gg[:n], wi[:n], wf[:n], wo[:n], c, cNew[:n], h[:n])
	return true
}

// lstmPeepGeneric is LSTMPeephole's portable loop (lstmGatesGeneric's
// activations and roundings).
func lstmPeepGeneric(gi, gf, gO, gg, wi, wf, wo, c, cNew, h []float32) {
	gi, gf, gO, gg, h = gi[:len(c)], gf[:len(c)], gO[:len(c)], gg[:len(c)], h[:len(c)]
	wi, wf, wo, cNew = wi[:len(c)], wf[:len(c)], wo[:len(c)], cNew[:len(c)]
	for j, cj := range c {
		i, f := float32(wi[j]*cj)+gi[j], float32(wf[j]*cj)+gf[j]
		cj = float32(sigmoidf(f)*cj) + float32(sigmoidf(i)*tanhf(gg[j]))
		cNew[j] = cj
		h[j] = sigmoidf(float32(wo[j]*cj)+gO[j]) * tanhf(cj)
	}
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

// expf is e^x as the vector kernels compute it (constants and steps in
// ops/internal/gatepoly). A NaN x gives NaN.
func expf(x float32) float32 {
	x = max(min(x, gatepoly.ExpHi), gatepoly.ExpLo)
	t := float32(x*gatepoly.Log2e) + gatepoly.Magic
	n := t - gatepoly.Magic
	x = x - float32(n*gatepoly.Ln2Hi)
	x = x - float32(n*gatepoly.Ln2Lo)
	p := float32(gatepoly.P0)
	p = float32(p*x) + gatepoly.P1
	p = float32(p*x) + gatepoly.P2
	p = float32(p*x) + gatepoly.P3
	p = float32(p*x) + gatepoly.P4
	p = float32(p*x) + gatepoly.P5
	p = float32(p*float32(x*x)) + x + 1
	return p * math.Float32frombits(math.Float32bits(t)<<23+127<<23)
}

// sigmoidf is 1/(1+e^-x) by expf.
func sigmoidf(x float32) float32 { return 1 / (1 + expf(-x)) }

// tanhf is tanh by the polynomial for |x| < gatepoly.TanhSmall and
// 1 - 2/(e^{2|x|}+1) with the sign of x above.
func tanhf(x float32) float32 {
	a := math.Abs(float64(x))
	if a < gatepoly.TanhSmall {
		z := float32(x * x)
		p := float32(gatepoly.T0)
		p = float32(p*z) + gatepoly.T1
		p = float32(p*z) + gatepoly.T2
		p = float32(p*z) + gatepoly.T3
		p = float32(p*z) + gatepoly.T4
		return float32(float32(p*z)*x) + x
	}
	r := 1 - 2/(expf(float32(a)+float32(a))+1)
	if x < 0 {
		return -r
	}
	return r // NaN for a NaN x
}
