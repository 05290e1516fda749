package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ConvMulti over two inputs must equal, bit for bit, Conv over one buffer
// holding their channels one after the other: the same transforms, the same
// GEMM over the same channel order; split by tiles or by output channels
// (byM) into 2 or 3 parts.
func TestWinogradConvMulti(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct{ m, ca, cb, frames, h, wd int }{
		{16, 3, 5, 1, 7, 9}, {13, 1, 1, 2, 3, 3}, {40, 17, 16, 3, 5, 18}, {8, 0, 4, 1, 4, 4}, {8, 6, 0, 2, 1, 1}, {200, 9, 7, 1, 16, 16},
	} {
		for _, acc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%+v/acc=%v", tc, acc), func(t *testing.T) {
				c := tc.ca + tc.cb
				p := newWinoCase(rng, tc.m, c, tc.frames, tc.h, tc.wd, 1, 3, 5, 0.3, func() float32 { return float32(rng.NormFloat64()) })
				wg := NewWinograd3x3(p.w, p.m, c)
				ws := make([]float32, wg.Workspace())
				n := p.width()
				want := make([]float32, p.m*n)
				got := make([]float32, p.m*n)
				for i := range want {
					want[i] = float32(i % 7)
					got[i] = want[i]
				}
				wg.Conv(want, n, p.bias, p.in, p.cs, p.frames, p.h, p.wd, p.wp, p.s, acc, ws, 0, 1)
				// The same channels split into two buffers of their own.
				a := WinoInput{Data: append([]float32(nil), p.in[:min(len(p.in), tc.ca*p.cs)]...), ChanStride: p.cs, Channels: tc.ca}
				b := WinoInput{Data: append([]float32(nil), p.in[min(len(p.in), tc.ca*p.cs):]...), ChanStride: p.cs, Channels: tc.cb}
				init := append([]float32(nil), got...)
				for _, byM := range []bool{false, true} {
					for parts := 2; parts <= 3; parts++ {
						copy(got, init)
						for part := 0; part < parts; part++ {
							wg.ConvMulti(got, n, p.bias, []WinoInput{a, b}, p.frames, p.h, p.wd, p.wp, p.s, acc, ws, part, parts, byM)
						}
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("byM %v, %d parts, at %d: ConvMulti %v, Conv %v", byM, parts, i, got[i], want[i])
							}
						}
					}
				}
				if tc.m == 200 && wg.Chunks() < 3 {
					t.Fatalf("M = 200 in %d chunks: byM not split 3 ways", wg.Chunks())
				}
			})
		}
	}
}
