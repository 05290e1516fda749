package ops

import (
	"runtime"
	"testing"
	"time"
)

// cpuTimer reports work per CPU-second of the benchmark's (locked) thread
// when stopped, and returns that rate; see threadCPU.
type cpuTimer struct {
	b     *testing.B
	start time.Duration
}

func startCPUTimer(b *testing.B) cpuTimer {
	runtime.LockOSThread()
	return cpuTimer{b, threadCPU()}
}

func (t cpuTimer) stop(work float64, unit string) float64 {
	d := threadCPU() - t.start
	runtime.UnlockOSThread()
	if d <= 0 {
		return 0
	}
	r := work * float64(t.b.N) / d.Seconds()
	t.b.ReportMetric(r, unit)
	return r
}
