//go:build !amd64 || purego

package ops

// availableKernels lists the kernel sets this build can run, worst first.
func availableKernels() []kernelSet { return []kernelSet{genericKernels} }
