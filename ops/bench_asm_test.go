//go:build (amd64 || arm64) && !purego

package ops

import (
	"fmt"
	"testing"
)

// BenchmarkConvGemmBlock sweeps gemmBlockCols for the best asm path.
func BenchmarkConvGemmBlock(b *testing.B) {
	a, bias, in, offs, n := convProblem(256, 64, 64, 64)
	c := make([]float32, 256*n)
	flops := 2 * float64(256) * float64(a.K) * float64(n)
	impl := cpuKernels()[len(cpuKernels())-1]
	defer func(v int) { gemmBlockCols = v }(gemmBlockCols)
	for _, nc := range []int{96, 192, 240, 480, 960, 1920, 1 << 20} {
		b.Run(fmt.Sprintf("%s/nc=%d", impl.name, nc), func(b *testing.B) {
			gemmBlockCols = nc
			ct := startCPUTimer(b)
			for b.Loop() {
				impl.convGemm(c, n, a, bias, in, offs, n, false)
			}
			reportFlops(b, ct, flops, impl.bits)
		})
	}
}

// BenchmarkConvGemmBlockK sweeps gemmBlockK for the best asm path.
func BenchmarkConvGemmBlockK(b *testing.B) {
	a, bias, in, offs, n := convProblem(256, 64, 64, 64)
	c := make([]float32, 256*n)
	flops := 2 * float64(256) * float64(a.K) * float64(n)
	impl := cpuKernels()[len(cpuKernels())-1]
	defer func(v int) { gemmBlockK = v }(gemmBlockK)
	for _, kc := range []int{0, 96, 128, 192, 256, 288, 384} {
		b.Run(fmt.Sprintf("%s/kc=%d", impl.name, kc), func(b *testing.B) {
			gemmBlockK = kc
			ct := startCPUTimer(b)
			for b.Loop() {
				impl.convGemm(c, n, a, bias, in, offs, n, false)
			}
			reportFlops(b, ct, flops, impl.bits)
		})
	}
}
