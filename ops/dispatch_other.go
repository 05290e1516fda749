//go:build !amd64 || purego

package ops

// cpuKernels lists the kernel sets this build can run, worst first.
func cpuKernels() []kernelSet { return []kernelSet{genericKernels} }
