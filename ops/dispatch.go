package ops

import (
	"math"
	"os"
)

// The kernels the exported functions call. Fast paths chosen at start-up
// replace these; the generic versions are always available as twins.
var (
	convGemm   = convGemmGeneric
	lstmGates  = lstmGatesGeneric
	kernelName = "generic"
)

// kernelSet is one complete implementation of the kernels.
type kernelSet struct {
	name      string
	convGemm  func(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool)
	lstmGates func(gi, gf, gO, gg, c, h []float32)
	// unverified sets are offered only if agreesWithGeneric passes.
	unverified bool
}

var genericKernels = kernelSet{name: "generic", convGemm: convGemmGeneric, lstmGates: lstmGatesGeneric}

// availableKernels is cpuKernels less any unverified set that disagrees
// with the generic kernels.
func availableKernels() []kernelSet {
	var ks []kernelSet
	for _, k := range cpuKernels() {
		if !k.unverified || agreesWithGeneric(k) {
			ks = append(ks, k)
		}
	}
	return ks
}

// KernelName reports which implementation ConvGemm and LSTMGates use:
// "generic", "avx2" or "avx512". An AVX-512 CPU reports "avx2" if the
// AVX-512 kernels failed their start-up check.
func KernelName() string { return kernelName }

// selectKernels installs the best of the available sets (ordered worst to
// best), or the one CONVLSTM_KERNEL names if this CPU can run it.
func selectKernels(avail []kernelSet) {
	k := avail[len(avail)-1]
	if want := os.Getenv("CONVLSTM_KERNEL"); want != "" {
		for _, s := range avail {
			if s.name == want {
				k = s
			}
		}
	}
	convGemm, lstmGates, kernelName = k.convGemm, k.lstmGates, k.name
}

func init() { selectKernels(availableKernels()) }

// agreesWithGeneric runs k on a small problem with row and column tails,
// bias and accumulation, and compares with the generic kernels.
func agreesWithGeneric(k kernelSet) bool {
	seed := uint32(1)
	rnd := func() float32 {
		seed = seed*1664525 + 1013904223
		return float32(seed>>8)/(1<<24)*2 - 1
	}
	const m, kk, n, ldc = 13, 11, 53, 60
	w := make([]float32, m*kk)
	for i := range w {
		w[i] = rnd()
	}
	a := PackA(w, m, kk)
	bias := make([]float32, m)
	for i := range bias {
		bias[i] = rnd()
	}
	offs := make([]int32, kk)
	for i := range offs {
		offs[i] = int32(i * 7)
	}
	b := make([]float32, int(offs[kk-1])+n)
	for i := range b {
		b[i] = rnd()
	}
	got, want := make([]float32, (m-1)*ldc+n), make([]float32, (m-1)*ldc+n)
	for _, acc := range []bool{false, true} {
		k.convGemm(got, ldc, a, bias, b, offs, n, acc)
		convGemmGeneric(want, ldc, a, bias, b, offs, n, acc)
		for i := range got {
			if !(math.Abs(float64(got[i]-want[i])) <= 1e-4) {
				return false
			}
		}
	}
	const gn = 37
	g := make([][]float32, 7)
	for q := range g {
		g[q] = make([]float32, gn)
		for j := range g[q] {
			g[q][j] = 4 * rnd()
		}
	}
	c2 := append([]float32(nil), g[4]...)
	h2 := make([]float32, gn)
	k.lstmGates(g[0], g[1], g[2], g[3], g[4], g[5])
	lstmGatesGeneric(g[0], g[1], g[2], g[3], c2, h2)
	for j := 0; j < gn; j++ {
		if !(math.Abs(float64(g[4][j]-c2[j])) <= 1e-5) || !(math.Abs(float64(g[5][j]-h2[j])) <= 1e-5) {
			return false
		}
	}
	return true
}
