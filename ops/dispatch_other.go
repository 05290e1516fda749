//go:build (!amd64 && !arm64) || purego

package ops

// cpuKernels lists the kernel sets this build can run, worst first.
func cpuKernels() []kernelSet { return []kernelSet{genericKernels} }

// fmaProbes lists the peak probes of the widths this build can run.
func fmaProbes() []fmaProbe { return []fmaProbe{goProbe} }
