package graph

import (
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Independent nodes of the main graph run at the same time, one per
// thread, when there is more than one ready: a U-Net's encoder of the next
// frame beside the ConvLSTM step of this one, a cell's input and
// recurrent convolutions side by side. Their kernels then run whole on
// their own core (the pool is reserved: engine.Pool.Reserve), where split
// between the cores they would have cost more in moving data from one
// core's cache to the other's than they saved (a 16→16 3×3 convolution at
// 64×64 took 170 µs at 2 threads against 97 at 1 on the 2-core test VM).
// A node alone (nothing else ready or running) splits its work as before.
// Every kernel's result is the same however it runs, so the outputs do not
// depend on the schedule.

// deps is the dependency structure of a program, for the scheduler.
type deps struct {
	pending []int      // producers in the program each node waits for
	next    [][]int    // the nodes that wait for each node
	reads   [][]string // each node's input names, each once (extra included)
	readers map[string]int
	barrier []bool // runs alone, in order (subgraphs, sequences)

	// The order of the nodes' start (order.go): each node's shortest time
	// (ns) in the timed runs, how many concurrent runs ended well, and the
	// spine.
	mu    sync.Mutex
	cost  []int64
	runs  int
	order atomic.Pointer[spine]
}

func (p *program) deps() *deps {
	p.depsOnce.Do(func() {
		d := &deps{pending: make([]int, len(p.nodes)), next: make([][]int, len(p.nodes)), reads: make([][]string, len(p.nodes)),
			readers: map[string]int{}, barrier: make([]bool, len(p.nodes))}
		producer := map[string]int{}
		for i, n := range p.nodes {
			var names []string
			for _, name := range slices.Concat(n.in, n.extra) {
				if name != "" && !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
			d.reads[i] = names
			var from []int
			for _, name := range names {
				d.readers[name]++
				if j, ok := producer[name]; ok && !slices.Contains(from, j) {
					from = append(from, j)
				}
			}
			for _, j := range from {
				d.next[j] = append(d.next[j], i)
			}
			d.pending[i] = len(from)
			for _, o := range n.out {
				if o != "" {
					producer[o] = i
				}
			}
			d.barrier[i] = len(n.sub) > 0 || len(n.extra) > 0 || n.def.seqIn || sequenceOps[n.op]
		}
		if sp := d.makeSpine(make([]int64, len(p.nodes))); sp != nil {
			d.order.Store(sp) // by count of nodes until runs are timed
		}
		p.sched = d
	})
	return p.sched
}

// sequenceOps make sequences (exec.seqs): they run on the main goroutine.
var sequenceOps = map[string]bool{"SequenceEmpty": true, "SequenceConstruct": true, "SplitToSequence": true}

// scheduler is the state of one concurrent run of a program.
type scheduler struct {
	x        *exec
	p        *program
	s        *scope
	d        *deps
	pool     *engine.Pool
	mu       sync.Mutex
	cond     *sync.Cond
	pending  []int
	ready    []int // node indices, ascending
	started  []bool
	done     []bool
	first    int     // the lowest index not done
	spine    *spine  // nil: the lowest index first
	next     int     // the spine's next node not started (its position)
	dur      []int64 // this run's node times, when it is timed
	running  int
	finished int
	reserved bool
	err      error
	errAt    int
}

// runConcurrent is run for the main program with x.g.threads goroutines
// taking ready nodes, the lowest index first.
func (x *exec) runConcurrent(p *program, s *scope) ([]*tensor.Tensor, error) {
	d := p.deps()
	sc := &scheduler{x: x, p: p, s: s, d: d, pool: poolFor(x.g.threads), pending: slices.Clone(d.pending),
		started: make([]bool, len(p.nodes)), done: make([]bool, len(p.nodes)), errAt: len(p.nodes)}
	sc.cond = sync.NewCond(&sc.mu)
	sc.spine = d.order.Load()
	d.mu.Lock()
	if d.runs >= 1 && d.runs <= timedRuns {
		sc.dur = make([]int64, len(p.nodes))
	}
	d.mu.Unlock()
	for i, k := range sc.pending {
		if k == 0 {
			sc.ready = append(sc.ready, i)
		}
	}
	x.mu = &sc.mu
	x.left = make(map[string]int, len(d.readers))
	for name, k := range d.readers {
		x.left[name] = k
	}
	saveP, saveS := x.p, x.s
	initial := maps.Clone(s.vals)
	var wg sync.WaitGroup
	locals := make([]*arena, x.g.threads)
	for i := range locals {
		locals[i] = &arena{}
	}
	for i := range x.g.threads - 1 {
		v := *x // a view: its own current node and frame, the same books
		v.local, v.worker = locals[i+1], i+1
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc.work(&v, false)
		}()
	}
	x.local = locals[0]
	sc.work(x, true)
	wg.Wait()
	x.local = nil
	for _, l := range locals {
		l.drain(&x.g.arena)
	}
	x.mu, x.left = nil, nil
	x.p, x.s = saveP, saveS
	if sc.reserved {
		sc.pool.Unreserve()
	}
	if sc.err == nil {
		d.learn(sc.dur)
	}
	if sc.err != nil {
		clear(s.vals)
		maps.Copy(s.vals, initial)
		return nil, sc.err
	}
	return x.outputs(p, s)
}

// work takes and runs ready nodes until all are done or one failed. Only
// the main goroutine (main) runs barriers: they may touch the exec's own
// fields (sequences, deferred holds).
func (sc *scheduler) work(x *exec, main bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for {
		if sc.err != nil || sc.finished == len(sc.p.nodes) {
			sc.cond.Broadcast()
			return
		}
		i, solo := sc.pick(main)
		if i < 0 {
			sc.cond.Wait()
			continue
		}
		sc.started[i] = true
		sc.running++
		if sp := sc.spine; sp != nil {
			for sc.next < len(sp.path)-1 && sc.started[sp.path[sc.next]] {
				sc.next++
			}
		}
		switch {
		case solo && sc.reserved:
			sc.pool.Unreserve()
			sc.reserved = false
		case !solo && !sc.reserved:
			sc.reserve()
		}
		if !solo && len(sc.ready) > 0 {
			sc.cond.Signal()
		}
		n := sc.p.nodes[i]
		in, err := sc.inputs(x, n)
		var outs []*tensor.Tensor
		if err == nil {
			sc.mu.Unlock()
			var t0 time.Time
			if sc.dur != nil {
				t0 = time.Now()
			}
			outs, err = sc.run(x, n, in)
			if sc.dur != nil {
				sc.dur[i] = int64(time.Since(t0))
			}
			sc.mu.Lock()
		}
		sc.running--
		sc.finish(x, i, outs, err)
		if sc.reserved && sc.running == 1 && !sc.startable() {
			// The node left running has the cores to itself until it is
			// done: its next kernels may split again.
			sc.pool.Unreserve()
			sc.reserved = false
		}
		sc.cond.Broadcast()
	}
}

// reserve takes the pool for nodes about to run side by side. A node
// running alone may be in the middle of a split kernel: wait for it (a
// kernel takes well under a millisecond), but not for another run of the
// graph holding the pool longer.
func (sc *scheduler) reserve() {
	if sc.pool.Reserve() {
		sc.reserved = true
		return
	}
	for t0 := time.Now(); time.Since(t0) < reserveWait; {
		sc.mu.Unlock() // the running kernel's allocations take it
		runtime.Gosched()
		sc.mu.Lock()
		if sc.reserved || sc.running == 1 {
			return // another worker took it, or this node now runs alone
		}
		if sc.pool.Reserve() {
			sc.reserved = true
			return
		}
	}
}

// reserveWait bounds reserve's wait for the pool.
const reserveWait = 2 * time.Millisecond

// startable reports whether a ready node could start now.
func (sc *scheduler) startable() bool {
	for _, i := range sc.ready {
		if !sc.d.barrier[i] || sc.first == i && sc.running == 0 {
			return true
		}
	}
	return false
}

// pick removes the next node to run from the ready list (-1: none may
// start now) and says whether it runs alone, free to split its kernels
// over the pool: nothing else runs or can start until it is done. The
// node picked is the lowest ready one, unless the spine (order.go) says a
// ready node is wanted sooner.
func (sc *scheduler) pick(main bool) (int, bool) {
	take := -1
	for k, i := range sc.ready {
		if sc.d.barrier[i] {
			// In order and alone: every node before it done, none running.
			if !main || sc.first != i || sc.running > 0 {
				if sc.first == i {
					return -1, false // let the running ones drain
				}
				continue
			}
			sc.ready = slices.Delete(sc.ready, k, k+1)
			return i, true
		}
		if take < 0 {
			take = k
			if sc.spine == nil {
				break
			}
		}
		if sc.spine != nil && sc.spine.need[i] == sc.spine.path[sc.next] {
			take = k
			break
		}
	}
	if take < 0 {
		return -1, false
	}
	i := sc.ready[take]
	sc.ready = slices.Delete(sc.ready, take, take+1)
	return i, sc.running == 0 && len(sc.ready) == 0
}

// inputs gathers node n's inputs into a scope of its own (the kernels of
// fused nodes bind their intermediate values there), or for a barrier
// runs it in the program's scope.
func (sc *scheduler) inputs(x *exec, n *node) ([]*tensor.Tensor, error) {
	in, err := x.nodeInputs(sc.p, sc.s, n)
	if err != nil {
		return nil, err
	}
	x.p, x.cur = sc.p, n
	if sc.d.barrier[n.idx] {
		x.s = sc.s
		return in, nil
	}
	x.s = &scope{vals: make(map[string]*tensor.Tensor, len(in))}
	for i, name := range n.in {
		if in[i] != nil {
			x.s.vals[name] = in[i]
		}
	}
	return in, nil
}

// run runs node n's kernel, unlocked; a panic becomes the run's error.
func (sc *scheduler) run(x *exec, n *node, in []*tensor.Tensor) (outs []*tensor.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = internalError(x.g.File, n, "running", r)
		}
	}()
	mark := len(x.deferred)
	if outs, err = x.runKernel(n, in); err != nil {
		return nil, err
	}
	if sc.d.barrier[n.idx] {
		// Only the main goroutine runs barriers, alone: the holds its
		// subgraphs deferred are settled once its outputs are held.
		sc.mu.Lock()
		sc.publish(x, n, outs)
		sc.mu.Unlock()
		for _, t := range x.deferred[mark:] {
			x.release(t)
		}
		x.deferred = x.deferred[:mark]
		return nil, nil
	}
	return outs, nil
}

// publish binds n's outputs in the program's scope and holds them.
func (sc *scheduler) publish(x *exec, n *node, outs []*tensor.Tensor) {
	x.bindOutputs(sc.p, sc.s, n, outs)
}

// finish records node i done: its outputs bound, the inputs it was the
// last reader of dropped, the nodes waiting for it made ready.
func (sc *scheduler) finish(x *exec, i int, outs []*tensor.Tensor, err error) {
	n := sc.p.nodes[i]
	if err != nil {
		// The lowest node's error, as a sequential run would report it
		// (nodes before it that have not run cannot fail after it).
		if i < sc.errAt {
			sc.err, sc.errAt = err, i
		}
		return
	}
	if !sc.d.barrier[i] {
		sc.publish(x, n, outs)
	}
	for _, name := range sc.d.reads[i] {
		if x.left[name]--; x.left[name] == 0 && sc.p.lastUse[name] != len(sc.p.nodes) {
			x.dropLocked(sc.s, name)
		}
	}
	sc.done[i] = true
	sc.finished++
	for sc.first < len(sc.done) && sc.done[sc.first] {
		sc.first++
	}
	for _, j := range sc.d.next[i] {
		if sc.pending[j]--; sc.pending[j] == 0 {
			k, _ := slices.BinarySearch(sc.ready, j)
			sc.ready = slices.Insert(sc.ready, k, j)
		}
	}
}
