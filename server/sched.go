package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// schedConfig bounds one model's scheduler.
type schedConfig struct {
	maxBatch      int           // rows stacked into one forward pass
	batchDelay    time.Duration // how long a request may wait for others to batch with
	maxSequences  int           // live sequences
	maxStateBytes int64         // memory all live sequences' states may hold
	sequenceIdle  time.Duration // a sequence untouched this long is freed
	maxQueue      int           // requests waiting (queued or running)
}

// job is one request inside the scheduler.
type job struct {
	ctx     context.Context
	p       *Prepared
	seq     seqParams
	enq     time.Time // arrival
	readyAt time.Time // when it could first run (its sequence's turn)
	state   State     // the state it starts from (sequence steps)
	done    chan jobResult
}

type jobResult struct {
	res      Result
	queued   time.Duration
	compute  time.Duration
	batchRow int
}

// sequence is one live (or starting) sequence: its state and the steps
// waiting for their turn, applied strictly in arrival order.
type sequence struct {
	key        string
	state      State
	live       bool
	queue      []*job // queue[0] is ready or running when running is set
	running    bool
	last       time.Time
	stateBytes int64
}

type finished struct {
	jobs    []*job
	res     []Result
	compute time.Duration
}

// scheduler owns one model's sequences and batches: a single goroutine
// (loop) holds all the state, so nothing in it needs a lock; one executor
// goroutine runs the backend, which never sees two batches at once.
type scheduler struct {
	model string
	be    Backend
	cfg   schedConfig
	m     *metrics
	log   *slog.Logger

	submit   chan *job
	finished chan finished
	exec     chan []*job
	stop     chan struct{}
	stopped  chan struct{}

	// Owned by loop.
	seqs       map[string]*sequence
	ready      []*job
	queued     int
	busy       bool
	closing    bool
	stateBytes int64
	timer      *time.Timer
	timerAt    time.Time
}

func newScheduler(model string, be Backend, cfg schedConfig, m *metrics, log *slog.Logger) *scheduler {
	s := &scheduler{
		model: model, be: be, cfg: cfg, m: m, log: log,
		submit:   make(chan *job),
		finished: make(chan finished, 1),
		exec:     make(chan []*job, 1),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		seqs:     map[string]*sequence{},
		timer:    time.NewTimer(time.Hour),
	}
	s.timer.Stop()
	go s.loop()
	go s.executor()
	return s
}

// enqueue hands a job to the scheduler; from then on its place in its
// sequence's order is fixed. Its result comes on j.done (see wait).
func (s *scheduler) enqueue(j *job) error {
	j.done = make(chan jobResult, 1)
	j.enq = time.Now()
	select {
	case s.submit <- j:
		return nil
	case <-j.ctx.Done():
		return ctxError(j.ctx)
	case <-s.stopped:
		return errorf(Unavailable, "the server is shutting down")
	}
}

// wait returns an enqueued job's result, or gives up when its context
// ends: the loop then drops the job if it has not started, or discards
// its result (a sequence step that ran still advanced the state).
func (s *scheduler) wait(j *job) jobResult {
	select {
	case r := <-j.done:
		return r
	case <-j.ctx.Done():
		return jobResult{res: Result{Err: ctxError(j.ctx)}}
	}
}

func ctxError(ctx context.Context) error {
	if ctx.Err() == context.DeadlineExceeded {
		return errorf(Timeout, "the request timed out before it was answered")
	}
	return errorf(Canceled, "the client went away")
}

// close stops the scheduler once the running batch (if any) is done; jobs
// still waiting are answered "shutting down".
func (s *scheduler) close() {
	close(s.stop)
	<-s.stopped
}

func (s *scheduler) executor() {
	for batch := range s.exec {
		items := make([]Work, len(batch))
		for i, j := range batch {
			items[i] = Work{Prepared: j.p, State: j.state}
		}
		t0 := time.Now()
		res := s.run(items)
		s.finished <- finished{jobs: batch, res: res, compute: time.Since(t0)}
	}
}

// run calls the backend, turning a panic into an error for the batch (the
// API boundary between the server and an engine).
func (s *scheduler) run(items []Work) (res []Result) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("backend panicked", "model", s.model, "panic", fmt.Sprint(r))
			res = make([]Result, len(items))
			for i := range res {
				res[i].Err = errorf(Internal, "the model failed on this request: %v", r)
			}
		}
	}()
	res = s.be.Run(items)
	if len(res) != len(items) {
		panic(fmt.Sprintf("backend returned %d results for %d requests", len(res), len(items)))
	}
	return res
}

func (s *scheduler) loop() {
	defer close(s.stopped)
	defer close(s.exec)
	tick := time.NewTicker(max(10*time.Millisecond, min(time.Second, s.cfg.sequenceIdle/4)))
	defer tick.Stop()
	for {
		select {
		case j := <-s.submit:
			s.accept(j)
		case f := <-s.finished:
			s.complete(f)
		case <-s.timer.C:
			s.timerAt = time.Time{}
		case now := <-tick.C:
			s.expire(now)
		case <-s.stop:
			s.closing = true
			s.stop = nil
		}
		if s.closing && !s.busy {
			s.drain()
			return
		}
		s.dispatch()
	}
}

// drain answers every waiting job at shutdown.
func (s *scheduler) drain() {
	err := errorf(Unavailable, "the server is shutting down")
	for _, j := range s.ready {
		j.done <- jobResult{res: Result{Err: err}}
	}
	for _, q := range s.seqs {
		for _, j := range q.queue {
			if !j.inReady() {
				j.done <- jobResult{res: Result{Err: err}}
			}
		}
	}
	s.ready = nil
	s.seqs = map[string]*sequence{}
	s.m.sequences.WithLabelValues(s.model).Set(0)
}

func (j *job) inReady() bool { return !j.readyAt.IsZero() }

func (s *scheduler) reply(j *job, r jobResult) {
	s.queued--
	s.m.queued.WithLabelValues(s.model).Set(float64(s.queued))
	j.done <- r
}

func (s *scheduler) fail(j *job, err error) {
	s.reply(j, jobResult{res: Result{Err: err}})
}

func (s *scheduler) accept(j *job) {
	if s.closing {
		j.done <- jobResult{res: Result{Err: errorf(Unavailable, "the server is shutting down")}}
		return
	}
	if s.queued >= s.cfg.maxQueue {
		j.done <- jobResult{res: Result{Err: errorf(Unavailable, "model %q has %d requests waiting (--max-queue); retry later", s.model, s.queued)}}
		return
	}
	s.queued++
	s.m.queued.WithLabelValues(s.model).Set(float64(s.queued))
	if j.seq.key == "" {
		s.makeReady(j)
		return
	}
	q := s.seqs[j.seq.key]
	if q == nil {
		if !j.seq.start {
			s.fail(j, errorf(BadRequest, "sequence %s is not live: it was never started, has ended or was idle for longer than %v; send sequence_start", seqName(j.seq.key), s.cfg.sequenceIdle))
			return
		}
		if len(s.seqs) >= s.cfg.maxSequences {
			s.fail(j, errorf(Capacity, "model %q holds %d live sequences, the most it may (--max-sequences); end some or retry later", s.model, len(s.seqs)))
			return
		}
		q = &sequence{key: j.seq.key, last: j.enq}
		s.seqs[j.seq.key] = q
		s.m.sequences.WithLabelValues(s.model).Set(float64(len(s.seqs)))
	}
	q.queue = append(q.queue, j)
	if !q.running {
		s.advance(q)
	}
}

func (s *scheduler) makeReady(j *job) {
	j.readyAt = time.Now()
	s.ready = append(s.ready, j)
}

// advance moves a sequence's next step to the ready list, answering the
// steps that can no longer run (cancelled, or continuing a sequence that
// has ended) on the way; an empty, ended sequence is forgotten.
func (s *scheduler) advance(q *sequence) {
	for len(q.queue) > 0 && !q.running {
		j := q.queue[0]
		switch {
		case j.ctx.Err() != nil:
			s.fail(j, ctxError(j.ctx))
		case j.seq.start:
			// A start ends whatever the id held before (as Triton does).
			s.freeState(q)
			if s.stateBytes+j.p.StateBytes > s.cfg.maxStateBytes {
				s.fail(j, errorf(Capacity, "model %q: the live sequences' states take %d bytes; this one needs %d more, over --max-state-memory %d", s.model, s.stateBytes, j.p.StateBytes, s.cfg.maxStateBytes))
				break
			}
			j.state = nil
			q.running = true
			s.makeReady(j)
			continue
		case !q.live:
			s.fail(j, errorf(BadRequest, "sequence %s has ended; send sequence_start to begin it again", seqName(q.key)))
		default:
			if err := s.be.Fits(j.p, q.state); err != nil {
				s.fail(j, err)
				break
			}
			j.state = q.state
			q.running = true
			s.makeReady(j)
			continue
		}
		q.queue = q.queue[1:]
	}
	if len(q.queue) == 0 && !q.live {
		s.forget(q)
	}
}

func (s *scheduler) freeState(q *sequence) {
	s.stateBytes -= q.stateBytes
	q.state, q.live, q.stateBytes = nil, false, 0
	s.m.stateBytes.WithLabelValues(s.model).Set(float64(s.stateBytes))
}

func (s *scheduler) forget(q *sequence) {
	s.freeState(q)
	delete(s.seqs, q.key)
	s.m.sequences.WithLabelValues(s.model).Set(float64(len(s.seqs)))
}

// expire frees sequences idle for longer than --sequence-idle.
func (s *scheduler) expire(now time.Time) {
	for _, q := range s.seqs {
		if !q.running && len(q.queue) == 0 && now.Sub(q.last) > s.cfg.sequenceIdle {
			s.log.Info("sequence expired", "model", s.model, "sequence", seqName(q.key), "idle", now.Sub(q.last).String())
			s.m.expired.WithLabelValues(s.model).Inc()
			s.forget(q)
		}
	}
}

// dispatch starts the next batch if the executor is free: the requests
// of the oldest batch key that is full or has waited --batch-delay.
func (s *scheduler) dispatch() {
	if s.busy || s.closing {
		return
	}
	// Drop requests whose clients are gone before they cost anything.
	live := s.ready[:0]
	var dropped []*job
	for _, j := range s.ready {
		if j.ctx.Err() != nil {
			dropped = append(dropped, j)
		} else {
			live = append(live, j)
		}
	}
	clear(s.ready[len(live):])
	s.ready = live
	for _, j := range dropped {
		s.fail(j, ctxError(j.ctx))
		if j.seq.key != "" {
			q := s.seqs[j.seq.key]
			q.queue = q.queue[1:]
			q.running = false
			s.advance(q)
		}
	}
	if len(s.ready) == 0 {
		return
	}
	now := time.Now()
	var wake time.Time
	seen := map[string]bool{}
	for _, j0 := range s.ready {
		if seen[j0.p.Key] && j0.p.Key != "" {
			continue
		}
		seen[j0.p.Key] = true
		batch, rows := []*job{j0}, j0.p.Rows
		if j0.p.Key != "" {
			for _, j := range s.ready {
				if j != j0 && j.p.Key == j0.p.Key && rows+j.p.Rows <= s.cfg.maxBatch {
					batch = append(batch, j)
					rows += j.p.Rows
				}
			}
		}
		due := j0.readyAt.Add(s.cfg.batchDelay)
		if j0.p.Key == "" || rows >= s.cfg.maxBatch || !now.Before(due) {
			s.start(batch, now)
			return
		}
		if wake.IsZero() || due.Before(wake) {
			wake = due
		}
	}
	if !wake.IsZero() && (s.timerAt.IsZero() || wake.Before(s.timerAt)) {
		s.timer.Reset(wake.Sub(now))
		s.timerAt = wake
	}
}

func (s *scheduler) start(batch []*job, now time.Time) {
	in := map[*job]bool{}
	rows := 0
	for _, j := range batch {
		in[j] = true
		rows += j.p.Rows
		s.m.queue.WithLabelValues(s.model).Observe(now.Sub(j.enq).Seconds())
	}
	rest := s.ready[:0]
	for _, j := range s.ready {
		if !in[j] {
			rest = append(rest, j)
		}
	}
	clear(s.ready[len(rest):])
	s.ready = rest
	s.m.batch.WithLabelValues(s.model).Observe(float64(rows))
	s.busy = true
	s.exec <- batch
}

func (s *scheduler) complete(f finished) {
	s.busy = false
	s.m.compute.WithLabelValues(s.model).Observe(f.compute.Seconds())
	now := time.Now()
	for i, j := range f.jobs {
		r := f.res[i]
		if j.seq.key != "" {
			q := s.seqs[j.seq.key]
			if r.Err == nil {
				s.stateBytes += r.State.Bytes() - q.stateBytes
				q.state, q.live, q.stateBytes = r.State, true, r.State.Bytes()
				s.m.stateBytes.WithLabelValues(s.model).Set(float64(s.stateBytes))
			}
			q.last = now
			if j.seq.end {
				s.freeState(q)
			}
			q.queue = q.queue[1:]
			q.running = false
		}
		s.reply(j, jobResult{res: r, queued: j.readyAt.Sub(j.enq), compute: f.compute, batchRow: len(f.jobs)})
		if j.seq.key != "" {
			s.advance(s.seqs[j.seq.key])
		}
	}
}
