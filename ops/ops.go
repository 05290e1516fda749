// Package ops holds the numeric kernels of the ConvLSTM forward pass.
//
// The convolution is an "offset GEMM": for a zero-padded, channel-major input
// and a kernel of size kh×kw, output column j (a pixel position laid out with
// the padded row stride) of output channel i is
//
//	C[i, j] = bias[i] + Σ_k A[i, k] · B[offs[k] + j]
//
// where k runs over (input channel, ky, kx) and offs[k] is the flat offset of
// that tap in the padded input. Columns whose pixel falls in the padding are
// computed too and ignored by the caller; this keeps every B row a plain
// contiguous slice, so no im2col copy is ever made.
//
// Every kernel comes in kernel sets (see KernelName): the generic set is
// plain Go and always available; the assembly sets are chosen at start-up
// only if the CPU has their instructions and they pass a check against the
// generic set, and the tests run every set the CPU can run.
package ops

import "fmt"

// PackedA is a weight matrix (M rows × K columns, row-major in PyTorch's
// (out, in, kh, kw) order) packed once at load time in the layout the
// GEMM kernel reads: panels of MR rows, each panel K×MR, row index fastest;
// the last panel is zero-filled up to MR rows.
type PackedA struct {
	M, K int
	MR   int
	Data []float32
}

// PackA packs the m×k row-major matrix w.
func PackA(w []float32, m, k int) *PackedA {
	if len(w) < m*k {
		panic(fmt.Sprintf("ops.PackA: %d values for a %d×%d matrix", len(w), m, k))
	}
	mr := panelRows
	panels := (m + mr - 1) / mr
	data := make([]float32, panels*k*mr)
	for p := 0; p < panels; p++ {
		dst := data[p*k*mr : (p+1)*k*mr]
		for r := 0; r < mr; r++ {
			i := p*mr + r
			if i >= m {
				break
			}
			row := w[i*k : (i+1)*k]
			for kk, v := range row {
				dst[kk*mr+r] = v
			}
		}
	}
	return &PackedA{M: m, K: k, MR: mr, Data: data}
}

// ConvGemm computes, for i < a.M and j < n,
//
//	c[i*ldc+j] = (accumulate ? c[i*ldc+j] : bias[i]) + Σ_k A[i,k]·b[offs[k]+j]
//
// bias may be nil (zero). It reads b only at offs[k]+j for j < n and writes c
// only at i*ldc+j for j < n. Column j's sum runs over k in order, so the result
// of a column does not depend on how columns are split between threads.
func ConvGemm(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool) {
	if n <= 0 || a.M == 0 {
		return
	}
	checkGemm(c, ldc, a, bias, b, offs, n)
	kernels.convGemm(c, ldc, a, bias, b, offs, n, accumulate)
}

func checkGemm(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int) {
	checkGemmArgs("ops.ConvGemm", "values", c, ldc, a.M, a.K, bias, len(b), offs, n)
}

// checkGemmArgs checks the arguments of a convolution GEMM (float32 or
// bfloat16: b holds nb elements, named unit) against an M×K left operand.
func checkGemmArgs(op, unit string, c []float32, ldc, M, K int, bias []float32, nb int, offs []int32, n int) {
	if len(offs) != K {
		panic(fmt.Sprintf("%s: %d offsets for K=%d", op, len(offs), K))
	}
	if ldc < n || len(c) < (M-1)*ldc+n {
		panic(fmt.Sprintf("%s: c has %d values, need %d rows of stride %d and width %d", op, len(c), M, ldc, n))
	}
	if bias != nil && len(bias) < M {
		panic(op + ": bias shorter than M")
	}
	for _, o := range offs {
		if o < 0 || int(o)+n > nb {
			panic(fmt.Sprintf("%s: offset %d + width %d exceeds input of %d %s", op, o, n, nb, unit))
		}
	}
}
