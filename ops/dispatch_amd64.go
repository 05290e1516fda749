//go:build amd64 && !purego

package ops

import "golang.org/x/sys/cpu"

// availableKernels lists the kernel sets this CPU can run, worst first.
func availableKernels() []kernelSet {
	ks := []kernelSet{genericKernels}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernelSet{"avx2", convGemmAVX2, lstmGatesAVX2})
	}
	// The AVX-512 kernels use only AVX512F instructions, plus BZHI for
	// the tail mask.
	if cpu.X86.HasAVX512F && cpu.X86.HasBMI2 {
		ks = append(ks, kernelSet{"avx512", convGemmAVX512, lstmGatesAVX512})
	}
	return ks
}
