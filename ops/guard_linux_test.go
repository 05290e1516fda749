package ops

import (
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
// each ending at a guard page, covering every column tail width.
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
				ConvGemmRef(want, n, g.a, g.bias, b, g.offs, n, acc)
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
			impl.lstmGates(gs[0], gs[1], gs[2], gs[3], gs[4], gs[5])
		}
	}
}
