package engine

import (
	"fmt"
	goruntime "runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Task is work split into parts: part p of n runs on one worker. The result
// of every kernel here does not depend on how it is split, so a Task may be
// run with any number of parts. Tasks live in long-lived plan structs, so
// handing one to the pool allocates nothing.
type Task interface {
	Run(part, parts int)
}

// Pool is a fixed set of worker goroutines that stay alive between calls,
// so that splitting a millisecond-sized step over the cores costs a wake-up,
// not a goroutine start.
//
// The parts of a Do are claimed, one at a time, by whoever is running: the
// caller starts on part 0 and goes on with the next unclaimed part; a
// worker, once the scheduler runs it, claims what is left. So a worker that
// is slow to wake (the machine is shared and its core busy) costs nothing:
// the caller does its parts too and returns, waiting only for parts a
// worker has started. Statically assigned parts made 2 threads slower than
// one on the loaded 2-core test machine (a 2-part task behind 100 µs of
// serial work: 300-360 µs per round against 256 µs on one thread).
//
// Do may be called from several goroutines at once (a graph shared by
// concurrent requests): one call at a time owns the workers, and a call
// that finds them busy runs its parts itself, in order, rather than wait.
// Since results do not depend on the split, either way gives the same bits.
type Pool struct {
	n    int
	jobs chan *doState
	mu   sync.Mutex // held by the Do that owns the workers
	once sync.Once
	free chan *doState // states no goroutine refers to any more (5n of them)
}

// doState is one Do's parts: claimed by index, counted down as they finish.
// The caller and each worker it sent the state to hold a reference; the
// last one to let go returns it to the pool's free list (a worker may
// arrive after the Do has returned: it finds nothing left to claim).
type doState struct {
	t       Task
	parts   int32
	next    atomic.Int32 // the next part to claim
	pending atomic.Int32 // parts not finished (or skipped)
	refs    atomic.Int32
	wake    chan struct{} // the worker that finishes the last part tells the caller
	mu      sync.Mutex
	panic   any // the first worker panic, a WorkerPanic
}

// NewPool starts n-1 workers (n ≤ 0: one per CPU).
func NewPool(n int) *Pool {
	if n <= 0 {
		n = goruntime.GOMAXPROCS(0)
	}
	p := &Pool{n: n}
	if n > 1 {
		p.jobs = make(chan *doState, 4*n)
		// States not free are in the queue, held by a worker, or the
		// caller's: at most 4n + n-1 when a Do takes one, so 5n states
		// mean a Do never allocates, however late the workers run.
		p.free = make(chan *doState, 5*n)
		for range 5 * n {
			p.free <- &doState{wake: make(chan struct{}, 1)}
		}
		for i := 1; i < n; i++ {
			go p.work()
		}
	}
	return p
}

func (p *Pool) work() {
	for {
		s, ok := p.next()
		if !ok {
			return
		}
		if s.claim(true) {
			s.wake <- struct{}{}
		}
		p.release(s)
	}
}

// workerSpin is how long a worker keeps looking for the next job before it
// blocks: the steps of a graph call Do many times with a little serial
// work in between, and a blocked worker takes 100-200 µs to run again on
// the 2-core test machine (a sleeping virtual CPU) — longer than most
// parts. The spin costs CPU time while the caller works alone, as ONNX
// Runtime's spinning threads do.
var workerSpin = 200 * time.Microsecond

// next is the next job, after spinning for up to workerSpin; false when
// the pool is closed.
func (p *Pool) next() (*doState, bool) {
	select {
	case s, ok := <-p.jobs:
		return s, ok
	default:
	}
	for t0 := time.Now(); time.Since(t0) < workerSpin; {
		for range 32 {
			select {
			case s, ok := <-p.jobs:
				return s, ok
			default:
			}
		}
		goruntime.Gosched()
	}
	s, ok := <-p.jobs
	return s, ok
}

// claim runs unclaimed parts until none is left; it reports whether it
// finished the last one. A worker's panic is kept for the caller (a panic
// left in a worker would kill the process); the caller's own propagates
// (Do settles the parts first).
func (s *doState) claim(worker bool) (last bool) {
	for {
		i := s.next.Add(1) - 1
		if i >= s.parts {
			return last
		}
		if worker {
			s.runCaught(int(i))
		} else {
			s.t.Run(int(i), int(s.parts))
		}
		last = s.pending.Add(-1) == 0
	}
}

func (s *doState) runCaught(i int) {
	defer func() {
		if r := recover(); r != nil {
			s.mu.Lock()
			if s.panic == nil {
				s.panic = WorkerPanic{Value: r, Stack: debug.Stack()}
			}
			s.mu.Unlock()
		}
	}()
	s.t.Run(i, int(s.parts))
}

func (p *Pool) release(s *doState) {
	if s.refs.Add(-1) != 0 {
		return
	}
	s.t, s.panic = nil, nil
	select {
	case p.free <- s:
	default:
	}
}

// WorkerPanic is what Do re-raises when a part run by a worker panicked:
// the value and the worker's stack (the caller's would not show where).
type WorkerPanic struct {
	Value any
	Stack []byte
}

func (w WorkerPanic) String() string { return fmt.Sprintf("%v\n%s", w.Value, w.Stack) }

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
	var s *doState
	select {
	case s = <-p.free:
	default:
		s = &doState{wake: make(chan struct{}, 1)}
	}
	s.t, s.parts = t, int32(parts)
	s.next.Store(0)
	s.pending.Store(int32(parts))
	s.refs.Store(int32(parts)) // the caller and parts-1 workers
	for i := 1; i < parts; i++ {
		select {
		case p.jobs <- s:
		default: // the queue is full of late jobs: the caller claims more
			s.refs.Add(-1)
		}
	}
	func() {
		// Settle the parts even if one of the caller's panics: skip those
		// not claimed yet and wait for those a worker runs, so that no
		// worker still runs this task when the panic unwinds past its
		// buffers.
		last, running := false, false
		defer func() {
			if running { // the caller's part panicked
				left := max(0, s.parts-s.next.Swap(s.parts))
				last = s.pending.Add(-1-left) == 0
			}
			if !last {
				// A worker runs the last parts: spin while it does
				// (parking costs a slow wake-up), then take its token.
				for t0 := time.Now(); s.pending.Load() != 0 && time.Since(t0) < workerSpin; {
					goruntime.Gosched()
				}
				<-s.wake
			}
		}()
		for {
			i := s.next.Add(1) - 1
			if i >= s.parts {
				break
			}
			running = true
			t.Run(int(i), parts)
			running = false
			last = s.pending.Add(-1) == 0
		}
	}()
	r := s.panic
	p.release(s)
	if r != nil {
		panic(r)
	}
}

// Reserve takes the workers away from Do, if no Do owns them: until
// Unreserve, every Do runs its parts itself, in order, on its caller (the
// results are the same: they do not depend on the split). A scheduler
// that runs several kernels at once on their own goroutines reserves the
// pool so that none of them also splits its work among the cores, which
// would put three threads on two cores. Reports false when the workers
// are busy; the caller then goes on without the reservation.
func (p *Pool) Reserve() bool { return p.mu.TryLock() }

// Unreserve ends a Reserve that returned true; any goroutine may call it.
func (p *Pool) Unreserve() { p.mu.Unlock() }

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
