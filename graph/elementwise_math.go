package graph

import "math"

// Transcendental functions for the float32 elementwise kernels: exp, expm1,
// erf and tanh in float64 with short polynomials, accurate far beyond
// float32 so that a result rounded to float32 is within 1 ulp of the
// standard library's (TestFastMath checks a dense sample of all float32
// values), and two to four times faster than calling the math package per
// element: Erf is on the hot path of every GELU. The kernels call them on
// blocks of float64 values (unary.viaF64).

const (
	log2e   = 1.4426950408889634
	ln2Hi   = 6.93147180369123816490e-01 // low bits zero: k·ln2Hi is exact
	ln2Lo   = 1.90821492927058770002e-10
	round52 = 0x1.8p52 // adding it rounds a float64 below 2^51 to an integer
)

// exp2Tab[j] is 2^(j/16).
var exp2Tab = func() (t [16]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 16)
	}
	return t
}()

// exp64 is e^x with a relative error below 2e-13 (inputs are clamped to
// [-708, 709], where float32 results have long since under- or overflowed;
// NaN stays NaN): x = (16m + j)·ln2/16 + r with |r| <= ln2/32, e^x =
// 2^m · 2^(j/16) · e^r, e^r by a degree-5 Taylor polynomial in Estrin's
// form (short dependency chains: the loops calling it overlap elements).
func exp64(x float64) float64 {
	x = min(max(x, -708), 709)
	k := (x*(16*log2e) + round52) - round52
	r := (x - k*(ln2Hi/16)) - k*(ln2Lo/16)
	r2 := r * r
	p := (1 + r) + r2*((0.5+r*(1.0/6))+r2*(1.0/24+r*(1.0/120)))
	ki := int64(k)
	return p * exp2Tab[ki&15] * math.Float64frombits(uint64((ki>>4)+1023)<<52)
}

// expm1_64 is e^x - 1 without the cancellation near 0 (relative error below
// 3e-10).
func expm1_64(x float64) float64 {
	if math.Abs(x) < 1e-3 {
		return x * (1 + x*(1.0/2+x*(1.0/6+x*(1.0/24))))
	}
	return exp64(x) - 1
}

// tanh64 is tanh(x): (1 - e^-2|x|)/(1 + e^-2|x|), by its Taylor series
// near 0 where that cancels.
func tanh64(x float64) float64 {
	a := math.Abs(x)
	if a < 1e-3 {
		s := x * x
		return x * (1 + s*(-1.0/3+s*(2.0/15)))
	}
	e := exp64(-2 * a) // NaN stays NaN; beyond 9.1, 1 - e rounds to 1 in float32
	return math.Copysign((1-e)/(1+e), x)
}

// erf64 is erf(x) to about 1e-9 (float32 results within 1 ulp): below 1,
// x·P(x²) (a degree-8 fit of erf(x)/x, relative error 1e-12); from 1 to 4,
// 1 - e^(-x²)·Q(1/x) (a degree-10 fit of erfc(x)·e^(x²), relative error of
// erfc 3e-9, so below 5e-10 absolute); beyond 4, ±1 (erf rounds to 1 in
// float32 from 3.92). The fits are least squares on Chebyshev nodes
// against math.erf/math.erfc (NumPy's polynomial.Polynomial.fit, float64).
func erf64(x float64) float64 {
	a := math.Abs(x)
	switch {
	case a >= 4:
		return math.Copysign(1, x)
	case a >= 1:
		u := 1 / a
		q := 3.437906292402815e-05 + u*(0.5635483713134568+u*(0.004532998083878748+u*(-0.29295462419897184+u*(-0.04387582060936829+u*(0.8440641853750486+u*(-1.4421789166813226+u*(1.3430750107904537+u*(-0.7593178980703739+u*(0.24582363470319946+u*-0.035167744324674954)))))))))
		return math.Copysign(1-q*exp64(-a*a), x)
	}
	s := x * x // NaN lands here and stays NaN
	return x * (1.128379167094772 + s*(-0.37612638889883776+s*(0.11283791313837187+s*(-0.026866133655188387+s*(0.005223785134369414+s*(-0.0008542673509431097+s*(0.00011956984261708207+s*(-1.3911947963489552e-05+s*1.0595933932918702e-06))))))))
}

// softplus64 is log(1 + e^x) without overflow for large x.
func softplus64(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(exp64(-x))
	}
	return math.Log1p(exp64(x)) // NaN too
}
