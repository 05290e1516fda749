package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// winoCase is one padded-layout k×k conv problem (k = 3 or 5).
type winoCase struct {
	k                   int
	m, c, frames, h, wd int
	wp, s, cs           int
	w, bias, in         []float32
}

// newWinoCase is newWinoCaseK for a 3×3 kernel.
func newWinoCase(rng *rand.Rand, m, c, frames, h, wd, extraW, extraS, extraC int, wscale float64, input func() float32) *winoCase {
	return newWinoCaseK(rng, 3, m, c, frames, h, wd, extraW, extraS, extraC, wscale, input)
}

// newWinoCaseK lays out frames h×wd images with a zero border of (k-1)/2
// pixels; any slack between frames or channels or past the padded row holds
// NaN so a stray read shows.
func newWinoCaseK(rng *rand.Rand, k, m, c, frames, h, wd, extraW, extraS, extraC int, wscale float64, input func() float32) *winoCase {
	p := &winoCase{k: k, m: m, c: c, frames: frames, h: h, wd: wd}
	pad := (k - 1) / 2
	p.wp = wd + k - 1 + extraW
	p.s = (h+k-1)*p.wp + extraS
	p.cs = frames*p.s + extraC
	p.w = make([]float32, m*c*k*k)
	for i := range p.w {
		p.w[i] = float32((2*rng.Float64() - 1) * wscale)
	}
	p.bias = make([]float32, m)
	for i := range p.bias {
		p.bias[i] = float32(2*rng.Float64() - 1)
	}
	p.in = make([]float32, (c-1)*p.cs+frames*p.s)
	nan := float32(math.NaN())
	for i := range p.in {
		p.in[i] = nan
	}
	for ch := 0; ch < c; ch++ {
		for f := 0; f < frames; f++ {
			for yy := 0; yy < h+k-1; yy++ {
				for xx := 0; xx < p.wp; xx++ {
					v := float32(0)
					if yy >= pad && yy < pad+h && xx >= pad && xx < pad+wd {
						v = input()
					} else if xx > wd+k-2 {
						v = nan // columns past the padded row are not to be read
					}
					p.in[ch*p.cs+f*p.s+yy*p.wp+xx] = v
				}
			}
		}
	}
	return p
}

func (p *winoCase) col(f, y, x int) int { return f*p.s + y*p.wp + x }

// lastCol is the largest output column Conv may write, plus one.
func (p *winoCase) width() int { return p.col(p.frames-1, p.h-1, p.wd-1) + 1 }

// direct64 is the float64 direct convolution, bias included.
func (p *winoCase) direct64(bias bool) []float64 {
	n := p.width()
	out := make([]float64, p.m*n)
	for i := 0; i < p.m; i++ {
		for f := 0; f < p.frames; f++ {
			for y := 0; y < p.h; y++ {
				for x := 0; x < p.wd; x++ {
					var sum float64
					if bias {
						sum = float64(p.bias[i])
					}
					for ch := 0; ch < p.c; ch++ {
						for ky := 0; ky < p.k; ky++ {
							for kx := 0; kx < p.k; kx++ {
								sum += float64(p.w[((i*p.c+ch)*p.k+ky)*p.k+kx]) * float64(p.in[ch*p.cs+p.col(f, y+ky, x+kx)])
							}
						}
					}
					out[i*n+p.col(f, y, x)] = sum
				}
			}
		}
	}
	return out
}

// offsets are the direct offset-GEMM taps of the case.
func (p *winoCase) offsets() []int32 {
	offs := make([]int32, 0, p.c*p.k*p.k)
	for ch := 0; ch < p.c; ch++ {
		for ky := 0; ky < p.k; ky++ {
			for kx := 0; kx < p.k; kx++ {
				offs = append(offs, int32(ch*p.cs+ky*p.wp+kx))
			}
		}
	}
	return offs
}

// eachOutput calls f with the index of every output value of frame f in
// an output of rows width() apart.
func (p *winoCase) eachOutput(f int, fn func(j int)) {
	n := p.width()
	for i := 0; i < p.m; i++ {
		for y := 0; y < p.h; y++ {
			for x := 0; x < p.wd; x++ {
				fn(i*n + p.col(f, y, x))
			}
		}
	}
}

// errors compares a one-frame direct and Winograd output (rows width()
// apart) with the float64 reference: the max abs errors, Winograd's max
// error relative to 1 + |ref|, and the max |ref|.
func (p *winoCase) errors(ref []float64, direct, wino []float32) (eD, eW, eRel, big float64) {
	p.eachOutput(0, func(j int) {
		r := ref[j]
		big = max(big, math.Abs(r))
		eD = max(eD, math.Abs(float64(direct[j])-r))
		eW = max(eW, math.Abs(float64(wino[j])-r))
		eRel = max(eRel, math.Abs(float64(wino[j])-r)/(1+math.Abs(r)))
	})
	return
}

// winograd is the case's weights for NewWinograd3x3 or NewWinograd5x5.
func (p *winoCase) winograd() *Winograd {
	if p.k == 5 {
		return NewWinograd5x5(p.w, p.m, p.c)
	}
	return NewWinograd3x3(p.w, p.m, p.c)
}

// run calls Conv on out (ldc) split into parts, sequentially.
func (p *winoCase) run(wg *Winograd, out []float32, ldc int, bias []float32, acc bool, parts int) {
	ws := make([]float32, wg.Workspace())
	for part := 0; part < parts; part++ {
		for i := range ws {
			ws[i] = float32(math.NaN()) // scratch must not leak into results
		}
		wg.Conv(out, ldc, bias, p.in, p.cs, p.frames, p.h, p.wd, p.wp, p.s, acc, ws, part, parts)
	}
}

const winoSentinel = float32(-12345.5)

func TestWinograd3x3Small(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := 0
	for _, c := range []int{1, 3, 17} {
		for _, m := range []int{1, 5, 13, 37} {
			for h := 1; h <= 9; h++ {
				for wd := 1; wd <= 9; wd++ {
					if (h*wd+m+c)%3 != 0 && h != 9 && wd != 9 {
						continue // a third of the grid keeps the test quick
					}
					frames := 1 + (h+wd+m)%3
					extra := (h * wd) % 3
					p := newWinoCase(rng, m, c, frames, h, wd, extra%2, extra, 2*extra+1, 1/math.Sqrt(float64(9*c)), func() float32 { return float32(rng.NormFloat64()) })
					checkWinoCase(t, p)
					cases++
				}
			}
		}
	}
	// Wide enough for full groups of 8 tiles, plus partial ones.
	for _, sz := range [][2]int{{4, 16}, {5, 33}, {16, 48}, {7, 47}, {18, 17}} {
		p := newWinoCase(rng, 21, 5, 2, sz[0], sz[1], 0, 0, 0, 0.2, func() float32 { return float32(rng.NormFloat64()) })
		checkWinoCase(t, p)
		cases++
	}
	t.Logf("%d cases", cases)
}

func checkWinoCase(t *testing.T, p *winoCase) {
	t.Helper()
	name := fmt.Sprintf("%d×%d m=%d c=%d frames=%d %d×%d wp=%d s=%d cs=%d", p.k, p.k, p.m, p.c, p.frames, p.h, p.wd, p.wp, p.s, p.cs)
	wg := p.winograd()
	n := p.width()
	ldc := n + 3
	a := PackA(p.w, p.m, p.c*p.k*p.k)
	offs := p.offsets()
	for _, bias := range []bool{false, true} {
		for _, acc := range []bool{false, true} {
			var bs []float32
			if bias {
				bs = p.bias
			}
			// reference: convGemmRef over every column, and float64.
			ref := make([]float32, p.m*ldc)
			init := make([]float32, p.m*ldc)
			for i := range init {
				init[i] = float32(i%7) - 3
			}
			copy(ref, init)
			convGemmRef(ref, ldc, a, bs, p.in, offs, n, acc)
			ref64 := p.direct64(bias && !acc)
			// Winograd's rounding error scales with the case's largest
			// values (its transforms mix a tile's outputs), not with the
			// output at hand: allow 1e-6 of the largest output besides.
			var big float64
			for _, v := range ref64 {
				big = max(big, math.Abs(v))
			}
			var first []float32
			for parts := 1; parts <= 3; parts++ {
				out := make([]float32, p.m*ldc+5)
				for i := range out {
					out[i] = winoSentinel
				}
				valid := make([]bool, len(out))
				for i := 0; i < p.m; i++ {
					for f := 0; f < p.frames; f++ {
						for y := 0; y < p.h; y++ {
							for x := 0; x < p.wd; x++ {
								j := i*ldc + p.col(f, y, x)
								valid[j] = true
								if acc {
									out[j] = init[j]
								}
							}
						}
					}
				}
				p.run(wg, out, ldc, bs, acc, parts)
				var maxErr, maxRef float64
				for j, v := range out {
					if !valid[j] {
						if v != winoSentinel {
							t.Fatalf("%s bias=%v acc=%v parts=%d: wrote out[%d] (row %d col %d) outside the output", name, bias, acc, parts, j, j/ldc, j%ldc)
						}
						continue
					}
					want := ref64[j/ldc*n+j%ldc]
					if acc {
						want += float64(init[j])
					}
					e := math.Abs(float64(v) - want)
					if !(e <= 1e-5*(1+math.Abs(want))+1e-6*big) {
						t.Fatalf("%s bias=%v acc=%v parts=%d: out[%d] (row %d col %d) = %g, want %g (convGemmRef %g)", name, bias, acc, parts, j, j/ldc, j%ldc, v, want, ref[j])
					}
					maxErr = max(maxErr, math.Abs(float64(v)-want))
					maxRef = max(maxRef, math.Abs(float64(ref[j])-want))
				}
				if maxErr > 4*maxRef+1e-6*(1+big) {
					t.Errorf("%s: Winograd error %g vs direct %g", name, maxErr, maxRef)
				}
				if first == nil {
					first = out
				} else {
					for j := range out {
						if math.Float32bits(out[j]) != math.Float32bits(first[j]) {
							t.Fatalf("%s bias=%v acc=%v: parts=%d differs from parts=1 at %d: %g vs %g", name, bias, acc, parts, j, out[j], first[j])
						}
					}
				}
			}
		}
	}
}

// TestWinogradTwin checks every kernel set's transforms (3×3 and 5×5) against the Go
// twins bit for bit, through the whole Conv (with the selected GEMM in both,
// so only the transforms differ).
func TestWinogradTwin(t *testing.T) {
	defer func(k kernelSet) { kernels = k }(kernels)
	sel := kernels
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sz := range [][5]int{{1, 64, 64, 1, 3}, {3, 17, 35, 2, 3}, {2, 33, 9, 3, 3}, {1, 64, 64, 1, 5}, {3, 17, 35, 2, 5}, {2, 33, 9, 3, 5}} {
		p := newWinoCaseK(rng, sz[4], 40, 7, sz[0], sz[1], sz[2], sz[3]-1, sz[3], 0, 0.3, func() float32 { return float32(rng.NormFloat64()) })
		wg := p.winograd()
		ldc := p.width() + 1
		for _, impl := range cpuKernels() {
			for mode := 0; mode < 3; mode++ {
				var bs []float32
				if mode == 1 {
					bs = p.bias
				}
				outs := [2][]float32{}
				for k := range outs {
					outs[k] = make([]float32, p.m*ldc)
					for i := range outs[k] {
						outs[k][i] = float32(i%11) - 5
					}
				}
				kernels = sel
				kernels.winoIn, kernels.winoOut = impl.winoIn, impl.winoOut
				kernels.winoIn5, kernels.winoOut5 = impl.winoIn5, impl.winoOut5
				p.run(wg, outs[0], ldc, bs, mode == 2, 2)
				kernels.winoIn, kernels.winoOut = winoInGo, winoOutGo
				kernels.winoIn5, kernels.winoOut5 = winoIn5Go, winoOut5Go
				p.run(wg, outs[1], ldc, bs, mode == 2, 2)
				for j := range outs[0] {
					if math.Float32bits(outs[0][j]) != math.Float32bits(outs[1][j]) {
						t.Fatalf("%s %v mode %d: out[%d] = %g, Go twin %g", impl.name, sz, mode, j, outs[0][j], outs[1][j])
					}
				}
			}
		}
	}
}

// benchKernels are the kernel sets the benchmarks compare: every set this
// CPU runs, less the generic one where there is a faster one.
func benchKernels() []kernelSet {
	ks := cpuKernels()
	if len(ks) > 1 {
		ks = ks[1:]
	}
	return ks
}

// winoGemmFlops is the flops the 16 GEMMs of Winograd3x3.Conv execute for
// frames h×w images (tiles counted in whole groups of 8, as computed).
func winoGemmFlops(m, c, frames, h, w int) float64 {
	tilesY, groupsX := (h+1)/2, ((w+1)/2+7)/8
	return 2 * 16 * float64(m*c*frames*tilesY*groupsX*8)
}

// BenchmarkWinograd3x3 compares Conv (one part, one thread) with the direct
// offset GEMM on the runtime's recurrent shape, for each kernel set.
// GFLOP/s are direct-conv flops (2·M·C·9·h·w·frames) per second for both;
// %peak is the flops each actually executes (for Winograd, its GEMMs'; the
// transforms' time counts against it) per CPU second, against the measured
// peak at the kernel set's width.
func BenchmarkWinograd3x3(b *testing.B) {
	defer func(k kernelSet) { kernels = k }(kernels)
	for _, sz := range []struct{ m, c, h, w, frames int }{
		{256, 64, 64, 64, 1},
		{256, 64, 64, 64, 8},
		{256, 64, 128, 128, 1},
		// Where Winograd stops paying: few input channels.
		{256, 32, 64, 64, 1},
		{256, 16, 64, 64, 1},
		{256, 8, 64, 64, 1},
		{256, 1, 64, 64, 1},
		{128, 32, 128, 128, 1},
		// Tails: partial tile groups and rows, M not a multiple of 8.
		{100, 24, 37, 29, 2},
	} {
		rng := rand.New(rand.NewPCG(5, 6))
		p := newWinoCase(rng, sz.m, sz.c, sz.frames, sz.h, sz.w, 0, 0, 0, 1/math.Sqrt(float64(9*sz.c)), func() float32 { return float32(rng.NormFloat64()) })
		n := p.width()
		out := make([]float32, p.m*n)
		flops := 2 * float64(sz.m*sz.c*9*sz.h*sz.w*sz.frames)
		gemmFlops := winoGemmFlops(sz.m, sz.c, sz.frames, sz.h, sz.w)
		name := fmt.Sprintf("M=%d,C=%d,%dx%d,frames=%d", sz.m, sz.c, sz.h, sz.w, sz.frames)
		report := func(b *testing.B, ct cpuTimer, executed float64, bits int) {
			cpu := ct.stop(flops/1e9, "GFLOP/s-cpu")
			wall := flops * float64(b.N) / b.Elapsed().Seconds() / 1e9
			b.ReportMetric(wall, "GFLOP/s")
			if cpu == 0 {
				cpu = wall
			}
			if pk := peakAt(bits); pk > 0 {
				b.ReportMetric(100*cpu*executed/flops/pk, "%peak")
			}
		}
		for _, impl := range benchKernels() {
			kernels = impl
			b.Run("direct/"+impl.name+"/"+name, func(b *testing.B) {
				a := PackA(p.w, p.m, p.c*9)
				offs := p.offsets()
				ct := startCPUTimer(b)
				for b.Loop() {
					ConvGemm(out, n, a, p.bias, p.in, offs, n, false)
				}
				// The direct GEMM computes every column of the padded
				// layout, the padding positions too.
				report(b, ct, 2*float64(sz.m*sz.c*9*n), impl.bits)
			})
			b.Run("winograd/"+impl.name+"/"+name, func(b *testing.B) {
				wg := NewWinograd3x3(p.w, p.m, p.c)
				ws := make([]float32, wg.Workspace())
				ct := startCPUTimer(b)
				for b.Loop() {
					wg.Conv(out, n, p.bias, p.in, p.cs, p.frames, p.h, p.wd, p.wp, p.s, false, ws, 0, 1)
				}
				report(b, ct, gemmFlops, impl.bits)
			})
		}
		kernels = benchKernels()[len(benchKernels())-1]
		// Two parts on two goroutines, as the runtime's pool runs it
		// (wall-clock GFLOP/s only; the machine's other load shows).
		b.Run("winograd-2parts/"+kernels.name+"/"+name, func(b *testing.B) {
			wg := NewWinograd3x3(p.w, p.m, p.c)
			ws := [2][]float32{make([]float32, wg.Workspace()), make([]float32, wg.Workspace())}
			done := make(chan struct{})
			for b.Loop() {
				go func() {
					wg.Conv(out, n, p.bias, p.in, p.cs, p.frames, p.h, p.wd, p.wp, p.s, false, ws[1], 1, 2)
					done <- struct{}{}
				}()
				wg.Conv(out, n, p.bias, p.in, p.cs, p.frames, p.h, p.wd, p.wp, p.s, false, ws[0], 0, 2)
				<-done
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkWinogradTune sweeps the block (groups of 8 tiles) and row-chunk
// sizes on the recurrent shape.
func BenchmarkWinogradTune(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	p := newWinoCase(rng, 256, 64, 2, 64, 64, 0, 0, 0, 1/math.Sqrt(576), func() float32 { return float32(rng.NormFloat64()) })
	n := p.width()
	out := make([]float32, p.m*n)
	defer func(bl, r, pad int) { winoBlock, winoRows, winoPad = bl, r, pad }(winoBlock, winoRows, winoPad)
	for _, pad := range []int{16} {
		for _, bl := range []int{3, 6, 9, 12} {
			for _, rows := range []int{64, 128} {
				b.Run(fmt.Sprintf("block=%d,rows=%d,pad=%d", bl, rows, pad), func(b *testing.B) {
					winoBlock, winoRows, winoPad = bl, rows, pad
					wg := NewWinograd3x3(p.w, p.m, p.c)
					ws := make([]float32, wg.Workspace())
					ct := startCPUTimer(b)
					for b.Loop() {
						wg.Conv(out, n, p.bias, p.in, p.cs, p.frames, p.h, p.wd, p.wp, p.s, false, ws, 0, 1)
					}
					reportFlops(b, ct, winoGemmFlops(256, 64, 2, 64, 64), kernels.bits)
				})
			}
		}
	}
}

// winoSim is a plain float32 simulation of Winograd F(mt×mt, 3×3) with the
// given transform matrices (bt: a×a, g: a×3, at: mt×a, a = mt+2), for error
// studies: U in float64 rounded once, V and Y by float32 matrix products,
// the channel sums fused-multiply-add in float32 as the GEMM does.
func winoSim(p *winoCase, mt int, bt, g, at [][]float64) []float64 {
	a := mt + 2
	n := p.width()
	out := make([]float64, p.m*n)
	u := make([]float32, p.m*p.c*a*a)
	for i := 0; i < p.m; i++ {
		for ch := 0; ch < p.c; ch++ {
			w := p.w[(i*p.c+ch)*9:]
			for x := 0; x < a; x++ {
				for y := 0; y < a; y++ {
					var s float64
					for k := 0; k < 3; k++ {
						for l := 0; l < 3; l++ {
							s += g[x][k] * float64(w[k*3+l]) * g[y][l]
						}
					}
					u[((i*p.c+ch)*a+x)*a+y] = float32(s)
				}
			}
		}
	}
	mul32 := func(x, y [][]float32) [][]float32 {
		r := make([][]float32, len(x))
		for i := range r {
			r[i] = make([]float32, len(y[0]))
			for j := range r[i] {
				var s float32
				for k := range y {
					if x[i][k] != 0 && y[k][j] != 0 {
						s += x[i][k] * y[k][j]
					}
				}
				r[i][j] = s
			}
		}
		return r
	}
	f32 := func(m [][]float64) [][]float32 {
		r := make([][]float32, len(m))
		for i := range m {
			r[i] = make([]float32, len(m[i]))
			for j := range m[i] {
				r[i][j] = float32(m[i][j])
			}
		}
		return r
	}
	tr := func(m [][]float32) [][]float32 {
		r := make([][]float32, len(m[0]))
		for i := range r {
			r[i] = make([]float32, len(m))
			for j := range m {
				r[i][j] = m[j][i]
			}
		}
		return r
	}
	bt32, at32 := f32(bt), f32(at)
	b32, a32 := tr(bt32), tr(at32)
	hp := p.h + 2
	v := make([][][]float32, p.c)
	for f := 0; f < p.frames; f++ {
		for ty := 0; ty*mt < p.h; ty++ {
			for tx := 0; tx*mt < p.wd; tx++ {
				for ch := 0; ch < p.c; ch++ {
					d := make([][]float32, a)
					for r := range d {
						d[r] = make([]float32, a)
						for q := range d[r] {
							yy, xx := ty*mt+r, tx*mt+q
							if yy < hp && xx < p.wp {
								d[r][q] = p.in[ch*p.cs+p.col(f, yy, xx)]
							}
						}
					}
					v[ch] = mul32(mul32(bt32, d), b32)
				}
				for i := 0; i < p.m; i++ {
					mm := make([][]float32, a)
					for x := range mm {
						mm[x] = make([]float32, a)
						for y := range mm[x] {
							var s float32
							for ch := 0; ch < p.c; ch++ {
								s = float32(float64(u[((i*p.c+ch)*a+x)*a+y])*float64(v[ch][x][y]) + float64(s))
							}
							mm[x][y] = s
						}
					}
					yv := mul32(mul32(at32, mm), a32)
					for dy := 0; dy < mt && ty*mt+dy < p.h; dy++ {
						for dx := 0; dx < mt && tx*mt+dx < p.wd; dx++ {
							out[i*n+p.col(f, ty*mt+dy, tx*mt+dx)] = float64(yv[dy][dx])
						}
					}
				}
			}
		}
	}
	return out
}

// TestWinograd3x3Error reports the error against float64 of the direct conv
// (ConvGemm), of Winograd3x3 (F(2,3)) and of a simulated F(4,3) at the
// runtime's scales: weights U(±1/√fan_in), inputs N(0,1) or tanh-range.
func TestWinograd3x3Error(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	bt4 := [][]float64{{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}}
	g4 := [][]float64{{1. / 4, 0, 0}, {-1. / 6, -1. / 6, -1. / 6}, {-1. / 6, 1. / 6, -1. / 6}, {1. / 24, 1. / 12, 1. / 6}, {1. / 24, -1. / 12, 1. / 6}, {0, 0, 1}}
	at4 := [][]float64{{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}}
	for _, in := range []string{"N(0,1)", "U(-1,1)"} {
		for _, c := range []int{64, 65} {
			rng := rand.New(rand.NewPCG(11, uint64(c)))
			gen := func() float32 { return float32(rng.NormFloat64()) }
			if in == "U(-1,1)" {
				gen = func() float32 { return float32(2*rng.Float64() - 1) }
			}
			p := newWinoCase(rng, 64, c, 1, 24, 24, 0, 0, 0, 1/math.Sqrt(float64(9*c)), gen)
			n := p.width()
			ref := p.direct64(true)
			direct := make([]float32, p.m*n)
			ConvGemm(direct, n, PackA(p.w, p.m, p.c*9), p.bias, p.in, p.offsets(), n, false)
			wg := NewWinograd3x3(p.w, p.m, p.c)
			wino := make([]float32, p.m*n)
			p.run(wg, wino, n, p.bias, false, 1)
			f43 := winoSim(p, 4, bt4, g4, at4)
			f43b := make([]float64, len(f43))
			for j := range f43 {
				f43b[j] = f43[j] + float64(p.bias[j/n])
			}
			eD, eW, eRel, big := p.errors(ref, direct, wino)
			var e4 float64
			p.eachOutput(0, func(j int) { e4 = max(e4, math.Abs(f43b[j]-ref[j])) })
			t.Logf("input %s C=%d (max |out| %.2f): max abs error vs float64: direct %.2e, F(2,3) %.2e, F(4,3) %.2e", in, c, big, eD, eW, e4)
			if eW > 4*eD+1e-6 || eRel > 2e-6 {
				t.Errorf("F(2,3) error %g (rel %g) vs direct %g", eW, eRel, eD)
			}
		}
	}
}

// TestWinograd3x3Blocking repeats some cases with small blocks and row
// chunks, so several blocks and chunks (and a last short chunk) occur.
func TestWinograd3x3Blocking(t *testing.T) {
	defer func(bl, r int) { winoBlock, winoRows = bl, r }(winoBlock, winoRows)
	for _, cfg := range [][2]int{{1, 8}, {2, 16}, {5, 24}} {
		winoBlock, winoRows = cfg[0], cfg[1]
		rng := rand.New(rand.NewPCG(7, uint64(cfg[0])))
		for _, k := range []int{3, 5} {
			for _, sz := range [][5]int{{37, 3, 2, 9, 7}, {29, 5, 3, 5, 17}, {50, 2, 1, 16, 48}, {17, 17, 2, 7, 33}} {
				p := newWinoCaseK(rng, k, sz[0], sz[1], sz[2], sz[3], sz[4], 1, 2, 3, 0.3, func() float32 { return float32(rng.NormFloat64()) })
				checkWinoCase(t, p)
			}
		}
	}
}

// TestWinograd3x3Concurrent runs the parts from concurrent goroutines, as the
// runtime's pool does, and compares with one part.
func TestWinograd3x3Concurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	p := newWinoCase(rng, 64, 16, 3, 20, 30, 0, 0, 0, 0.1, func() float32 { return float32(2*rng.Float64() - 1) })
	wg := NewWinograd3x3(p.w, p.m, p.c)
	ldc := p.width()
	want := make([]float32, p.m*ldc)
	p.run(wg, want, ldc, p.bias, false, 1)
	for _, parts := range []int{2, 3, 7, 200} {
		got := make([]float32, p.m*ldc)
		done := make(chan struct{})
		for part := 0; part < parts; part++ {
			go func() {
				ws := make([]float32, wg.Workspace())
				wg.Conv(got, ldc, p.bias, p.in, p.cs, p.frames, p.h, p.wd, p.wp, p.s, false, ws, part, parts)
				done <- struct{}{}
			}()
		}
		for part := 0; part < parts; part++ {
			<-done
		}
		for j := range got {
			if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
				t.Fatalf("parts=%d: out[%d] = %g, one part %g", parts, j, got[j], want[j])
			}
		}
	}
}

// BenchmarkWinogradGemm times the GEMM part alone: the 16 per-ξ products of
// one block, with U cycling through all of its 1 MiB (as in Conv) or one
// 64-row chunk of it (hot).
func BenchmarkWinogradGemm(b *testing.B) {
	defer func(k kernelSet) { kernels = k }(kernels)
	rng := rand.New(rand.NewPCG(5, 6))
	w := make([]float32, 256*64*9)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	wg := NewWinograd3x3(w, 256, 64)
	ldv := wg.ldv()
	xsv, xsm := wg.strides()
	v := make([]float32, 16*xsv)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	mb := make([]float32, 16*xsm)
	n := ldv
	for _, impl := range benchKernels() {
		kernels = impl
		for _, hot := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/hot=%v", impl.name, hot), func(b *testing.B) {
				ct := startCPUTimer(b)
				for b.Loop() {
					for ci := range wg.chunks[0] {
						cc := ci
						if hot {
							cc = 0
						}
						for x := 0; x < 16; x++ {
							ConvGemm(mb[x*xsm:], ldv, &wg.chunks[x][cc], nil, v[x*xsv:x*xsv+64*ldv], wg.offs, n, false)
						}
					}
				}
				reportFlops(b, ct, 2*16*256*64*float64(n), impl.bits)
			})
		}
	}
}

// BenchmarkWinogradTransforms times the input transform of one block (C =
// 64 channels of winoBlock groups) and the output transform of its M = 256
// rows, as Conv runs them on the recurrent shape, for each kernel set.
func BenchmarkWinogradTransforms(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	const m, c, wd = 256, 64, 64
	wg := NewWinograd3x3(make([]float32, m*c*9), m, c)
	ldv := wg.ldv()
	xsv, xsm := wg.strides()
	wp := wd + 2
	ng := wg.block
	src := make([]float32, c*4*wp+16*ng+2)
	for i := range src {
		src[i] = float32(rng.NormFloat64())
	}
	v := make([]float32, 16*xsv)
	mb := make([]float32, 16*xsm)
	out := make([]float32, wg.rows*2*wp+16*ng)
	for _, impl := range benchKernels() {
		b.Run("in/"+impl.name, func(b *testing.B) {
			ct := startCPUTimer(b)
			for b.Loop() {
				for ch := 0; ch < c; ch++ {
					impl.winoIn(v[ch*ldv:], xsv, src[ch*4*wp:], wp, ng)
				}
			}
			ct.stop(float64(c*ng*8)/1e6, "Mtile/s-cpu")
		})
		b.Run("out/"+impl.name, func(b *testing.B) {
			ct := startCPUTimer(b)
			for b.Loop() {
				for r0 := 0; r0 < m; r0 += wg.rows {
					impl.winoOut(out, 2*wp, wp, mb, xsm, ldv, nil, wg.rows, 0, ng)
				}
			}
			ct.stop(float64(m*ng*8)/1e6, "Mtile/s-cpu")
		})
	}
}

// TestWinograd3x3Recurrent runs 12 steps of x ← tanh(conv(x) + b) (hidden
// 64, 16×16) in float64, with the direct float32 conv and with Winograd,
// and reports how far each float32 chain drifts from float64.
func TestWinograd3x3Recurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	const c, h, wd, steps = 64, 16, 16, 12
	p := newWinoCase(rng, c, c, 1, h, wd, 0, 0, 0, 1/math.Sqrt(9*c), func() float32 { return float32(2*rng.Float64() - 1) })
	n := p.width()
	x64 := make([]float64, len(p.in))
	for i, v := range p.in {
		x64[i] = float64(v)
	}
	xd := append([]float32(nil), p.in...)
	xw := append([]float32(nil), p.in...)
	a := PackA(p.w, c, c*9)
	offs := p.offsets()
	wg := NewWinograd3x3(p.w, c, c)
	ws := make([]float32, wg.Workspace())
	od, ow := make([]float32, c*n), make([]float32, c*n)
	for step := 1; step <= steps; step++ {
		y64 := make([]float64, c*n)
		for i := 0; i < c; i++ {
			for y := 0; y < h; y++ {
				for x := 0; x < wd; x++ {
					s := float64(p.bias[i])
					for ch := 0; ch < c; ch++ {
						for ky := 0; ky < 3; ky++ {
							for kx := 0; kx < 3; kx++ {
								s += float64(p.w[((i*c+ch)*3+ky)*3+kx]) * x64[ch*p.cs+p.col(0, y+ky, x+kx)]
							}
						}
					}
					y64[i*n+p.col(0, y, x)] = s
				}
			}
		}
		ConvGemm(od, n, a, p.bias, xd, offs, n, false)
		wg.Conv(ow, n, p.bias, xw, p.cs, 1, h, wd, p.wp, p.s, false, ws, 0, 1)
		var eD, eW float64
		for i := 0; i < c; i++ {
			for y := 0; y < h; y++ {
				for x := 0; x < wd; x++ {
					j, k := i*n+p.col(0, y, x), i*p.cs+p.col(0, y+1, x+1)
					x64[k] = math.Tanh(y64[j])
					xd[k] = tanhRef(od[j])
					xw[k] = tanhRef(ow[j])
					eD = max(eD, math.Abs(float64(xd[k])-x64[k]))
					eW = max(eW, math.Abs(float64(xw[k])-x64[k]))
				}
			}
		}
		if step == 1 || step%4 == 0 {
			t.Logf("step %2d: max |x − x64|: direct %.2e, Winograd F(2,3) %.2e", step, eD, eW)
		}
		if eW > 1e-5 {
			t.Errorf("step %d: Winograd drift %g", step, eW)
		}
	}
}

// TestWinograd5x5Small is TestWinograd3x3Small's grid for F(2×2, 5×5).
func TestWinograd5x5Small(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	cases := 0
	for _, c := range []int{1, 3, 17} {
		for _, m := range []int{1, 5, 37} {
			for h := 1; h <= 9; h++ {
				for wd := 1; wd <= 9; wd++ {
					if (h*wd+m+c)%4 != 0 && h != 9 && wd != 9 {
						continue
					}
					frames := 1 + (h+wd+m)%3
					extra := (h * wd) % 3
					p := newWinoCaseK(rng, 5, m, c, frames, h, wd, extra%2, extra, 2*extra+1, 1/math.Sqrt(float64(25*c)), func() float32 { return float32(rng.NormFloat64()) })
					checkWinoCase(t, p)
					cases++
				}
			}
		}
	}
	for _, sz := range [][2]int{{4, 16}, {5, 33}, {16, 48}, {7, 47}, {18, 17}} {
		p := newWinoCaseK(rng, 5, 21, 5, 2, sz[0], sz[1], 0, 0, 0, 0.2, func() float32 { return float32(rng.NormFloat64()) })
		checkWinoCase(t, p)
		cases++
	}
	t.Logf("%d cases", cases)
}

// TestWinograd5x5Error measures F(2×2, 5×5) against float64 at the scales
// of a trained model's layers (weights U(±1/√(25C)), inputs N(0,1) or
// U(-1,1)), beside the direct offset GEMM's error.
func TestWinograd5x5Error(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for _, in := range []string{"N(0,1)", "U(-1,1)"} {
		for _, c := range []int{16, 64, 65} {
			rng := rand.New(rand.NewPCG(13, uint64(c)))
			gen := func() float32 { return float32(rng.NormFloat64()) }
			if in == "U(-1,1)" {
				gen = func() float32 { return float32(2*rng.Float64() - 1) }
			}
			p := newWinoCaseK(rng, 5, 64, c, 1, 24, 24, 0, 0, 0, 1/math.Sqrt(float64(25*c)), gen)
			n := p.width()
			ref := p.direct64(true)
			direct := make([]float32, p.m*n)
			ConvGemm(direct, n, PackA(p.w, p.m, p.c*25), p.bias, p.in, p.offsets(), n, false)
			wino := make([]float32, p.m*n)
			p.run(p.winograd(), wino, n, p.bias, false, 1)
			eD, eW, eRel, big := p.errors(ref, direct, wino)
			t.Logf("input %s C=%d (max |out| %.2f): max abs error vs float64: direct %.2e, F(2,5) %.2e", in, c, big, eD, eW)
			if eW > 1.5*eD+1e-7 || eRel > 5e-6 {
				t.Errorf("F(2,5) error %g (rel %g) vs direct %g", eW, eRel, eD)
			}
		}
	}
}

// BenchmarkWinograd5x5 compares F(2×2, 5×5) with the direct offset GEMM
// for the 5×5 convolutions of the models (16×16 cells of OpenSTL, 64×64
// encoders), down to where it stops paying (few input channels), with the
// selected kernels. GFLOP/s count the direct method's flops.
func BenchmarkWinograd5x5(b *testing.B) {
	for _, sz := range []struct{ m, c, h, w int }{
		{256, 64, 16, 16}, {256, 16, 16, 16},
		{128, 32, 64, 64}, {32, 16, 64, 64}, {32, 8, 64, 64}, {32, 4, 64, 64},
	} {
		rng := rand.New(rand.NewPCG(5, 7))
		p := newWinoCaseK(rng, 5, sz.m, sz.c, 1, sz.h, sz.w, 0, 0, 0, 1/math.Sqrt(float64(25*sz.c)), func() float32 { return float32(rng.NormFloat64()) })
		n := p.width()
		out := make([]float32, p.m*n)
		flops := 2 * float64(sz.m*sz.c*25*sz.h*sz.w)
		name := fmt.Sprintf("M=%d,C=%d,%dx%d", sz.m, sz.c, sz.h, sz.w)
		b.Run("direct/"+name, func(b *testing.B) {
			a := PackA(p.w, p.m, p.c*25)
			offs := p.offsets()
			for b.Loop() {
				ConvGemm(out, n, a, p.bias, p.in, offs, n, false)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run("winograd/"+name, func(b *testing.B) {
			wg := NewWinograd5x5(p.w, p.m, p.c)
			ws := make([]float32, wg.Workspace())
			for b.Loop() {
				wg.Conv(out, n, p.bias, p.in, p.cs, 1, p.h, p.wd, p.wp, p.s, false, ws, 0, 1)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
