package runtime

import "sync"

// task is work split into parts: part p of n runs on one worker. Tasks are
// fields of long-lived plan structs, so handing one to the pool allocates
// nothing.
type task interface {
	run(part, parts int)
}

type job struct {
	t           task
	part, parts int
}

// pool is a fixed set of workers. The caller runs part 0 itself.
type pool struct {
	n    int
	jobs chan job
	wg   sync.WaitGroup
	once sync.Once
}

func newPool(n int) *pool {
	p := &pool{n: n}
	if n > 1 {
		p.jobs = make(chan job, n)
		for i := 1; i < n; i++ {
			go func() {
				for j := range p.jobs {
					j.t.run(j.part, j.parts)
					p.wg.Done()
				}
			}()
		}
	}
	return p
}

// do runs t split into parts (at most the pool's size) and waits for all.
func (p *pool) do(t task, parts int) {
	parts = max(1, min(parts, p.n))
	if parts == 1 {
		t.run(0, 1)
		return
	}
	p.wg.Add(parts - 1)
	for i := 1; i < parts; i++ {
		p.jobs <- job{t, i, parts}
	}
	t.run(0, parts)
	p.wg.Wait()
}

func (p *pool) close() {
	p.once.Do(func() {
		if p.jobs != nil {
			close(p.jobs)
		}
	})
}
