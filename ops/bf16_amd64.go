//go:build amd64 && !purego

package ops

import "golang.org/x/sys/cpu"

// cpuBF16 returns the AVX512_BF16 kernels if this CPU has them and k, the
// float32 set in use, is the AVX-512 one (they use AVX512F/BW as it does),
// else nil.
func cpuBF16(k kernelSet) *bf16Set {
	if k.name != "avx512" || !cpu.X86.HasAVX512BF16 || !cpu.X86.HasAVX512BW {
		return nil
	}
	return &bf16Set{name: "avx512bf16", gemm: convGemmBF16AVX512, pairs: bf16PairsAVX512Slices}
}

// bf16Probes lists the bfloat16 peak probe if this CPU has AVX512_BF16.
func bf16Probes() []fmaProbe {
	if !cpu.X86.HasAVX512BF16 {
		return nil
	}
	// 48 VDPBF16PS of 16 lanes × 2 products each per iteration.
	return []fmaProbe{{bits: 512, fmas: 48, lanes: 32, run: dpProbeBF16}}
}

func bf16PairsAVX512Slices(dst []uint32, lo, hi []float32) {
	var hp *float32
	if hi != nil {
		hp = &hi[0]
	}
	bf16PairsAVX512(&dst[0], &lo[0], hp, len(dst))
}

// convGemmBF16AVX512 walks column blocks, panels and k blocks as
// convGemmAsm does (k here counts pairs: a pair row is as many bytes as a
// float32 row, so the same blocking keeps the same footprint).
func convGemmBF16AVX512(c []float32, ldc int, a *PackedBF16, bias []float32, b []uint32, offs []int32, n int, accumulate bool) {
	if a.K == 0 || n <= 0 {
		convGemmBF16Generic(c, ldc, a, bias, b, offs, n, accumulate)
		return
	}
	walkPanels(a.M, a.K, n, bias, accumulate, func(i0, j0, k0, kn, nb, rows int, bp *float32, mode int) {
		gemmPanelBF16AVX512(&c[i0*ldc+j0], ldc, &a.Data[i0*a.K+k0*panelRows], bp, &b[j0], &offs[k0], kn, nb, rows, mode)
	})
}
