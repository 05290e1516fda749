package ops

import (
	"math"
	"testing"
)

// TestPeak checks the probe's figures are usable yardsticks: one per width
// this build has kernels for, each positive and finite (no timing bounds:
// the machine may be loaded).
func TestPeak(t *testing.T) {
	p := Peak()
	if p.Kernel != KernelName() {
		t.Errorf("Peak().Kernel = %q, KernelName() = %q", p.Kernel, KernelName())
	}
	if len(p.Widths) == 0 {
		t.Fatal("no widths measured")
	}
	for _, w := range p.Widths {
		t.Logf("%4d-bit: %.1f GFLOP/s per core", w.Bits, w.GFLOPS)
		if !(w.GFLOPS > 0) || math.IsInf(w.GFLOPS, 0) {
			t.Errorf("%d-bit peak %v, want a positive finite number", w.Bits, w.GFLOPS)
		}
	}
	if !(p.GFLOPS > 0) {
		t.Errorf("no peak for the %s kernels' width %d", p.Kernel, p.Bits)
	}
	for _, k := range cpuKernels() {
		found := false
		for _, w := range p.Widths {
			found = found || w.Bits == k.bits
		}
		if !found {
			t.Errorf("kernel set %s (%d-bit) has no probe", k.name, k.bits)
		}
	}
	if q := Peak(); q.GFLOPS != p.GFLOPS {
		t.Errorf("Peak is measured again: %v then %v", p.GFLOPS, q.GFLOPS)
	}
}
