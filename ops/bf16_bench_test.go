package ops

import (
	"fmt"
	"testing"
)

// bf16Problem is convProblem's 3×3 convolution with channels paired: pair
// planes of the input and the weights packed by PackBF16.
func bf16Problem(m, cin, h, w int) (*PackedBF16, []float32, []uint32, []int32, int) {
	a32, bias, in, offs32, n := convProblem(m, cin, h, w)
	plane := int(offs32[9]) // channel 1's first tap
	if cin == 1 {
		plane = len(in)
	}
	// Recover the row-major weight from the packed panels.
	k := cin * 9
	wt := make([]float32, m*k)
	for i := 0; i < m; i++ {
		for kk := 0; kk < k; kk++ {
			wt[i*k+kk] = a32.Data[i/panelRows*k*panelRows+kk*panelRows+i%panelRows]
		}
	}
	cp := (cin + 1) / 2
	pairs := make([]uint32, cp*plane)
	for p := 0; p < cp; p++ {
		var hi []float32
		if 2*p+1 < cin {
			hi = in[(2*p+1)*plane : (2*p+2)*plane]
		}
		genericBF16.pairs(pairs[p*plane:(p+1)*plane], in[2*p*plane:(2*p+1)*plane], hi)
	}
	offs := make([]int32, 0, cp*9)
	for p := 0; p < cp; p++ {
		for _, o := range offs32[:9] {
			offs = append(offs, int32(p*plane)+o)
		}
	}
	return PackBF16(wt, m, cin, 9), bias, pairs, offs, n
}

// BenchmarkConvGemmBF16 is BenchmarkConvGemm's problems in bfloat16; GFLOP/s
// counts the float32 convolution's work (2·M·Cin·9·n), %peak is against the
// measured VDPBF16PS peak (PeakBF16).
func BenchmarkConvGemmBF16(b *testing.B) {
	for _, sz := range []struct{ m, cin, h, w int }{
		{256, 64, 64, 64},
		{256, 65, 64, 64},
		{256, 2, 64, 64},
	} {
		a, bias, in, offs, n := bf16Problem(sz.m, sz.cin, sz.h, sz.w)
		c := make([]float32, sz.m*n)
		flops := 2 * float64(sz.m) * float64(sz.cin*9) * float64(n)
		for _, s := range bf16Sets() {
			b.Run(fmt.Sprintf("%s/M=%d,Cin=%d,pairs=%d,n=%d", s.name, sz.m, sz.cin, a.K, n), func(b *testing.B) {
				if s.name == "generic" && sz.cin > 2 {
					b.Skip("the Go twin is for tests")
				}
				ct := startCPUTimer(b)
				for b.Loop() {
					s.gemm(c, n, a, bias, in, offs, n, false)
				}
				cpu := ct.stop(flops/1e9, "GFLOP/s-cpu")
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if pk := PeakBF16(); pk > 0 && cpu > 0 {
					b.ReportMetric(100*cpu/pk, "%peak")
				}
			})
		}
	}
}

// BenchmarkBF16Pairs converts a 64-channel padded 64×64 state: the
// per-step cost of the bfloat16 recurrent input.
func BenchmarkBF16Pairs(b *testing.B) {
	const n = 66 * 66
	lo, hi, dst := make([]float32, 32*n), make([]float32, 32*n), make([]uint32, 32*n)
	for _, s := range bf16Sets() {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				s.pairs(dst, lo, hi)
			}
			b.ReportMetric(float64(len(dst))*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gpairs/s")
		})
	}
}
