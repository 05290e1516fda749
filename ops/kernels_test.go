package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

const sentinel = float32(12345.5)

// gemmCase builds a random problem whose b is exactly as long as the
// largest offs[k]+n, so a kernel reading past column n-1 of the last row
// would go out of the slice (and, via the sentinel columns around c, any
// stray write shows).
type gemmCase struct {
	m, k, n, ldc int
	a            *PackedA
	w            []float32
	bias         []float32
	b            []float32
	offs         []int32
}

func newGemmCase(rng *rand.Rand, m, k, n int, withBias bool) gemmCase {
	w := make([]float32, m*k)
	for i := range w {
		w[i] = rng.Float32()*2 - 1
	}
	offs := make([]int32, k)
	maxOff := 0
	for i := range offs {
		offs[i] = int32(rng.IntN(3 * n))
		maxOff = max(maxOff, int(offs[i]))
	}
	offs[rng.IntN(k)] = int32(3 * n) // make the longest row the exact end
	maxOff = 3 * n
	b := make([]float32, maxOff+n)
	for i := range b {
		b[i] = rng.Float32()*2 - 1
	}
	var bias []float32
	if withBias {
		bias = make([]float32, m)
		for i := range bias {
			bias[i] = rng.Float32()*2 - 1
		}
	}
	return gemmCase{m: m, k: k, n: n, ldc: n + 5, a: PackA(w, m, k), w: w, bias: bias, b: b[:len(b):len(b)], offs: offs}
}

// want returns the float64 result and Σ|a||b| (+|start|) per element.
func (g gemmCase) want(c0 []float32, accumulate bool) (want, scale []float64) {
	want = make([]float64, g.m*g.n)
	scale = make([]float64, g.m*g.n)
	for i := 0; i < g.m; i++ {
		for j := 0; j < g.n; j++ {
			var s float64
			if accumulate {
				s = float64(c0[i*g.ldc+j])
			} else if g.bias != nil {
				s = float64(g.bias[i])
			}
			sc := math.Abs(s)
			for kk := 0; kk < g.k; kk++ {
				p := float64(g.w[i*g.k+kk]) * float64(g.b[int(g.offs[kk])+j])
				s += p
				sc += math.Abs(p)
			}
			want[i*g.n+j], scale[i*g.n+j] = s, sc
		}
	}
	return want, scale
}

// convGemmRef is the obviously right ConvGemm, the reference of the tests.
func convGemmRef(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool) {
	at := func(i, k int) float32 { return a.Data[i/a.MR*a.K*a.MR+k*a.MR+i%a.MR] }
	for i := 0; i < a.M; i++ {
		for j := 0; j < n; j++ {
			var s float32
			if accumulate {
				s = c[i*ldc+j]
			} else if bias != nil {
				s = bias[i]
			}
			for k := 0; k < a.K; k++ {
				s += at(i, k) * b[int(offs[k])+j]
			}
			c[i*ldc+j] = s
		}
	}
}

// lstmGatesRef is the obviously right cell update: each activation in
// float64 rounded to float32, the rest in float32.
func lstmGatesRef(gi, gf, gO, gg, c, h []float32) {
	for j := range c {
		i, f, o, g := sigmoidRef(gi[j]), sigmoidRef(gf[j]), sigmoidRef(gO[j]), tanhRef(gg[j])
		c[j] = f*c[j] + i*g
		h[j] = o * tanhRef(c[j])
	}
}

// sigmoidRef is 1/(1+e^-x) evaluated in float64 and rounded to float32.
func sigmoidRef(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// tanhRef is tanh evaluated in float64 and rounded to float32.
func tanhRef(x float32) float32 { return float32(math.Tanh(float64(x))) }

func TestConvGemmKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ms := []int{1, 3, 7, 8, 9, 13, 20, 36}
	ks := []int{1, 2, 9, 577}
	var ns []int
	for n := 1; n <= 47; n++ {
		ns = append(ns, n)
	}
	ns = append(ns, 48, 49, 95, 96, 97, 130)
	for _, ks_ := range cpuKernels() {
		impl := ks_
		t.Run(impl.name, func(t *testing.T) {
			for _, m := range ms {
				for _, k := range ks {
					for _, n := range ns {
						if k == 577 && n%7 != 0 && n != 1 {
							continue // keep the big-K cases few
						}
						for _, mode := range []int{0, 1, 2} {
							checkGemmCase(t, impl, newGemmCase(rng, m, k, n, mode == 1), mode == 2, rng)
						}
					}
				}
			}
		})
	}
}

func checkGemmCase(t *testing.T, impl kernelSet, g gemmCase, accumulate bool, rng *rand.Rand) {
	t.Helper()
	const guard = 37
	buf := make([]float32, guard+(g.m-1)*g.ldc+g.n+guard)
	for i := range buf {
		buf[i] = sentinel
	}
	c := buf[guard : guard+(g.m-1)*g.ldc+g.n]
	for i := 0; i < g.m; i++ {
		for j := 0; j < g.n; j++ {
			c[i*g.ldc+j] = rng.Float32()*2 - 1
		}
	}
	want, scale := g.want(c, accumulate)
	impl.convGemm(c, g.ldc, g.a, g.bias, g.b, g.offs, g.n, accumulate)
	name := fmt.Sprintf("%s M=%d K=%d n=%d acc=%v bias=%v", impl.name, g.m, g.k, g.n, accumulate, g.bias != nil)
	for q := range buf {
		p := q - guard
		i, j := p/g.ldc, p%g.ldc
		if p >= 0 && i < g.m && j < g.n {
			got, w := float64(buf[q]), want[i*g.n+j]
			if d := math.Abs(got - w); !(d <= 1e-5*scale[i*g.n+j]+1e-30) {
				t.Fatalf("%s: c[%d,%d] = %v, want %v (scale %g)", name, i, j, got, w, scale[i*g.n+j])
			}
		} else if buf[q] != sentinel {
			t.Fatalf("%s: wrote outside the output at buffer index %d (row %d col %d)", name, q, i, j)
		}
	}
}

// TestConvGemmSplit checks that a column's value does not depend on how the
// columns are split between calls (as the runtime's threads do).
func TestConvGemmSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	g := newGemmCase(rng, 20, 400, 301, true) // K > gemmBlockK: k blocks too
	for _, impl := range cpuKernels() {
		whole := make([]float32, (g.m-1)*g.ldc+g.n)
		impl.convGemm(whole, g.ldc, g.a, g.bias, g.b, g.offs, g.n, false)
		for _, cut := range []int{1, 7, 16, 47, 48, 150, 300} {
			split := make([]float32, len(whole))
			impl.convGemm(split, g.ldc, g.a, g.bias, g.b, g.offs, cut, false)
			impl.convGemm(split[cut:], g.ldc, g.a, g.bias, g.b[cut:], g.offs, g.n-cut, false)
			for i := 0; i < g.m; i++ {
				for j := 0; j < g.n; j++ {
					if whole[i*g.ldc+j] != split[i*g.ldc+j] {
						t.Fatalf("%s: cut at %d changes c[%d,%d]: %v vs %v", impl.name, cut, i, j, split[i*g.ldc+j], whole[i*g.ldc+j])
					}
				}
			}
		}
	}
}

func sigmoid64(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// gateInputs covers the interesting ranges: tiny, around the tanh
// polynomial switch at 0.625, saturation, and the exp clamps.
func gateInputs(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		switch i % 5 {
		case 0:
			v[i] = rng.Float32()*20 - 10
		case 1:
			v[i] = (rng.Float32()*2 - 1) * 1.3
		case 2:
			v[i] = float32(math.Ldexp(rng.Float64()*2-1, -rng.IntN(30)))
		case 3:
			v[i] = (rng.Float32()*2 - 1) * 200
		default:
			v[i] = rng.Float32()*4 - 2
		}
	}
	return v
}

func TestLSTMGatesKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, impl := range cpuKernels() {
		for _, n := range []int{1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 47, 100, 4099} {
			gi, gf, gO, gg := gateInputs(rng, n), gateInputs(rng, n), gateInputs(rng, n), gateInputs(rng, n)
			c0 := gateInputs(rng, n)
			const guard = 9
			hb := make([]float32, n+2*guard)
			cb := make([]float32, n+2*guard)
			for i := range hb {
				hb[i], cb[i] = sentinel, sentinel
			}
			h, c := hb[guard:guard+n], cb[guard:guard+n]
			copy(c, c0)
			impl.lstmGates(gi, gf, gO, gg, c, h)
			var maxC, maxH float64
			for j := 0; j < n; j++ {
				si, sf, so := sigmoid64(float64(gi[j])), sigmoid64(float64(gf[j])), sigmoid64(float64(gO[j]))
				wc := sf*float64(c0[j]) + si*math.Tanh(float64(gg[j]))
				// h is judged against tanh of the c the kernel produced, so
				// the c error is not counted twice.
				wh := so * math.Tanh(float64(c[j]))
				ec := math.Abs(float64(c[j])-wc) / (1 + math.Abs(wc))
				eh := math.Abs(float64(h[j]) - wh)
				maxC, maxH = max(maxC, ec), max(maxH, eh)
				if ec > 2.5e-7 || eh > 2.5e-7 {
					t.Fatalf("%s n=%d j=%d: gates i=%v f=%v o=%v g=%v c0=%v: c=%v (want %v) h=%v (want %v)",
						impl.name, n, j, gi[j], gf[j], gO[j], gg[j], c0[j], c[j], wc, h[j], wh)
				}
			}
			for q := range hb {
				if (q < guard || q >= guard+n) && (hb[q] != sentinel || cb[q] != sentinel) {
					t.Fatalf("%s n=%d: wrote outside c/h at %d", impl.name, n, q-guard)
				}
			}
			if n == 4099 {
				t.Logf("%s: max c err %.3g (rel to 1+|c|), max h err %.3g", impl.name, maxC, maxH)
			}
		}
	}
}

// TestLSTMPeepKernels checks every set's peephole cell update against the
// float64 definition (the same bounds as the plain update's) and against
// lstmPeepGeneric, over vector bodies and tails, writing cNew and h only.
func TestLSTMPeepKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, impl := range cpuKernels() {
		if impl.lstmPeep == nil {
			continue
		}
		for _, n := range []int{1, 7, 16, 17, 31, 32, 33, 47, 100, 4099} {
			gi, gf, gO, gg := gateInputs(rng, n), gateInputs(rng, n), gateInputs(rng, n), gateInputs(rng, n)
			wi, wf, wo := gateInputs(rng, n), gateInputs(rng, n), gateInputs(rng, n)
			for j := range wi {
				wi[j], wf[j], wo[j] = wi[j]/4, wf[j]/4, wo[j]/4
			}
			c := gateInputs(rng, n)
			c0 := slices.Clone(c)
			const guard = 9
			hb, cb := make([]float32, n+2*guard), make([]float32, n+2*guard)
			for i := range hb {
				hb[i], cb[i] = sentinel, sentinel
			}
			h, cn := hb[guard:guard+n], cb[guard:guard+n]
			impl.lstmPeep(gi, gf, gO, gg, wi, wf, wo, c, cn, h)
			hg, cg := make([]float32, n), make([]float32, n)
			lstmPeepGeneric(gi, gf, gO, gg, wi, wf, wo, c, cg, hg)
			for j := 0; j < n; j++ {
				cj := float64(c0[j])
				si := sigmoid64(float64(float32(wi[j]*c0[j]) + gi[j]))
				sf := sigmoid64(float64(float32(wf[j]*c0[j]) + gf[j]))
				wc := sf*cj + si*math.Tanh(float64(gg[j]))
				// o and h from the c' the kernel produced, so that the c'
				// error is not counted twice.
				so := sigmoid64(float64(float32(wo[j]*cn[j]) + gO[j]))
				wh := so * math.Tanh(float64(cn[j]))
				ec := math.Abs(float64(cn[j])-wc) / (1 + math.Abs(wc))
				eh := math.Abs(float64(h[j]) - wh)
				if ec > 2.5e-7 || eh > 2.5e-7 || math.Abs(float64(cn[j]-cg[j])) > 1e-5 || math.Abs(float64(h[j]-hg[j])) > 1e-5 {
					t.Fatalf("%s n=%d j=%d: c'=%v (want %v, generic %v) h=%v (want %v, generic %v)", impl.name, n, j, cn[j], wc, cg[j], h[j], wh, hg[j])
				}
			}
			if !slices.Equal(c, c0) {
				t.Fatalf("%s n=%d: c changed", impl.name, n)
			}
			for q := range hb {
				if (q < guard || q >= guard+n) && (hb[q] != sentinel || cb[q] != sentinel) {
					t.Fatalf("%s n=%d: wrote outside cNew/h at %d", impl.name, n, q-guard)
				}
			}
		}
	}
}

// TestActivationAccuracy sweeps sigmoid and tanh alone (through the gate
// kernel with c = 0, f = anything: h = σ(o)·tanh(σ(i)·tanh(g)) is not
// separable, so feed positions that isolate each function).
func TestActivationAccuracy(t *testing.T) {
	const n = 1 << 16
	xs := make([]float32, n)
	for j := range xs {
		// A dense sweep of [-20, 20] plus the small-magnitude region.
		if j%2 == 0 {
			xs[j] = float32(-20 + 40*float64(j)/n)
		} else {
			xs[j] = float32(math.Ldexp(float64(j)/n-0.5, -(j % 24)))
		}
	}
	big, zero, one := make([]float32, n), make([]float32, n), make([]float32, n)
	for j := range big {
		big[j] = 100 // σ(100) == 1 exactly in float32
	}
	for _, impl := range cpuKernels() {
		// σ(i)=1, σ(f)=·, c0=0, g=x: c = tanh(x) exactly as computed.
		c, h := make([]float32, n), make([]float32, n)
		impl.lstmGates(big, zero, big, xs, c, h)
		var tanhErr float64
		for j, x := range xs {
			w := math.Tanh(float64(x))
			if w != 0 {
				tanhErr = max(tanhErr, math.Abs(float64(c[j])-w)/math.Abs(w))
			}
		}
		// σ(i)=x-gate, g=large so tanh(g)=1, c0=0: c = σ(x).
		for j := range one {
			one[j] = 100
		}
		c2, h2 := make([]float32, n), make([]float32, n)
		impl.lstmGates(xs, zero, big, one, c2, h2)
		var sigErr float64
		for j, x := range xs {
			w := sigmoid64(float64(x))
			sigErr = max(sigErr, math.Abs(float64(c2[j])-w)/w)
		}
		t.Logf("%s: max rel err tanh %.3g, sigmoid %.3g", impl.name, tanhErr, sigErr)
		if tanhErr > 2.5e-7 || sigErr > 2.5e-7 {
			t.Errorf("%s: activation error too large: tanh %.3g sigmoid %.3g", impl.name, tanhErr, sigErr)
		}
	}
}

func TestLSTMGatesSpecial(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, impl := range cpuKernels() {
		gi := []float32{nan, 0, 0, 0, inf, -inf, 0, 0, 1e30, -1e30}
		gf := []float32{0, nan, 0, 0, 0, 0, inf, -inf, 0, 0}
		gO := []float32{0, 0, nan, 0, 0, 0, 0, 0, -1e30, 1e30}
		gg := []float32{1, 1, 1, nan, 1, 1, -inf, inf, 1, 1}
		c := []float32{1, 1, 1, 1, 2, 2, 2, 2, 3, 3}
		h := make([]float32, len(c))
		wc := append([]float32(nil), c...)
		wh := make([]float32, len(c))
		lstmGatesRef(gi, gf, gO, gg, wc, wh)
		impl.lstmGates(gi, gf, gO, gg, c, h)
		for j := range c {
			same := func(a, b float32) bool {
				return a == b || (a != a && b != b) || math.Abs(float64(a-b)) <= 1e-6
			}
			if !same(c[j], wc[j]) || !same(h[j], wh[j]) {
				t.Errorf("%s case %d: c=%v h=%v, want c=%v h=%v", impl.name, j, c[j], h[j], wc[j], wh[j])
			}
		}
	}
}

func TestSelfCheck(t *testing.T) {
	for _, k := range cpuKernels() {
		if !agreesWithGeneric(k) {
			t.Errorf("%s fails the start-up check", k.name)
		}
	}
	g := genericKernels
	// Each entry breaks one kernel of an otherwise generic set.
	for name, brk := range map[string]func(k *kernelSet){
		"skips the last column": func(k *kernelSet) {
			k.convGemm = func(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool) {
				g.convGemm(c, ldc, a, bias, b, offs, n-1, accumulate)
			}
		},
		"drops the last gate": func(k *kernelSet) {
			k.lstmGates = func(gi, gf, gO, gg, c, h []float32) { g.lstmGates(gi, gf, gO, gg, c[:len(c)-1], h) }
		},
		"rounds the input transform": func(k *kernelSet) {
			k.winoIn = func(dst []float32, xs int, src []float32, rs, ng int) {
				g.winoIn(dst, xs, src, rs, ng)
				dst[xs] = math.Nextafter32(dst[xs], 0)
			}
		},
		"ignores bias and old values in the output transform": func(k *kernelSet) {
			k.winoOut = func(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
				g.winoOut(out, ldc, wp, m, xs, ldm, bias, rows, mode%1, ng)
			}
		},
		"rounds the last plane of the 5×5 input transform": func(k *kernelSet) {
			k.winoIn5 = func(dst []float32, xs int, src []float32, rs, ng int) {
				g.winoIn5(dst, xs, src, rs, ng)
				dst[35*xs+8*ng-1] = math.Nextafter32(dst[35*xs+8*ng-1], 0)
			}
		},
		"adds before rounding the product": func(k *kernelSet) {
			k.mulAdd = func(d, a, b, c []float32) {
				for i := range d {
					d[i] = float32(math.FMA(float64(a[i]), float64(b[i]), float64(c[i])))
				}
			}
		},
		"fuses a product in Blend": func(k *kernelSet) {
			k.blend = func(d, a, b []float32, wa, wb float32) {
				for i := range d {
					d[i] = float32(math.FMA(float64(wa), float64(a[i]), float64(float32(wb*b[i]))))
				}
			}
		},
		"gathers the first tap twice": func(k *kernelSet) {
			k.gather2 = func(d, src []float32, i0, i1 []int32, w0, w1 []float32) { g.gather2(d, src, i0, i0, w0, w1) }
		},
		"fuses the scale and shift": func(k *kernelSet) {
			k.scaleShift = func(d, x []float32, sub, mul, add float32) {
				for i, v := range x[:len(d)] {
					d[i] = float32(math.FMA(float64(v-sub), float64(mul), float64(add)))
				}
			}
		},
		"drops the last bias of NormElem": func(k *kernelSet) {
			k.normElem = func(d, x, sc, bs []float32, sub, mul float32) {
				g.normElem(d, x, sc, bs, sub, mul)
				if n := len(d); n > 0 {
					d[n-1] -= bs[n-1]
				}
			}
		},
		"sums the moments in other lanes": func(k *kernelSet) {
			k.moments = func(acc *[32]float64, x []float32, c float64) {
				for i, v := range x {
					a := float64(v) - c
					acc[(i+1)%16] += a
					acc[16+(i+1)%16] += float64(a * a)
				}
			}
		},
		"leaves the last value of a LeakyRelu": func(k *kernelSet) {
			k.leakyRelu = func(d []float32, alpha float32) { g.leakyRelu(d[:max(0, len(d)-1)], alpha) }
		},
		"returns the first of two ±0 in Max2": func(k *kernelSet) {
			k.max2 = func(d, a, b []float32) {
				for i := range d {
					d[i] = a[i]
					if b[i] > a[i] || b[i] != b[i] {
						d[i] = b[i]
					}
				}
			}
		},
		"pools the wrong pairs": func(k *kernelSet) {
			k.maxPairs = func(d, src []float32) { g.max2(d, src[:len(d)], src[len(d):]) }
		},
		"leaves the last value of a Relu": func(k *kernelSet) {
			k.relu = func(d []float32) { g.relu(d[:max(0, len(d)-1)]) }
		},
		"ignores bias in the 5×5 output transform": func(k *kernelSet) {
			k.winoOut5 = func(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
				g.winoOut5(out, ldc, wp, m, xs, ldm, bias, rows, mode&2, ng)
			}
		},
	} {
		broken := g
		brk(&broken)
		if agreesWithGeneric(broken) {
			t.Errorf("the start-up check accepts a kernel set that %s", name)
		}
	}
}

func TestKernelSelection(t *testing.T) {
	avail := availableKernels()
	t.Logf("kernel: %s (available: %d sets)", KernelName(), len(avail))
	defer selectKernels(avail)
	for _, tc := range []struct{ env, want string }{
		{"", avail[len(avail)-1].name},
		{"generic", "generic"},
		{"no-such-kernel", avail[len(avail)-1].name},
		{"avx512", avail[len(avail)-1].name}, // falls back when the CPU lacks it
	} {
		if tc.env == "avx512" && avail[len(avail)-1].name == "avx512" {
			continue
		}
		t.Setenv("CONVLSTM_KERNEL", tc.env)
		selectKernels(avail)
		if KernelName() != tc.want {
			t.Errorf("CONVLSTM_KERNEL=%q: KernelName() = %q, want %q", tc.env, KernelName(), tc.want)
		}
	}
	for _, s := range avail {
		t.Setenv("CONVLSTM_KERNEL", s.name)
		selectKernels(avail)
		if KernelName() != s.name {
			t.Errorf("CONVLSTM_KERNEL=%q: KernelName() = %q", s.name, KernelName())
		}
	}
}

// TestKernelsDoNotAllocate: the runtime calls these once per step and
// thread, so any allocation would be garbage on every time step.
func TestKernelsDoNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	g := newGemmCase(rng, 13, 20, 101, true)
	c := make([]float32, (g.m-1)*g.ldc+g.n)
	gi, gf, gO, gg, cc, h := gateInputs(rng, 45), gateInputs(rng, 45), gateInputs(rng, 45), gateInputs(rng, 45), gateInputs(rng, 45), make([]float32, 45)
	for _, impl := range cpuKernels() {
		if n := testing.AllocsPerRun(10, func() { impl.convGemm(c, g.ldc, g.a, g.bias, g.b, g.offs, g.n, false) }); n != 0 {
			t.Errorf("%s ConvGemm: %v allocations", impl.name, n)
		}
		if n := testing.AllocsPerRun(10, func() { impl.lstmGates(gi, gf, gO, gg, cc, h) }); n != 0 {
			t.Errorf("%s LSTMGates: %v allocations", impl.name, n)
		}
	}
}

// TestVectorSetsBitIdentical: the vector kernel sets run the same FMA chain
// per column and the same activation polynomials, so they agree bit for bit
// (choosing between them is a matter of speed only, never of results).
func TestVectorSetsBitIdentical(t *testing.T) {
	ks := cpuKernels()[1:]
	if len(ks) < 2 {
		t.Skip("fewer than two vector kernel sets on this CPU")
	}
	rng := rand.New(rand.NewPCG(19, 20))
	ref := ks[0]
	for _, impl := range ks[1:] {
		for _, m := range []int{5, 16, 21, 64} {
			for _, k := range []int{1, 9, 20, 577} {
				for _, n := range []int{1, 31, 47, 48, 100, 200, 1000} {
					g := newGemmCase(rng, m, k, n, true)
					for _, acc := range []bool{false, true} {
						want := make([]float32, (m-1)*g.ldc+n)
						for i := range want {
							want[i] = rng.Float32()
						}
						got := append([]float32(nil), want...)
						ref.convGemm(want, g.ldc, g.a, g.bias, g.b, g.offs, n, acc)
						impl.convGemm(got, g.ldc, g.a, g.bias, g.b, g.offs, n, acc)
						for i := range got {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s vs %s M=%d K=%d n=%d acc=%v: c[%d] = %v, %v", impl.name, ref.name, m, k, n, acc, i, got[i], want[i])
							}
						}
					}
				}
			}
		}
		for _, n := range []int{1, 17, 64, 4099} {
			gi, gf, gO, gg, c0 := gateInputs(rng, n), gateInputs(rng, n), gateInputs(rng, n), gateInputs(rng, n), gateInputs(rng, n)
			c1, c2 := append([]float32(nil), c0...), append([]float32(nil), c0...)
			h1, h2 := make([]float32, n), make([]float32, n)
			ref.lstmGates(gi, gf, gO, gg, c1, h1)
			impl.lstmGates(gi, gf, gO, gg, c2, h2)
			for j := range c1 {
				if math.Float32bits(c1[j]) != math.Float32bits(c2[j]) || math.Float32bits(h1[j]) != math.Float32bits(h2[j]) {
					t.Fatalf("%s vs %s n=%d j=%d: c %v/%v h %v/%v", impl.name, ref.name, n, j, c2[j], c1[j], h2[j], h1[j])
				}
			}
		}
	}
}

// TestReluTwin checks every kernel set's Relu and LeakyRelu against the Go
// loops bit for bit, over every length up to 100 (tails of both widths)
// and at offsets that leave the values around the slice untouched.
func TestReluTwin(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, k := range cpuKernels() {
		for n := 0; n <= 100; n++ {
			for _, off := range []int{0, 3} {
				src := make([]float32, n+off+5)
				for i := range src {
					switch rng.IntN(10) {
					case 0:
						src[i] = float32(math.Copysign(0, -1))
					case 1:
						src[i] = float32(math.NaN())
					case 2:
						src[i] = float32(math.Inf(-1 + 2*rng.IntN(2)))
					default:
						src[i] = float32(rng.NormFloat64())
					}
				}
				for _, leaky := range []bool{false, true} {
					got, want := append([]float32(nil), src...), append([]float32(nil), src...)
					if leaky {
						k.leakyRelu(got[off:off+n], 0.01)
						leakyReluGeneric(want[off:off+n], 0.01)
					} else {
						k.relu(got[off : off+n])
						reluGeneric(want[off : off+n])
					}
					requireBits(t, fmt.Sprintf("%s leaky=%v n=%d off=%d", k.name, leaky, n, off), got, want)
				}
			}
		}
	}
}

// TestMulAddTwin checks every kernel set's MulAdd against mulAddGeneric bit
// for bit over every length up to 100, in place too (d = c).
func TestMulAddTwin(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, k := range cpuKernels() {
		for n := 0; n <= 100; n++ {
			a, b, c := make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range a {
				a[i], b[i], c[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			got, want := make([]float32, n+3), make([]float32, n+3)
			k.mulAdd(got[:n], a, b, c)
			mulAddGeneric(want[:n], a, b, c)
			inPlace := append([]float32(nil), c...)
			k.mulAdd(inPlace, a, b, inPlace)
			requireBits(t, fmt.Sprintf("%s n=%d", k.name, n), got, want)
			requireBits(t, fmt.Sprintf("%s n=%d in place", k.name, n), inPlace, want[:n])
		}
	}
}

// TestBlendTwin checks every kernel set's Blend against blendGeneric bit
// for bit over every length up to 100, in place too (d = a).
func TestBlendTwin(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, k := range cpuKernels() {
		for n := 0; n <= 100; n++ {
			a, b := make([]float32, n), make([]float32, n)
			for i := range a {
				a[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			wa, wb := float32(rng.Float64()), float32(rng.NormFloat64())
			got, want := make([]float32, n+3), make([]float32, n+3)
			k.blend(got[:n], a, b, wa, wb)
			blendGeneric(want[:n], a, b, wa, wb)
			inPlace := append([]float32(nil), a...)
			k.blend(inPlace, inPlace, b, wa, wb)
			requireBits(t, fmt.Sprintf("%s n=%d", k.name, n), got, want)
			requireBits(t, fmt.Sprintf("%s n=%d in place", k.name, n), inPlace, want[:n])
		}
	}
}

// TestTaps2Twin checks every kernel set's two-tap gather against
// gather2Generic bit for bit over every length up to 100 (vector bodies
// and the Go tail), and NewTaps2's and Apply's checks.
func TestTaps2Twin(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	defer func(k kernelSet) { kernels = k }(kernels)
	for _, k := range cpuKernels() {
		kernels = k
		for n := 0; n <= 100; n++ {
			src := make([]float32, 2*n+7)
			for i := range src {
				src[i] = float32(rng.NormFloat64())
			}
			i0, i1 := make([]int32, n), make([]int32, n)
			w0, w1 := make([]float32, n), make([]float32, n)
			for o := range i0 {
				i0[o], i1[o] = int32(rng.IntN(len(src))), int32(rng.IntN(len(src)))
				w0[o], w1[o] = float32(rng.Float64()), float32(rng.NormFloat64())
			}
			tab, err := NewTaps2(i0, i1, w0, w1)
			if err != nil {
				t.Fatal(err)
			}
			got, want := make([]float32, n), make([]float32, n)
			tab.Apply(got, src)
			gather2Generic(want, src, i0, i1, w0, w1)
			requireBits(t, fmt.Sprintf("%s n=%d", k.name, n), got, want)
		}
	}
	// Windowed tables (perm2): upsampling rows, whose every 16 outputs
	// read within 32 values, some with a last block clamped against the
	// source's end, and one whose block reads too wide (gathered).
	for _, k := range cpuKernels() {
		kernels = k
		for _, tc := range []struct {
			in, out  int
			windowed bool
		}{{16, 32, false}, {32, 64, true}, {9, 17, false}, {40, 48, true}, {33, 66, true}, {64, 16, false}} {
			i0, i1 := make([]int32, tc.out), make([]int32, tc.out)
			w0, w1 := make([]float32, tc.out), make([]float32, tc.out)
			for o := range i0 {
				x := (float64(o)+0.5)*float64(tc.in)/float64(tc.out) - 0.5
				l := int32(math.Floor(x))
				i0[o], i1[o] = max(0, l), min(int32(tc.in-1), l+1)
				w0[o], w1[o] = float32(1-(x-math.Floor(x))), float32(x-math.Floor(x))
			}
			tab, err := NewTaps2(i0, i1, w0, w1)
			if err != nil {
				t.Fatal(err)
			}
			if windowed := tab.base != nil; windowed != tc.windowed {
				t.Fatalf("%d -> %d: windowed %v, want %v", tc.in, tc.out, windowed, tc.windowed)
			}
			src := make([]float32, tc.in)
			for i := range src {
				src[i] = float32(rng.NormFloat64())
			}
			got, want := make([]float32, tc.out), make([]float32, tc.out)
			tab.Apply(got, src)
			gather2Generic(want, src, i0, i1, w0, w1)
			requireBits(t, fmt.Sprintf("%s windowed %d -> %d", k.name, tc.in, tc.out), got, want)
		}
	}
	if _, err := NewTaps2([]int32{0, -1}, []int32{0, 0}, []float32{1, 1}, []float32{0, 0}); err == nil {
		t.Error("NewTaps2 accepts a negative index")
	}
	if _, err := NewTaps2([]int32{0}, []int32{0, 0}, []float32{1}, []float32{0}); err == nil {
		t.Error("NewTaps2 accepts tables of different lengths")
	}
	tab, _ := NewTaps2([]int32{0, 9}, []int32{1, 2}, []float32{1, 1}, []float32{0, 0})
	defer func() {
		if recover() == nil {
			t.Error("Apply reads past a 9-value source")
		}
	}()
	tab.Apply(make([]float32, 2), make([]float32, 9))
}

// TestNormKernelsTwin checks every kernel set's ScaleShift, NormElem and
// Moments against the Go loops bit for bit, over every length up to 100.
func TestNormKernelsTwin(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	for _, k := range cpuKernels() {
		for n := 0; n <= 100; n++ {
			x, sc, bs := make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range x {
				x[i], sc[i], bs[i] = float32(3+rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			sub, mul, add := float32(rng.NormFloat64()), float32(rng.Float64()), float32(rng.NormFloat64())
			check := func(what string, got, want []float32) {
				t.Helper()
				requireBits(t, fmt.Sprintf("%s %s n=%d", k.name, what, n), got, want)
			}
			got, want := make([]float32, n), make([]float32, n)
			k.scaleShift(got, x, sub, mul, add)
			scaleShiftGeneric(want, x, sub, mul, add)
			check("scaleShift", got, want)
			k.normElem(got, x, sc, bs, sub, mul)
			normElemGeneric(want, x, sc, bs, sub, mul)
			check("normElem", got, want)
			var acc [2][32]float64
			k.moments(&acc[0], x, 2.5)
			momentsGeneric(&acc[1], x, 2.5)
			if acc[0] != acc[1] {
				t.Fatalf("%s moments n=%d: %v, generic %v", k.name, n, acc[0], acc[1])
			}
		}
	}
}

// TestMaxTwin checks every kernel set's Max2 and MaxPairs against the Go
// loops bit for bit, with NaN, ±0 and ±Inf among the values, over every
// length up to 100, and maxGeneric against the max builtin.
func TestMaxTwin(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	val := func() float32 {
		switch rng.IntN(8) {
		case 0:
			return float32(math.NaN())
		case 1:
			return float32(math.Copysign(0, -1))
		case 2:
			return 0
		case 3:
			return float32(math.Inf(1 - 2*rng.IntN(2)))
		}
		return float32(rng.NormFloat64())
	}
	for range 1000 {
		x, y := val(), val()
		got, want := maxGeneric(x, y), max(x, y)
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("maxGeneric(%g, %g) = %g, max %g", x, y, got, want)
		}
	}
	for _, k := range cpuKernels() {
		for n := 0; n <= 100; n++ {
			src, b := make([]float32, 2*n), make([]float32, n)
			for i := range src {
				src[i] = val()
			}
			for i := range b {
				b[i] = val()
			}
			got, want := make([]float32, n), make([]float32, n)
			for _, pairs := range []bool{false, true} {
				if pairs {
					k.maxPairs(got, src)
					maxPairsGeneric(want, src)
				} else {
					k.max2(got, src[:n], b)
					max2Generic(want, src[:n], b)
				}
				requireBits(t, fmt.Sprintf("%s pairs=%v n=%d", k.name, pairs, n), got, want)
			}
		}
	}
}

// requireBits fails the test at the first value of got whose bits differ
// from want's (NaNs included), naming it with what.
func requireBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %g (%#x), Go twin %g (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}
