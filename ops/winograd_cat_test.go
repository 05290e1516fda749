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

// ConvMultiOut writes ConvMulti's values, bit for bit, into another layout:
// a dense (frames, M, h, wd) array (frame-major) or rows of their own
// stride (channel-major), whole or in parts (by tiles or by M), with a
// bias or accumulating, 3×3 and 5×5; every place outside the outputs is
// left as it was. A layout whose outputs would overlap is refused.
func TestWinogradConvMultiOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, tc := range []struct{ k, m, c, frames, h, wd int }{
		{3, 16, 5, 1, 7, 9}, {3, 13, 2, 2, 3, 3}, {3, 40, 17, 3, 5, 18}, {3, 24, 8, 2, 32, 33}, {5, 12, 6, 2, 9, 19}, {5, 8, 3, 1, 1, 1},
	} {
		for _, acc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%+v/acc=%v", tc, acc), func(t *testing.T) {
				p := newWinoCaseK(rng, tc.k, tc.m, tc.c, tc.frames, tc.h, tc.wd, 1, 3, 5, 0.3, func() float32 { return float32(rng.NormFloat64()) })
				wg := NewWinograd3x3(p.w, p.m, p.c)
				if tc.k == 5 {
					wg = NewWinograd5x5(p.w, p.m, p.c)
				}
				ws := make([]float32, wg.Workspace())
				n := p.width()
				ref := make([]float32, p.m*n)
				for i := range ref {
					ref[i] = float32(i % 7)
				}
				srcs := []WinoInput{{p.in, p.cs, p.c}}
				wg.ConvMulti(ref, n, p.bias, srcs, p.frames, p.h, p.wd, p.wp, p.s, acc, ws, 0, 1, false)
				plane := p.h * p.wd
				layouts := []WinoOut{
					{Ldc: plane, FrameStride: p.m * plane, RowStride: p.wd},                          // dense, frame-major
					{Ldc: p.frames*(plane+p.wd) + 3, FrameStride: plane + p.wd, RowStride: p.wd + 1}, // channel-major, gaps
				}
				for _, o := range layouts {
					size := (p.m-1)*o.Ldc + (p.frames-1)*o.FrameStride + (p.h-1)*o.RowStride + p.wd + 2
					at := func(i, f, y, x int) int { return i*o.Ldc + f*o.FrameStride + y*o.RowStride + x }
					init := make([]float32, size)
					for i := range init {
						init[i] = float32(i%5) - 2
					}
					for _, byM := range []bool{false, true} {
						for parts := 1; parts <= 3; parts++ {
							got := append([]float32(nil), init...)
							written := make([]bool, size)
							for part := 0; part < parts; part++ {
								wg.ConvMultiOut(got, o, p.bias, srcs, p.frames, p.h, p.wd, p.wp, p.s, acc, ws, part, parts, byM)
							}
							for i := 0; i < p.m; i++ {
								for f := 0; f < p.frames; f++ {
									for y := 0; y < p.h; y++ {
										for x := 0; x < p.wd; x++ {
											a := at(i, f, y, x)
											written[a] = true
											// Accumulating, ref's start values
											// differ: checked below.
											if want := ref[i*n+p.col(f, y, x)]; !acc && math.Float32bits(got[a]) != math.Float32bits(want) {
												t.Fatalf("%+v byM %v %d parts: (%d, %d, %d, %d) = %v, ConvMulti %v", o, byM, parts, i, f, y, x, got[a], ref[i*n+p.col(f, y, x)])
											}
										}
									}
								}
							}
							for a, w := range written {
								if !w && math.Float32bits(got[a]) != math.Float32bits(init[a]) {
									t.Fatalf("%+v byM %v %d parts: place %d outside the outputs changed to %v", o, byM, parts, a, got[a])
								}
							}
							if acc {
								// Same sums onto the same start values: ConvMulti into a
								// copy of init laid out as ref.
								want := make([]float32, p.m*n)
								for i := 0; i < p.m; i++ {
									for f := 0; f < p.frames; f++ {
										for y := 0; y < p.h; y++ {
											for x := 0; x < p.wd; x++ {
												want[i*n+p.col(f, y, x)] = init[at(i, f, y, x)]
											}
										}
									}
								}
								wg.ConvMulti(want, n, p.bias, srcs, p.frames, p.h, p.wd, p.wp, p.s, true, ws, 0, 1, false)
								for i := 0; i < p.m; i++ {
									for f := 0; f < p.frames; f++ {
										for y := 0; y < p.h; y++ {
											for x := 0; x < p.wd; x++ {
												if g, w := got[at(i, f, y, x)], want[i*n+p.col(f, y, x)]; math.Float32bits(g) != math.Float32bits(w) {
													t.Fatalf("%+v byM %v %d parts, accumulating: (%d, %d, %d, %d) = %v, ConvMulti %v", o, byM, parts, i, f, y, x, g, w)
												}
											}
										}
									}
								}
							}
						}
					}
				}
			})
		}
	}
	// Rows closer than their width, or channels inside a frame's image.
	p := newWinoCase(rng, 4, 2, 2, 5, 6, 0, 0, 0, 0.3, rng.Float32)
	wg := NewWinograd3x3(p.w, p.m, p.c)
	ws := make([]float32, wg.Workspace())
	for _, o := range []WinoOut{{Ldc: 30, FrameStride: 120, RowStride: 5}, {Ldc: 10, FrameStride: 200, RowStride: 6}, {Ldc: 30, FrameStride: 20, RowStride: 6}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("layout %+v: no panic", o)
				}
			}()
			wg.ConvMultiOut(make([]float32, 1000), o, nil, []WinoInput{{p.in, p.cs, p.c}}, p.frames, p.h, p.wd, p.wp, p.s, false, ws, 0, 1, false)
		}()
	}
}
