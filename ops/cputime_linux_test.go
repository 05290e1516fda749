package ops

import (
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// threadCPU returns this OS thread's CPU time. The benchmark machine is
// shared, so wall-clock rates mostly measure the neighbours; CPU time of the
// (locked) benchmark thread measures the kernel.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// cpuTimer reports flops per CPU-second as "GFLOP/s-cpu" when stopped.
type cpuTimer struct {
	b     *testing.B
	start time.Duration
}

func startCPUTimer(b *testing.B) cpuTimer {
	runtime.LockOSThread()
	return cpuTimer{b, threadCPU()}
}

func (t cpuTimer) stop(work float64, unit string) {
	d := threadCPU() - t.start
	runtime.UnlockOSThread()
	if d > 0 {
		t.b.ReportMetric(work*float64(t.b.N)/d.Seconds(), unit)
	}
}
