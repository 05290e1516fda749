//go:build amd64 && !purego

package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestConvGemmBF16Twin: the native kernel gives the Go twin's bits on every
// shape (row and column tails, odd K, k blocks), mode and split, and writes
// nothing outside its output.
func TestConvGemmBF16Twin(t *testing.T) {
	s := nativeBF16(t)
	defer func(nc, kc int) { gemmBlockCols, gemmBlockK = nc, kc }(gemmBlockCols, gemmBlockK)
	rng := rand.New(rand.NewPCG(27, 28))
	for _, blk := range [][2]int{{480, 192}, {48, 1}, {96, 7}, {1 << 20, 0}} {
		gemmBlockCols, gemmBlockK = blk[0], blk[1]
		for _, m := range []int{1, 5, 8, 13, 24} {
			for _, k := range []int{1, 2, 5, 33, 289} {
				for _, n := range []int{1, 7, 16, 17, 47, 48, 49, 97, 150} {
					for mode := 0; mode < 3; mode++ {
						g := newBF16GemmCase(rng, m, k, n, mode == 1, 0.1)
						checkBF16Twin(t, s, g, mode == 2, rng, fmt.Sprintf("blocks %v", blk))
					}
				}
			}
		}
	}
}
