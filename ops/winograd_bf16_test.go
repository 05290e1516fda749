package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// withBF16 runs f with s as the native bfloat16 set (nil: none).
func withBF16(s *bf16Set, f func()) {
	bf16Select()
	defer func(k *bf16Set) { bf16Kernels = k }(bf16Kernels)
	bf16Kernels = s
	f()
}

// winoBF16Out runs wg on p into a fresh output (sentinels outside the
// image's columns, init values inside for accumulate) split in parts.
func winoBF16Out(p *winoCase, wg *Winograd, bias []float32, acc bool, parts int) (out []float32, valid []bool, ldc int) {
	ldc = p.width() + 3
	out = make([]float32, p.m*ldc+5)
	valid = make([]bool, len(out))
	for i := range out {
		out[i] = winoSentinel
	}
	for i := 0; i < p.m; i++ {
		for f := 0; f < p.frames; f++ {
			for y := 0; y < p.h; y++ {
				for x := 0; x < p.wd; x++ {
					j := i*ldc + p.col(f, y, x)
					valid[j] = true
					if acc {
						out[j] = float32(j%7) - 3
					}
				}
			}
		}
	}
	p.run(wg, out, ldc, bias, acc, parts)
	return out, valid, ldc
}

// TestWinograd3x3BF16Twin: the whole bfloat16 Winograd convolution with the
// native kernels gives the Go twins' bits, for every part split, and writes
// only the output's pixels.
func TestWinograd3x3BF16Twin(t *testing.T) {
	native := nativeBF16(t)
	rng := rand.New(rand.NewPCG(41, 42))
	for _, sz := range [][5]int{{13, 1, 1, 5, 7}, {40, 7, 2, 17, 35}, {24, 33, 1, 9, 64}, {64, 65, 1, 16, 16}, {9, 16, 3, 3, 3}} {
		m, c, frames, h, wd := sz[0], sz[1], sz[2], sz[3], sz[4]
		p := newWinoCase(rng, m, c, frames, h, wd, 1, 2, 3, 1/math.Sqrt(9*float64(c)), func() float32 { return float32(rng.NormFloat64()) })
		var wg *Winograd
		withBF16(&native, func() { wg = NewWinograd3x3BF16(p.w, m, c, true) })
		if !wg.BF16() {
			t.Fatal("NewWinograd3x3BF16 did not pack for the native kernels")
		}
		for mode := 0; mode < 3; mode++ {
			var bs []float32
			if mode == 1 {
				bs = p.bias
			}
			var want []float32
			withBF16(&genericBF16, func() { want, _, _ = winoBF16Out(p, wg, bs, mode == 2, 1) })
			for parts := 1; parts <= 3; parts++ {
				var got []float32
				var valid []bool
				withBF16(&native, func() { got, valid, _ = winoBF16Out(p, wg, bs, mode == 2, parts) })
				for j := range got {
					switch {
					case !valid[j] && got[j] != winoSentinel:
						t.Fatalf("%v mode %d parts %d: wrote out[%d] outside the output", sz, mode, parts, j)
					case math.Float32bits(got[j]) != math.Float32bits(want[j]):
						t.Fatalf("%v mode %d parts %d: out[%d] = %g, the Go twins give %g", sz, mode, parts, j, got[j], want[j])
					}
				}
			}
		}
	}
}

// TestWinograd3x3BF16Error bounds the error of both bf16 paths against the
// float64 direct convolution, relative to the output's scale Σ|w·x|: the
// native path rounds U and V to bfloat16 (≤ 2^-8 each), the converted path
// only U. Measured here at the runtime's scales: about 1-2e-3 of Σ|w·x|
// (native) and half that (converted); a lost or doubled channel pair would
// be ~2/c of it.
func TestWinograd3x3BF16Error(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	type path struct {
		name string
		set  *bf16Set
		bar  float64
	}
	paths := []path{{"converted", nil, 4e-3}}
	if BF16Native() {
		paths = append(paths, path{"native", bf16Kernels, 8e-3})
	}
	for _, c := range []int{16, 33, 64} {
		p := newWinoCase(rng, 32, c, 1, 12, 20, 0, 0, 0, 1/math.Sqrt(9*float64(c)), func() float32 { return float32(2*rng.Float64() - 1) })
		ref := p.direct64(true)
		n := p.width()
		scale := make([]float64, len(ref))
		for i := 0; i < p.m; i++ {
			for j := 0; j < n; j++ {
				f, y, x := j/p.s, j%p.s/p.wp, j%p.wp
				if y >= p.h || x >= p.wd {
					continue
				}
				s := math.Abs(float64(p.bias[i]))
				for ch := 0; ch < p.c; ch++ {
					for ky := 0; ky < 3; ky++ {
						for kx := 0; kx < 3; kx++ {
							s += math.Abs(float64(p.w[((i*p.c+ch)*3+ky)*3+kx]) * float64(p.in[ch*p.cs+p.col(f, y+ky, x+kx)]))
						}
					}
				}
				scale[i*n+j] = s
			}
		}
		for _, pa := range paths {
			var out []float32
			var valid []bool
			var ldc int
			withBF16(pa.set, func() {
				wg := NewWinograd3x3BF16(p.w, p.m, p.c, true)
				if wg.BF16() != (pa.set != nil) {
					t.Fatalf("%s: BF16() = %v", pa.name, wg.BF16())
				}
				out, valid, ldc = winoBF16Out(p, wg, p.bias, false, 2)
			})
			worst, worstAbs := 0.0, 0.0
			for j, v := range out {
				if !valid[j] {
					continue
				}
				k := j/ldc*n + j%ldc
				e := math.Abs(float64(v) - ref[k])
				worst, worstAbs = max(worst, e/scale[k]), max(worstAbs, e)
			}
			t.Logf("c=%d %s: max error %.2e (%.2e of Σ|w·x|)", c, pa.name, worstAbs, worst)
			if worst > pa.bar {
				t.Errorf("c=%d %s: error %.2e of Σ|w·x| > %.0e", c, pa.name, worst, pa.bar)
			}
		}
	}
}

// TestWinograd3x3BF16Converted: without native kernels the option's U is
// the float32 U rounded to bfloat16, run by the float32 GEMM.
func TestWinograd3x3BF16Converted(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	w := make([]float32, 21*10*9)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	var wb *Winograd
	withBF16(nil, func() { wb = NewWinograd3x3BF16(w, 21, 10, true) })
	wf := NewWinograd3x3(w, 21, 10)
	if wb.BF16() {
		t.Fatal("packed for native kernels with none")
	}
	for x := range wf.u {
		want := make([]float32, len(wf.u[x].Data))
		RoundBF16(want, wf.u[x].Data)
		for i, v := range wb.u[x].Data {
			if v != want[i] {
				t.Fatalf("U[%d] value %d is %v, want %v rounded to %v", x, i, v, wf.u[x].Data[i], want[i])
			}
		}
	}
}

func BenchmarkWinograd3x3BF16(b *testing.B) {
	for _, sz := range []struct{ m, c, h, w int }{{256, 64, 64, 64}, {256, 65, 64, 64}, {128, 33, 128, 128}} {
		rng := rand.New(rand.NewPCG(47, 48))
		p := newWinoCase(rng, sz.m, sz.c, 1, sz.h, sz.w, 0, 0, 0, 0.1, func() float32 { return float32(rng.NormFloat64()) })
		out := make([]float32, p.m*p.width())
		flops := 2 * float64(sz.m*sz.c*9*sz.h*sz.w)
		for _, bf := range []bool{false, true} {
			wg := NewWinograd3x3(p.w, p.m, p.c)
			name := "float32"
			if bf {
				wg = NewWinograd3x3BF16(p.w, p.m, p.c, true)
				name = "bf16-converted"
				if wg.BF16() {
					name = "bf16-" + BF16KernelName()
				}
			}
			ws := make([]float32, wg.Workspace())
			b.Run(fmt.Sprintf("%s/M=%d,C=%d,%dx%d", name, sz.m, sz.c, sz.h, sz.w), func(b *testing.B) {
				ct := startCPUTimer(b)
				for b.Loop() {
					wg.Conv(out, p.width(), p.bias, p.in, p.cs, 1, p.h, p.wd, p.wp, p.s, false, ws, 0, 1)
				}
				ct.stop(flops/1e9, "GFLOP/s-cpu")
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
