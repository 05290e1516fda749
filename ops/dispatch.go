package ops

import "os"

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
}

var genericKernels = kernelSet{"generic", convGemmGeneric, lstmGatesGeneric}

// KernelName reports which implementation ConvGemm and LSTMGates use:
// "generic", "avx2" or "avx512".
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
