//go:build amd64 && !purego

package ops

import "golang.org/x/sys/cpu"

// cpuKernels lists the kernel sets this CPU can run, worst first.
func cpuKernels() []kernelSet {
	ks := []kernelSet{genericKernels}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernelSet{name: "avx2", bits: 256, convGemm: convGemmAVX2, lstmGates: lstmGatesAVX2, lstmPeep: lstmPeepAVX2,
			winoIn: winoInAVX2Slices, winoOut: winoOutAVX2Slices, winoIn5: winoIn5AVX2Slices, winoOut5: winoOut5AVX2Slices, relu: reluAVX2Slices, leakyRelu: leakyReluAVX2Slices, max2: max2AVX2Slices, maxPairs: maxPairsAVX2Slices, mulAdd: mulAddAVX2Slices, blend: blendAVX2Slices, gather2: gather2AVX2Slices,
			scaleShift: scaleShiftAVX2Slices, normElem: normElemAVX2Slices, moments: momentsAVX2Slices})
	}
	// The AVX-512 kernels use only AVX512F instructions, plus BZHI for
	// the tail mask; they are offered after a start-up check against the
	// generic kernels. They give the same bits as the AVX2 ones
	// (TestVectorSetsBitIdentical), so preferring them is a matter of
	// speed: on a Zen 5 with full-width 512-bit units they are faster on
	// every kernel and shape measured (GEMM 1.5-2x, Winograd 1.8x, gates
	// 2x, transforms 1.05-1.1x); on CPUs that run AVX-512 on 256-bit units
	// the GEMM was measured at ~95% of the (equal) peak, so not slower
	// either. CONVLSTM_KERNEL=avx2 overrides.
	if cpu.X86.HasAVX512F && cpu.X86.HasBMI2 && cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernelSet{name: "avx512", bits: 512, convGemm: convGemmAVX512, lstmGates: lstmGatesAVX512, lstmPeep: lstmPeepAVX512,
			winoIn: winoInAVX512Slices, winoOut: winoOutAVX512Slices, winoIn5: winoIn5AVX512Slices, winoOut5: winoOut5AVX512Slices, relu: reluAVX512Slices, leakyRelu: leakyReluAVX512Slices, max2: max2AVX512Slices, maxPairs: maxPairsAVX512Slices, mulAdd: mulAddAVX512Slices, blend: blendAVX512Slices, gather2: gather2AVX512Slices, perm2: perm2AVX512Slices,
			scaleShift: scaleShiftAVX512Slices, normElem: normElemAVX512Slices, moments: momentsAVX512Slices, unverified: true})
	}
	return ks
}

// fmaProbes lists the peak probes of the widths this CPU can run.
func fmaProbes() []fmaProbe {
	ps := []fmaProbe{goProbe}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ps = append(ps, fmaProbe{bits: 256, fmas: 48, lanes: 8, run: fmaProbeAVX2})
	}
	if cpu.X86.HasAVX512F {
		ps = append(ps, fmaProbe{bits: 512, fmas: 48, lanes: 16, run: fmaProbeAVX512})
	}
	return ps
}
