//go:build (amd64 || arm64) && !purego

package ops

import (
	"math/rand/v2"
	"testing"
)

// TestConvGemmBlocking runs the asm paths with tiny column and k blocks, so
// block edges, partial-sum reloads (each mode) and tails all occur often.
func TestConvGemmBlocking(t *testing.T) {
	defer func(nc, kc int) { gemmBlockCols, gemmBlockK = nc, kc }(gemmBlockCols, gemmBlockK)
	rng := rand.New(rand.NewPCG(13, 14))
	for _, impl := range cpuKernels()[1:] {
		for _, blk := range [][2]int{{48, 1}, {96, 2}, {48, 7}, {480, 192}, {1 << 20, 0}} {
			gemmBlockCols, gemmBlockK = blk[0], blk[1]
			for _, m := range []int{5, 16, 21} {
				for _, k := range []int{1, 9, 20, 577} {
					for _, n := range []int{1, 31, 47, 48, 100, 200} {
						for mode := 0; mode < 3; mode++ {
							checkGemmCase(t, impl, newGemmCase(rng, m, k, n, mode == 1), mode == 2, rng)
						}
					}
				}
			}
		}
	}
}
