// Package gatepoly holds the constants of the gate kernels' exp, σ and tanh:
// the one source for the generated AVX2, AVX-512 and NEON kernels
// (ops/internal/asmgen, neongen) and the Go twin (ops/gates.go), which
// therefore evaluate the same polynomials.
package gatepoly

import "math"

// e^x: x is clamped to [ExpLo, ExpHi] (e^86 keeps 1/(1+e^x) ≥ 2^-125, and
// e^-87.3 keeps 2^n normal: subnormal results would cost ~100 cycles each),
// n = round(x·Log2e) by adding Magic (1.5·2^23, which leaves the integer in
// the low mantissa bits), r = x - n·Ln2Hi - n·Ln2Lo (Cephes' split of ln 2:
// Ln2Hi has few mantissa bits, so n·Ln2Hi is exact and the first subtraction
// cancels exactly), then e^r = 1 + r + r²·P(r) with P of degree 5 (P0 the
// highest coefficient), times 2^n.
const (
	ExpHi = 86
	ExpLo = -87.3
	Log2e = 1.44269504088896341
	Magic = 12582912
	Ln2Hi = 0.693359375
	Ln2Lo = -2.12194440e-4
	P0    = 1.9875691500e-4
	P1    = 1.3981999507e-3
	P2    = 8.3334519073e-3
	P3    = 4.1665795894e-2
	P4    = 1.6666665459e-1
	P5    = 5.0000001201e-1
)

// tanh: for |x| < TanhSmall Cephes' odd polynomial x + x·z·T(z), z = x²,
// T of degree 4 (T0 the highest coefficient); above, 1 - 2/(e^{2|x|}+1)
// with the sign of x.
const (
	TanhSmall = 0.625
	T0        = -5.70498872745e-3
	T1        = 2.06390887954e-2
	T2        = -5.37397155531e-2
	T3        = 1.33314422036e-1
	T4        = -3.33332819422e-1
)

// Table lists the constants the vector kernels load, as float32 bit
// patterns, with the integer and mask constants they use beside them.
var Table = []struct {
	Name string
	Bits uint32
}{
	{"one", f(1)},
	{"two", f(2)},
	{"expHi", f(ExpHi)},
	{"expLo", f(ExpLo)},
	{"log2e", f(Log2e)},
	{"magic", f(Magic)},
	{"ln2hi", f(Ln2Hi)},
	{"ln2lo", f(Ln2Lo)},
	{"p0", f(P0)},
	{"p1", f(P1)},
	{"p2", f(P2)},
	{"p3", f(P3)},
	{"p4", f(P4)},
	{"p5", f(P5)},
	{"bias127", 127 << 23}, // added to n<<23: the bits of 2^n
	{"sign", 0x80000000},
	{"abs", 0x7fffffff},
	{"tanhSmall", f(TanhSmall)},
	{"t0", f(T0)},
	{"t1", f(T1)},
	{"t2", f(T2)},
	{"t3", f(T3)},
	{"t4", f(T4)},
}

func f(v float32) uint32 { return math.Float32bits(v) }
