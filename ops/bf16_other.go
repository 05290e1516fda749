//go:build !amd64 || purego

package ops

// cpuBF16 returns nil: this build has no native bfloat16 kernels, and the
// bf16 option runs on float32 kernels with rounded weights.
func cpuBF16(kernelSet) *bf16Set { return nil }

func bf16Probes() []fmaProbe { return nil }
