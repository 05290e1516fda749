//go:build !linux

package ops

import "testing"

type cpuTimer struct{}

func startCPUTimer(*testing.B) cpuTimer { return cpuTimer{} }

func (cpuTimer) stop(float64, string) float64 { return 0 }
