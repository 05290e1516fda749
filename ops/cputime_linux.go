package ops

import (
	"syscall"
	"time"
	"unsafe"
)

// threadCPU returns this OS thread's CPU time. The machines this runs on are
// often shared, so wall-clock rates partly measure the neighbours; the CPU
// time of a locked thread measures the code it ran.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

// haveThreadCPU reports whether threadCPU measures anything.
const haveThreadCPU = true
