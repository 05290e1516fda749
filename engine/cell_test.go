package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convlstm-go/convlstm-go/convlstm"
)

func randLayer(rng *rand.Rand, in, hd, kh, kw int) convlstm.Layer {
	s := 1 / math.Sqrt(float64((in+hd)*kh*kw))
	return convlstm.Layer{
		LayerConfig: convlstm.LayerConfig{InputDim: in, HiddenDim: hd, KernelH: kh, KernelW: kw, HasBias: true},
		Weight:      randSlice(rng, 4*hd*(in+hd)*kh*kw, s),
		Bias:        randSlice(rng, 4*hd, s),
	}
}

// Step, the interpreter's one-step call with the state held outside (in
// place, or into other buffers), gives the same bits as Run over the whole
// sequence, on both algorithms; and a permuted gate order gives the same
// result as the permuted weights.
func TestCellStepMatchesRun(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		in, hd, kh, kw int
		algo           Algo
	}{
		{2, 5, 3, 3, Direct}, {3, 16, 3, 3, Winograd}, {16, 16, 3, 3, Winograd}, {1, 16, 5, 5, Winograd}, {4, 6, 5, 1, Direct},
	} {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			const B, T, H, W = 2, 3, 5, 7
			l := randLayer(rng, tc.in, tc.hd, tc.kh, tc.kw)
			cell, err := NewCell(l, convlstm.GatesIFOG, false)
			if err != nil {
				t.Fatal(err)
			}
			if cell.Algo() != tc.algo {
				t.Fatalf("algorithm %s, want %s", cell.Algo(), tc.algo)
			}
			pool := NewPool(2)
			defer pool.Close()
			x := randSlice(rng, B*T*tc.in*H*W, 1)
			plane := H * W
			// Run over the sequence, batch-first.
			ref := make([]float32, B*T*tc.hd*plane)
			p := cell.NewPlan(B, H, W, T, 2)
			p.ZeroState()
			p.Run(pool, SeqLayout(x, B, T, tc.in, plane, false), SeqLayout(ref, B, T, tc.hd, plane, false), T, true)
			hRef, cRef := make([]float32, B*tc.hd*plane), make([]float32, B*tc.hd*plane)
			p.State(hRef, cRef)
			// Step by step, state outside.
			q := cell.NewPlan(B, H, W, 1, 2)
			h, c := make([]float32, B*tc.hd*plane), make([]float32, B*tc.hd*plane)
			for step := 0; step < T; step++ {
				xt := make([]float32, B*tc.in*plane)
				for b := 0; b < B; b++ {
					copy(xt[b*tc.in*plane:(b+1)*tc.in*plane], x[(b*T+step)*tc.in*plane:])
				}
				if step%2 == 0 {
					q.Step(pool, xt, h, c, h, c) // in place
				} else {
					h2, c2 := make([]float32, len(h)), make([]float32, len(c))
					q.Step(pool, xt, h, c, h2, c2)
					h, c = h2, c2
				}
				for b := 0; b < B; b++ {
					for i := 0; i < tc.hd*plane; i++ {
						if got, want := h[b*tc.hd*plane+i], ref[(b*T+step)*tc.hd*plane+i]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("step %d, batch %d, value %d: Step %v, Run %v", step, b, i, got, want)
						}
					}
				}
			}
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(cRef[i]) || math.Float32bits(h[i]) != math.Float32bits(hRef[i]) {
					t.Fatalf("final state %d differs", i)
				}
			}
		})
	}
}

func TestNewCellErrors(t *testing.T) {
	l := randLayer(rand.New(rand.NewPCG(1, 1)), 2, 3, 3, 3)
	if _, err := NewCell(l, "ifgx", false); err == nil {
		t.Error("bad gate order accepted")
	}
	l.Weight = l.Weight[:10]
	if _, err := NewCell(l, convlstm.GatesIFOG, false); err == nil {
		t.Error("short weight accepted")
	}
}

// panicTask panics in part p.part; part 0 first waits (up to 2 s) for
// part 1 to start, so that part 1 runs on a worker, not after part 0 on
// the caller.
type panicTask struct {
	part    int
	started chan struct{}
}

func (p panicTask) Run(part, parts int) {
	if part == 1 {
		close(p.started)
	} else {
		select {
		case <-p.started:
		case <-time.After(2 * time.Second):
		}
	}
	if part == p.part {
		panic(fmt.Sprintf("boom in part %d", part))
	}
}

// A panic in any part reaches the caller of Do (where the API boundary's
// recover turns it into an error), the process survives, and the pool
// keeps working.
func TestPoolPanic(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	for _, part := range []int{0, 1} {
		func() {
			defer func() {
				if r := recover(); r == nil || !contains(fmt.Sprint(r), fmt.Sprintf("boom in part %d", part)) || part == 1 && !contains(fmt.Sprint(r), "panicTask.Run") {
					t.Errorf("part %d: recovered %v", part, r)
				}
			}()
			pool.Do(panicTask{part, make(chan struct{})}, 2)
		}()
	}
	done := 0
	pool.Do(countTask{&done}, 1)
	if done != 1 {
		t.Error("pool unusable after a panic")
	}
}

type countTask struct{ n *int }

func (c countTask) Run(part, parts int) { *c.n++ }

type countParts struct{ seen []atomic.Int32 }

func (c *countParts) Run(part, parts int) { c.seen[part].Add(1) }

// Every part of every Do runs exactly once, whoever claims it: the caller
// or a worker, on time or after the Do it was sent for has returned (many
// short Dos in a row leave late workers behind).
func TestPoolClaimsEveryPartOnce(t *testing.T) {
	pool := NewPool(3)
	defer pool.Close()
	for i := 0; i < 20000; i++ {
		parts := 2 + i%2
		c := &countParts{seen: make([]atomic.Int32, parts)}
		pool.Do(c, parts)
		for p := range c.seen {
			if n := c.seen[p].Load(); n != 1 {
				t.Fatalf("Do %d: part %d of %d ran %d times", i, p, parts, n)
			}
		}
	}
}

type nopTask struct{}

func (nopTask) Run(part, parts int) {}

// A Do allocates nothing, from the first call, even when the workers are
// always late: with one OS thread they run only when the caller yields,
// and the states they will release pile up in the queue (CI saw
// Stream.Step allocate once per call at 2 threads on a loaded machine:
// a new pool allocated until enough states were in circulation).
func TestPoolDoAllocatesNothing(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(1))
	for _, n := range []int{2, 3, 8} {
		pool := NewPool(n)
		var before, after goruntime.MemStats
		goruntime.ReadMemStats(&before)
		for range 200 {
			pool.Do(nopTask{}, n)
		}
		goruntime.ReadMemStats(&after)
		if a := after.Mallocs - before.Mallocs; a != 0 {
			t.Errorf("%d threads: 200 Dos on a new pool allocated %d times, want 0", n, a)
		}
		pool.Close()
	}
}
