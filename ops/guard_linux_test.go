package ops

import (
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"
)

// guardedFloats returns a slice of n float32s that ends exactly where an
// inaccessible page begins, so any read or write past its end faults.
func guardedFloats(t *testing.T, n int) []float32 {
	page := syscall.Getpagesize()
	size := (4*n + page - 1) / page * page
	mem, err := syscall.Mmap(-1, 0, size+page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skip("mmap:", err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[size:], syscall.PROT_NONE); err != nil {
		t.Skip("mprotect:", err)
	}
	f := unsafe.Slice((*float32)(unsafe.Pointer(&mem[0])), size/4)
	return f[size/4-n:]
}

// TestKernelsGuardPage runs every kernel with b, c, and the gate slices
// each ending at a guard page, covering every column tail width, and checks
// the values each wrote.
func TestKernelsGuardPage(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, impl := range cpuKernels() {
		for n := 1; n <= 50; n++ {
			m, k := 11, 5
			g := newGemmCase(rng, m, k, n, true)
			b := guardedFloats(t, len(g.b))
			copy(b, g.b)
			g.ldc = n
			c := guardedFloats(t, (m-1)*n+n)
			for _, acc := range []bool{false, true} {
				want := make([]float32, len(c))
				copy(want, c)
				convGemmRef(want, n, g.a, g.bias, b, g.offs, n, acc)
				impl.convGemm(c, n, g.a, g.bias, b, g.offs, n, acc)
				for i := range c {
					if d := c[i] - want[i]; d > 1e-4 || d < -1e-4 {
						t.Fatalf("%s n=%d acc=%v: c[%d] = %v, want %v", impl.name, n, acc, i, c[i], want[i])
					}
				}
			}
			gs := make([][]float32, 6)
			for q := range gs {
				gs[q] = guardedFloats(t, n)
				copy(gs[q], gateInputs(rng, n))
			}
			wc := append([]float32(nil), gs[4]...)
			wh := make([]float32, n)
			lstmGatesRef(gs[0], gs[1], gs[2], gs[3], wc, wh)
			impl.lstmGates(gs[0], gs[1], gs[2], gs[3], gs[4], gs[5])
			for j := 0; j < n; j++ {
				// The reference rounds each activation once; the kernels'
				// polynomials stay within 2.5e-7 of it (TestLSTMGatesKernels).
				if !near(gs[4][j], wc[j], 1e-6) || !near(gs[5][j], wh[j], 1e-6) {
					t.Fatalf("%s n=%d j=%d: c=%v h=%v, want c=%v h=%v", impl.name, n, j, gs[4][j], gs[5][j], wc[j], wh[j])
				}
			}
		}
	}
}

// near reports |got-want| ≤ tol·(1+|want|).
func near(got, want float32, tol float64) bool {
	return math.Abs(float64(got)-float64(want)) <= tol*(1+math.Abs(float64(want)))
}

// TestWinoTransformsGuardPage runs every set's Winograd transforms with
// their inputs and outputs ending at a guard page (exactly the extent their
// contracts name) and compares with the Go twins bit for bit.
func TestWinoTransformsGuardPage(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	fill := func(v []float32) {
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
	}
	for _, impl := range cpuKernels() {
		for ng := 1; ng <= 5; ng++ {
			const rs, xs = 53, 29
			src := guardedFloats(t, 3*rs+16*ng+2)
			fill(src)
			dst := guardedFloats(t, 15*xs+8*ng)
			want := make([]float32, len(dst))
			fill(dst)
			copy(want, dst)
			winoInGo(want, xs, src, rs, ng)
			impl.winoIn(dst, xs, src, rs, ng)
			for i := range dst {
				if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s winoIn ng=%d: dst[%d] = %v, want %v", impl.name, ng, i, dst[i], want[i])
				}
			}
			const rows, ldc, wp, ldm = 3, 71, 37, 19
			m := guardedFloats(t, 15*xs+(rows-1)*ldm+8*ng)
			fill(m)
			bias := guardedFloats(t, rows)
			fill(bias)
			for mode := 0; mode < 3; mode++ {
				out := guardedFloats(t, (rows-1)*ldc+wp+16*ng)
				fill(out)
				want := append([]float32(nil), out...)
				winoOutGo(want, ldc, wp, m, xs, ldm, bias, rows, mode, ng)
				impl.winoOut(out, ldc, wp, m, xs, ldm, bias, rows, mode, ng)
				for i := range out {
					if math.Float32bits(out[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s winoOut ng=%d mode=%d: out[%d] = %v, want %v", impl.name, ng, mode, i, out[i], want[i])
					}
				}
			}
		}
	}
}
