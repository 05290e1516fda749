package engine

import (
	"fmt"
	goruntime "runtime"
	"runtime/debug"
	"sync"
)

// Task is work split into parts: part p of n runs on one worker. The result
// of every kernel here does not depend on how it is split, so a Task may be
// run with any number of parts. Tasks live in long-lived plan structs, so
// handing one to the pool allocates nothing.
type Task interface {
	Run(part, parts int)
}

type job struct {
	t           Task
	part, parts int
}

// Pool is a fixed set of worker goroutines that stay alive between calls,
// so that splitting a millisecond-sized step over the cores costs a wake-up,
// not a goroutine start. The caller of Do runs part 0 itself.
//
// Do may be called from several goroutines at once (a graph shared by
// concurrent requests): one call at a time owns the workers, and a call
// that finds them busy runs its parts itself, in order, rather than wait.
// Since results do not depend on the split, either way gives the same bits.
type Pool struct {
	n     int
	jobs  chan job
	wg    sync.WaitGroup
	mu    sync.Mutex // held by the Do that owns the workers
	once  sync.Once
	panic chan any // a worker's panic, handed to the Do that owns it
}

// NewPool starts n-1 workers (n ≤ 0: one per CPU).
func NewPool(n int) *Pool {
	if n <= 0 {
		n = goruntime.GOMAXPROCS(0)
	}
	p := &Pool{n: n, panic: make(chan any, n)}
	if n > 1 {
		p.jobs = make(chan job, n)
		for i := 1; i < n; i++ {
			go p.work()
		}
	}
	return p
}

func (p *Pool) work() {
	for j := range p.jobs {
		p.runJob(j)
	}
}

// WorkerPanic is what Do re-raises when a part run by a worker panicked:
// the value and the worker's stack (the caller's would not show where).
type WorkerPanic struct {
	Value any
	Stack []byte
}

func (w WorkerPanic) String() string { return fmt.Sprintf("%v\n%s", w.Value, w.Stack) }

// runJob runs one part; a panic is passed to Do, which re-raises it in the
// caller's goroutine, where the API boundary's recover turns it into an
// error (a panic left in a worker would kill the process).
func (p *Pool) runJob(j job) {
	defer p.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			p.panic <- WorkerPanic{Value: r, Stack: debug.Stack()}
		}
	}()
	j.t.Run(j.part, j.parts)
}

// Threads is the number of threads Do can use.
func (p *Pool) Threads() int { return p.n }

// Do runs t split into parts (clamped to 1..Threads) and returns when all
// parts are done.
func (p *Pool) Do(t Task, parts int) {
	parts = max(1, min(parts, p.n))
	if parts == 1 {
		t.Run(0, 1)
		return
	}
	if !p.mu.TryLock() {
		for i := 0; i < parts; i++ {
			t.Run(i, parts)
		}
		return
	}
	defer p.mu.Unlock()
	for len(p.panic) > 0 {
		<-p.panic // left by a worker while part 0 itself panicked
	}
	p.wg.Add(parts - 1)
	for i := 1; i < parts; i++ {
		p.jobs <- job{t, i, parts}
	}
	func() {
		// Wait for the workers even if part 0 panics, so that no worker
		// still runs this task when the panic unwinds past its buffers.
		defer p.wg.Wait()
		t.Run(0, parts)
	}()
	select {
	case r := <-p.panic:
		panic(r)
	default:
	}
}

// Close stops the workers. The Pool must not be used afterwards.
func (p *Pool) Close() {
	p.once.Do(func() {
		if p.jobs != nil {
			close(p.jobs)
		}
	})
}

// Split returns part's share [lo, hi) of n items, in blocks of align: the
// parts cover 0..n in order and differ in size by at most one block.
func Split(n, part, parts, align int) (int, int) {
	blocks := (n + align - 1) / align
	lo := blocks * part / parts * align
	hi := blocks * (part + 1) / parts * align
	return min(lo, n), min(hi, n)
}

// minWorkPerThread (in flops) keeps small kernels on one thread, where
// (a variable so that tests can make every kernel split)
// waking a worker costs more than it saves.
var minWorkPerThread = 1 << 18

// PartsFor is how many parts a kernel of work flops is worth splitting into.
func (p *Pool) PartsFor(work int) int {
	return max(1, min(p.n, work/minWorkPerThread))
}
