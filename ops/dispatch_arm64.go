//go:build arm64 && !purego

package ops

// cpuKernels lists the kernel sets this CPU can run, worst first. ASIMD
// (NEON) is part of every arm64 CPU Go runs on. The neon set gives the same
// bits as avx2 and avx512 (same FMA chains, same polynomials); it is offered
// only after the start-up check, as it has been verified under qemu-user
// but not yet on arm64 hardware.
func cpuKernels() []kernelSet {
	return []kernelSet{genericKernels, {name: "neon", bits: 128, convGemm: convGemmNEON, lstmGates: lstmGatesNEON,
		winoIn: winoInNEONSlices, winoOut: winoOutNEONSlices, winoIn5: winoIn5Go, winoOut5: winoOut5Go, relu: reluGeneric, leakyRelu: leakyReluGeneric, max2: max2Generic, maxPairs: maxPairsGeneric, mulAdd: mulAddGeneric, blend: blendGeneric, gather2: gather2Generic,
		scaleShift: scaleShiftGeneric, normElem: normElemGeneric, moments: momentsGeneric, unverified: true}}
}

// fmaProbes lists the peak probes of the widths this CPU can run.
func fmaProbes() []fmaProbe {
	return []fmaProbe{goProbe, {bits: 128, fmas: 48, lanes: 4, run: fmaProbeNEON}}
}
