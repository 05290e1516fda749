package server

import (
	"testing"
)

// TestRunnerCache: runners are reused per geometry, and the cache's
// B·H·W stays within twice the largest entry's.
func TestRunnerCache(t *testing.T) {
	n := native(t, randomModel(1, 1, []int{2}, 3))
	defer n.Close()
	r8 := n.runner(8, 4, 4)
	if n.runner(8, 4, 4) != r8 {
		t.Error("same geometry, another runner")
	}
	for _, b := range []int{1, 2, 3, 4, 5, 6, 7, 8, 3, 5, 1} {
		n.runner(b, 4, 4)
		total, largest := 0, 0
		for _, c := range n.runners {
			total += c.b * c.h * c.w
			largest = max(largest, c.b*c.h*c.w)
		}
		if total > 2*largest || len(n.runners) > maxRunners {
			t.Fatalf("after B=%d: cache %v rows·pixels, largest %d", b, total, largest)
		}
	}
	if got := n.runner(1, 4, 4); got != n.runner(1, 4, 4) {
		t.Error("the most recent geometry was not kept")
	}
}
