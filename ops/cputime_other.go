//go:build !linux

package ops

import "time"

func threadCPU() time.Duration { return 0 }

const haveThreadCPU = false
