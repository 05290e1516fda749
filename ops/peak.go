package ops

import (
	"math"
	"runtime"
	"sync"
	"time"
)

// FMAPeak is one register width's measured multiply-add peak on one core.
type FMAPeak struct {
	// Bits is the register width: 32 for scalar Go code (what the generic
	// kernels can reach), 128, 256 or 512 for vector registers.
	Bits int
	// GFLOPS is the measured peak of one thread, counting a multiply-add
	// as two flops; 0 means it could not be measured.
	GFLOPS float64
}

// Peaks is this CPU's measured multiply-add peak per register width and
// the one the selected kernel set works against.
type Peaks struct {
	Widths []FMAPeak // every width this build can run, narrowest first
	Kernel string    // KernelName()
	Bits   int       // the register width of Kernel
	GFLOPS float64   // the peak at Bits: the yardstick of the kernels in use
}

// Peak measures, once per process (about 20 ms per width on first call),
// the peak of independent multiply-add chains for every register width this
// build has kernels for, and reports them with the one the selected kernels
// use. Each figure is the best of several short runs timed by the running
// thread's CPU time where the OS provides it, so other load on the machine
// lowers it little; it is the CPU's own yardstick, not its datasheet.
func Peak() Peaks {
	peakOnce.Do(func() { peakWidths = measurePeaks(fmaProbes()) })
	p := Peaks{Widths: peakWidths, Kernel: kernels.name, Bits: kernels.bits}
	for _, w := range peakWidths {
		if w.Bits == p.Bits {
			p.GFLOPS = w.GFLOPS
		}
	}
	return p
}

var (
	peakOnce   sync.Once
	peakWidths []FMAPeak
)

// fmaProbe is one width's probe: run(n) executes n iterations of fmas
// independent multiply-adds of lanes float32 lanes each.
type fmaProbe struct {
	bits  int
	fmas  int
	run   func(n int)
	lanes int
}

func measurePeaks(probes []fmaProbe) []FMAPeak {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out := make([]FMAPeak, len(probes))
	for i, p := range probes {
		out[i] = FMAPeak{Bits: p.bits, GFLOPS: measureProbe(p)}
	}
	return out
}

// measureProbe sizes a run to about a quarter millisecond and returns the
// best rate of runs spread over about 20 ms. On a shared machine (or a VM,
// where the thread's CPU time includes time the host gave to others) a
// single run, or a burst of runs, can land in a slow spell; the best of
// many is close to what the core does when it has the core.
func measureProbe(p fmaProbe) float64 {
	clock := func() time.Duration {
		if haveThreadCPU {
			return threadCPU()
		}
		return time.Duration(time.Now().UnixNano())
	}
	flops := func(n int) float64 { return 2 * float64(n) * float64(p.fmas) * float64(p.lanes) }
	n := 64
	for n < 1<<30 {
		t0 := clock()
		p.run(n)
		if clock()-t0 >= 250*time.Microsecond {
			break
		}
		n *= 2
	}
	best := 0.0
	start := time.Now()
	for i := 0; i < 5 || i < 80 && time.Since(start) < 20*time.Millisecond; i++ {
		t0 := clock()
		p.run(n)
		if d := clock() - t0; d > 0 {
			best = max(best, flops(n)/d.Seconds()/1e9)
		}
	}
	if math.IsInf(best, 0) || math.IsNaN(best) {
		return 0
	}
	return best
}

// probeSink keeps the Go probe's result alive (and its inputs opaque).
var probeSink float32

// fmaProbeGo is the scalar probe: 12 independent chains of acc·x + y, 4
// steps each per iteration, so 48 multiply-adds per iteration as in the
// vector probes. The chains start from different values so the compiler
// cannot merge them. Go compiles each step to a multiply and a dependent
// add on amd64 (one fused instruction on arm64): the scalar rate plain Go
// loops can reach.
func fmaProbeGo(n int) {
	z := probeSink * 0
	x, y := 1+z, 1+z
	a0, a1, a2, a3, a4, a5 := z, 1+z, 2+z, 3+z, 4+z, 5+z
	a6, a7, a8, a9, a10, a11 := 6+z, 7+z, 8+z, 9+z, 10+z, 11+z
	for ; n > 0; n-- {
		for range 4 {
			a0, a1, a2, a3, a4, a5 = a0*x+y, a1*x+y, a2*x+y, a3*x+y, a4*x+y, a5*x+y
			a6, a7, a8, a9, a10, a11 = a6*x+y, a7*x+y, a8*x+y, a9*x+y, a10*x+y, a11*x+y
		}
	}
	probeSink = (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11) * 0
}

var goProbe = fmaProbe{bits: 32, fmas: 48, lanes: 1, run: fmaProbeGo}
