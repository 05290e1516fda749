package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// reportFlops stops ct and reports flops (per iteration) per wall second
// and per CPU second, and as "%peak" the rate against this CPU's measured
// peak at the given register width (Peak): the CPU-time rate where there is
// one (the machine may be shared), else the wall-clock rate.
func reportFlops(b *testing.B, ct cpuTimer, flops float64, bits int) {
	cpu := ct.stop(flops/1e9, "GFLOP/s-cpu")
	wall := flops * float64(b.N) / b.Elapsed().Seconds() / 1e9
	b.ReportMetric(wall, "GFLOP/s")
	r := cpu
	if r == 0 {
		r = wall
	}
	if pk := peakAt(bits); pk > 0 {
		b.ReportMetric(100*r/pk, "%peak")
	}
}

// peakAt is the measured peak at a register width, 0 if unknown.
func peakAt(bits int) float64 {
	for _, w := range Peak().Widths {
		if w.Bits == bits {
			return w.GFLOPS
		}
	}
	return 0
}

// convProblem lays out a 3×3, cin-channel conv on an h×w image padded by
// one pixel: B is channel-major with (w+2)-wide rows and enough trailing
// rows that every tap's row of n = (h+2)·(w+2) columns stays in bounds.
func convProblem(m, cin, h, w int) (*PackedA, []float32, []float32, []int32, int) {
	rng := rand.New(rand.NewPCG(7, 8))
	pw := w + 2
	n := (h + 2) * pw
	plane := n + 2*pw + 2
	k := cin * 9
	offs := make([]int32, 0, k)
	for ch := 0; ch < cin; ch++ {
		for ky := 0; ky < 3; ky++ {
			for kx := 0; kx < 3; kx++ {
				offs = append(offs, int32(ch*plane+ky*pw+kx))
			}
		}
	}
	b := make([]float32, cin*plane)
	for i := range b {
		b[i] = rng.Float32()
	}
	wt := make([]float32, m*k)
	for i := range wt {
		wt[i] = rng.Float32() - 0.5
	}
	bias := make([]float32, m)
	return PackA(wt, m, k), bias, b, offs, n
}

func BenchmarkConvGemm(b *testing.B) {
	for _, sz := range []struct{ m, cin, h, w int }{
		{256, 64, 64, 64}, // hidden 64, recurrent 3×3 conv: K=576, n=4356
		{256, 1, 64, 64},  // the single-channel input conv: K=9
	} {
		a, bias, in, offs, n := convProblem(sz.m, sz.cin, sz.h, sz.w)
		c := make([]float32, sz.m*n)
		flops := 2 * float64(sz.m) * float64(a.K) * float64(n)
		for _, impl := range cpuKernels() {
			b.Run(fmt.Sprintf("%s/M=%d,K=%d,n=%d", impl.name, sz.m, a.K, n), func(b *testing.B) {
				ct := startCPUTimer(b)
				for b.Loop() {
					impl.convGemm(c, n, a, bias, in, offs, n, false)
				}
				reportFlops(b, ct, flops, impl.bits)
			})
		}
	}
}

// BenchmarkConvGemmChunked calls ConvGemm the way graph/ does: the columns
// in runs of 512 per call.
func BenchmarkConvGemmChunked(b *testing.B) {
	a, bias, in, offs, n := convProblem(256, 64, 64, 64)
	c := make([]float32, 256*n)
	flops := 2 * float64(256) * float64(a.K) * float64(n)
	for _, impl := range cpuKernels()[1:] {
		b.Run(impl.name, func(b *testing.B) {
			ct := startCPUTimer(b)
			for b.Loop() {
				for j := 0; j < n; j += 512 {
					impl.convGemm(c[j:], n, a, bias, in[j:], offs, min(512, n-j), false)
				}
			}
			reportFlops(b, ct, flops, impl.bits)
		})
	}
}

func BenchmarkLSTMGates(b *testing.B) {
	// 4096 positions stay in L1/L2; 64·66·66 is hidden 64 on a padded
	// 64×64 image, as one step of the runtime sees it.
	for _, n := range []int{4096, 64 * 66 * 66} {
		// Pre-activations of a trained cell are mostly within a few units
		// of 0; the tests cover the saturated and subnormal corners.
		rng := rand.New(rand.NewPCG(9, 10))
		g, c0 := make([]float32, 4*n), make([]float32, n)
		for i := range g {
			g[i] = float32(rng.NormFloat64() * 3)
		}
		for i := range c0 {
			c0[i] = float32(rng.NormFloat64())
		}
		c, h := make([]float32, n), make([]float32, n)
		for _, impl := range cpuKernels() {
			b.Run(fmt.Sprintf("%s/n=%d", impl.name, n), func(b *testing.B) {
				ct := startCPUTimer(b)
				for b.Loop() {
					copy(c, c0)
					impl.lstmGates(g[:n], g[n:2*n], g[2*n:3*n], g[3*n:], c, h)
				}
				ct.stop(float64(n)/1e6, "Mpos/s-cpu")
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpos/s")
			})
		}
	}
}

// BenchmarkConvGemmHot keeps B in L1 (every tap reads the same few rows) to
// show the micro-kernel's compute ceiling apart from memory effects.
func BenchmarkConvGemmHot(b *testing.B) {
	a, bias, in, offs, _ := convProblem(256, 64, 64, 64)
	n := 480
	for k := range offs {
		offs[k] = int32(k % 9 * 3)
	}
	c := make([]float32, 256*n)
	flops := 2 * float64(256) * float64(a.K) * float64(n)
	for _, impl := range cpuKernels()[1:] {
		b.Run(impl.name, func(b *testing.B) {
			ct := startCPUTimer(b)
			for b.Loop() {
				impl.convGemm(c, n, a, bias, in, offs, n, false)
			}
			reportFlops(b, ct, flops, impl.bits)
		})
	}
}
