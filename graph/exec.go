package graph

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// maxValues caps the size of a tensor whose shape comes from the graph's
// own integer computations (ConstantOfShape, Reshape, Expand, ...), so a
// malformed model cannot make us allocate without bound. A variable so
// that the fuzz test can lower it (and restore it).
var maxValues = 1 << 31

// errUnknown stops the dry pass at an op that needs an integer value
// computed from float data (unknown before running). It never leaves
// package graph: exec turns it into exec.stopped.
var errUnknown = errors.New("graph: value unknown in the dry pass")

// nodeTimer, when set (by benchmarks only), is told how long each node of
// a run took by nodeClock (a Loop's or Scan's time includes its body's
// nodes).
var (
	nodeTimer func(n *node, d time.Duration)
	nodeClock func() time.Duration
)

// exec is one pass over the graph: the dry pass (shapes, dtypes and
// integer values only) or a run.
type exec struct {
	g   *Graph
	dry bool
	cur *node // the node running, for errors and a recovered panic
	// The frame being run: subgraph kernels (Scan, Loop, If) run their
	// bodies with it as parent.
	p *program
	s *scope
	// Buffers drawn from the graph's arena in this pass, by first element,
	// with the number of live values that hold each; counted says how many
	// of those holds each tensor accounts for.
	owned   map[*float32]*ownedBuf
	counted map[*tensor.Tensor]int
	// deferred are holds that the running node keeps until its outputs
	// are held by its scope: a subgraph's values, which live on as the
	// node's outputs or die with it (settled by run).
	deferred []*tensor.Tensor
	seqs     []*sequence // the sequences made in this pass
	// mu, when set, guards owned, counted and the main scope while the
	// main program's nodes run concurrently (schedule.go); left counts
	// the readers of each of its values yet to run.
	mu   *sync.Mutex
	left map[string]int
	// local, while the main program runs concurrently, is this worker's
	// own free list: a buffer whose value died on this worker's core goes
	// back to it and is drawn first, so the next value written there is
	// likely still in the core's cache (a line the other core last held
	// costs ~13 ns to write here).
	local *arena
	// worker is which of a concurrent run's goroutines this view is (0:
	// the caller's, also when not concurrent): caches of per-node scratch
	// hand a worker back what it used last, for the same reason.
	worker  int
	res     []*tensor.Tensor // graph outputs
	stopped *node            // where the dry pass stopped (errUnknown)
}

type ownedBuf struct {
	buf  []float32
	refs int
}

// scope holds the values of one graph execution; subgraphs see their
// enclosing scopes.
type scope struct {
	vals   map[string]*tensor.Tensor
	parent *scope
}

// exec runs the main graph. It is the API boundary for Run and the dry
// pass: a panic below is returned as an internal error naming the node.
func (g *Graph) exec(vals map[string]*tensor.Tensor, dry bool) (_ *exec, err error) {
	x := &exec{g: g, dry: dry, owned: map[*float32]*ownedBuf{}, counted: map[*tensor.Tensor]int{}}
	defer func() {
		if rec := recover(); rec != nil {
			err = internalError(g.File, x.cur, "running", rec)
		}
	}()
	res, err := x.run(g.main, &scope{vals: vals})
	if dry && errors.Is(err, errUnknown) {
		x.stopped = x.cur
		return x, nil
	}
	if err != nil {
		return nil, err
	}
	x.res = res
	return x, nil
}

func (x *exec) lookup(p *program, s *scope, name string) *tensor.Tensor {
	for p != nil && s != nil {
		if v, ok := s.vals[name]; ok {
			return v
		}
		if v, ok := p.consts[name]; ok {
			return v
		}
		p, s = p.parent, s.parent
	}
	return nil
}

// run executes program p in scope s (which holds its inputs) and returns
// its outputs.
func (x *exec) run(p *program, s *scope) ([]*tensor.Tensor, error) {
	// The caller's frame is restored on return; cur only on a normal
	// return, so that a recovered panic names the innermost node.
	if p == x.g.main && !x.dry && x.g.threads > 1 && x.mu == nil {
		if res, err := x.runConcurrent(p, s); err == nil {
			return res, nil
		}
		// Report the error a run in order meets: run again in order.
		x.owned, x.counted = map[*float32]*ownedBuf{}, map[*tensor.Tensor]int{}
	}
	saveP, saveS, saveCur := x.p, x.s, x.cur
	defer func() { x.p, x.s = saveP, saveS }()
	for _, n := range p.nodes {
		x.p, x.s, x.cur = p, s, n
		in, err := x.nodeInputs(p, s, n)
		if err != nil {
			return nil, err
		}
		mark := len(x.deferred)
		outs, err := x.runKernel(n, in)
		if err != nil {
			return nil, err
		}
		x.lock()
		x.bindOutputs(p, s, n, outs)
		x.unlock()
		for _, t := range x.deferred[mark:] {
			x.release(t)
		}
		x.deferred = x.deferred[:mark]
		for _, name := range n.in {
			if p.lastUse[name] == n.idx {
				x.drop(s, name)
			}
		}
		for _, name := range n.extra {
			if p.lastUse[name] == n.idx {
				x.drop(s, name)
			}
		}
	}
	x.cur = saveCur
	return x.outputs(p, s)
}

// nodeInputs looks up node n's inputs in scope s of program p.
func (x *exec) nodeInputs(p *program, s *scope, n *node) ([]*tensor.Tensor, error) {
	in := make([]*tensor.Tensor, len(n.in))
	for i, name := range n.in {
		if name == "" {
			continue
		}
		if in[i] = x.lookup(p, s, name); in[i] == nil {
			return nil, x.errf(n, "input %q has no value", name)
		}
		if in[i].DType == seqDType && !n.def.seqIn {
			return nil, x.unsupported(n, "", "input %q is a sequence; %s takes tensors only", name, n.op)
		}
	}
	return in, nil
}

// runKernel runs node n's kernel on in, timed for the node profile
// (nodeTimer, under the exec's lock when nodes run concurrently), and
// checks that it made an output for every name n gives.
func (x *exec) runKernel(n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	var t0 time.Duration
	if nodeTimer != nil {
		t0 = nodeClock()
	}
	outs, err := n.def.run(x, n, in)
	if err != nil {
		return nil, err
	}
	if nodeTimer != nil && !x.dry {
		d := nodeClock() - t0
		x.lock()
		nodeTimer(n, d)
		x.unlock()
	}
	if len(outs) < len(n.out) {
		return nil, x.errf(n, "produced %d outputs, the node names %d", len(outs), len(n.out))
	}
	return outs, nil
}

// bindOutputs binds n's outputs in scope s of program p and holds them,
// dropping at once those no node reads (the exec's lock held, if any).
func (x *exec) bindOutputs(p *program, s *scope, n *node, outs []*tensor.Tensor) {
	for i, o := range n.out {
		if o == "" {
			continue
		}
		s.vals[o] = outs[i]
		x.holdLocked(outs[i])
		if _, read := p.lastUse[o]; !read {
			x.dropLocked(s, o)
		}
	}
}

// outputs looks up the outputs of program p, run in scope s.
func (x *exec) outputs(p *program, s *scope) ([]*tensor.Tensor, error) {
	res := make([]*tensor.Tensor, len(p.outputs))
	for i, name := range p.outputs {
		if res[i] = x.lookup(p, s, name); res[i] == nil {
			return nil, &Error{File: x.g.File, Msg: fmt.Sprintf("graph output %q has no value", name)}
		}
		if p == x.g.main && res[i].DType == seqDType {
			return nil, &Error{File: x.g.File, Kind: Unsupported, Msg: fmt.Sprintf("graph output %q is a sequence; only tensors can be returned", name)}
		}
	}
	return res, nil
}

// drop forgets a value of this scope whose last reader has run, and gives
// its buffer back when no other value holds it.
func (x *exec) drop(s *scope, name string) {
	x.lock()
	defer x.unlock()
	x.dropLocked(s, name)
}

func (x *exec) dropLocked(s *scope, name string) {
	v, ok := s.vals[name]
	if !ok {
		return // a graph input of an enclosing scope, or already dropped
	}
	delete(s.vals, name)
	x.releaseLocked(v)
}

func (x *exec) lock() {
	if x.mu != nil {
		x.mu.Lock()
	}
}

func (x *exec) unlock() {
	if x.mu != nil {
		x.mu.Unlock()
	}
}

// hold counts one more live value holding t's buffer, if the buffer is one
// of this pass's.
func (x *exec) hold(t *tensor.Tensor) {
	x.lock()
	defer x.unlock()
	x.holdLocked(t)
}

func (x *exec) holdLocked(t *tensor.Tensor) {
	if t == nil || len(t.Data) == 0 {
		return
	}
	if b := x.owned[&t.Data[0]]; b != nil {
		b.refs++
		x.counted[t]++
	}
}

// releaseScope undoes the holds of the values a finished run of subgraph
// p still has in its scope s (its outputs, which run never drops; not the
// inputs the caller bound, which the scope does not hold): the caller has
// held what it keeps.
func (x *exec) releaseScope(p *program, s *scope) {
	for name, v := range s.vals {
		if !slices.Contains(p.inputs, name) {
			x.release(v)
		}
	}
	clear(s.vals)
}

// deferScope gives those holds back once the running node's outputs are
// held: for a subgraph whose outputs are the node's own.
func (x *exec) deferScope(p *program, s *scope) {
	for name, v := range s.vals {
		if !slices.Contains(p.inputs, name) {
			x.deferred = append(x.deferred, v)
		}
	}
}

// release undoes one hold of t.
func (x *exec) release(t *tensor.Tensor) {
	x.lock()
	defer x.unlock()
	x.releaseLocked(t)
}

func (x *exec) releaseLocked(t *tensor.Tensor) {
	if t == nil || x.counted[t] == 0 {
		return
	}
	x.counted[t]--
	if x.counted[t] == 0 {
		delete(x.counted, t)
	}
	p := &t.Data[0]
	b := x.owned[p]
	if b.refs--; b.refs == 0 {
		delete(x.owned, p)
		if x.local != nil {
			x.local.put(b.buf)
		} else {
			x.g.arena.put(b.buf)
		}
	}
}

// alloc returns a float buffer of n values for an output, drawn from the
// arena: its contents are arbitrary, the kernel must write every value.
// Kernels must return it whole (or a tensor holding all of it), never a
// sub-slice, so that the buffer can be given back when its value dies.
func (x *exec) alloc(n int) []float32 {
	if n == 0 {
		return []float32{}
	}
	var b []float32
	if x.local != nil {
		b = x.local.take(n)
	}
	if b == nil {
		b = x.g.arena.get(n)
	}
	x.lock()
	x.owned[&b[0]] = &ownedBuf{buf: b}
	x.unlock()
	return b
}

// reusable reports whether the running node n may write its output over
// the buffer of its float input i, t: the value dies at n, t holds the
// whole buffer and no other live value does (not a graph input, a
// constant, a view bound into a subgraph or a value of an enclosing
// scope). Only elementwise kernels, where output j depends on input
// position j alone, may use it.
func (x *exec) reusable(n *node, i int, t *tensor.Tensor) bool {
	if x.dry || x.cur != n || x.p == nil || len(t.Data) == 0 || n.in[i] == "" {
		return false
	}
	x.lock()
	defer x.unlock()
	if x.left != nil && x.p == x.g.main {
		// Run concurrently: the readers of a value run in any order, so
		// n must be the last one left, not the last one in the list.
		if last, ok := x.p.lastUse[n.in[i]]; !ok || last == len(x.p.nodes) || x.left[n.in[i]] != 1 {
			return false
		}
	} else if x.p.lastUse[n.in[i]] != n.idx {
		return false
	}
	if x.s.vals[n.in[i]] != t || x.counted[t] != 1 {
		return false
	}
	b := x.owned[&t.Data[0]]
	return b != nil && b.refs == 1 && len(b.buf) == len(t.Data)
}

// newFloat is an output float tensor of the given shape: Data from the
// arena (unwritten), nil in the dry pass.
func (x *exec) newFloat(shape []int) *tensor.Tensor {
	t := &tensor.Tensor{Shape: shape, DType: tensor.Float32}
	if !x.dry {
		t.Data = x.alloc(numel(shape))
	}
	return t
}

// newInts is an output integer tensor of dtype dt, zeroed.
func newInts(dt tensor.DType, shape []int) *tensor.Tensor {
	return &tensor.Tensor{Shape: shape, DType: dt, Ints: make([]int64, numel(shape))}
}

// like is an output of the same dtype as t with the given shape: float
// Data from the arena unless dry, zeroed Ints when t's values are known
// (nil otherwise: unknown in the dry pass).
func (x *exec) like(t *tensor.Tensor, shape []int) *tensor.Tensor {
	if t.IsFloat() {
		return x.newFloat(shape)
	}
	if t.Ints == nil {
		return &tensor.Tensor{Shape: shape, DType: t.DType}
	}
	return newInts(t.DType, shape)
}

// has reports whether the values of every tensor are known: floats except
// in the dry pass, integers unless computed from floats in the dry pass.
func (x *exec) has(ts ...*tensor.Tensor) bool {
	for _, t := range ts {
		if t == nil {
			continue
		}
		if t.IsFloat() {
			if x.dry {
				return false
			}
		} else if t.Ints == nil {
			return false
		}
	}
	return true
}

func (x *exec) errf(n *node, format string, args ...any) error {
	return &Error{File: x.g.File, Node: n.name, Op: n.op, Msg: fmt.Sprintf(format, args...)}
}

// unsupported reports, at run time, a valid case we do not implement.
func (x *exec) unsupported(n *node, attr, format string, args ...any) error {
	return &Error{File: x.g.File, Node: n.name, Op: n.op, Attr: attr, Kind: Unsupported, Msg: fmt.Sprintf(format, args...)}
}

// ints reads an integer input of rank 0 or 1 (shape, axes, indices...).
func (x *exec) ints(n *node, v *tensor.Tensor, what string) ([]int64, error) {
	if v == nil {
		return nil, x.errf(n, "missing %s input", what)
	}
	if v.IsFloat() {
		return nil, x.errf(n, "%s must be an integer tensor, is float32 %v", what, v.Shape)
	}
	if len(v.Shape) > 1 {
		return nil, x.errf(n, "%s must be a scalar or 1-D, has shape %v", what, v.Shape)
	}
	if v.Ints == nil {
		return nil, errUnknown
	}
	return v.Ints, nil
}

// scalar reads a one-element input of any type as a float64 (a bound, a
// trip count, a fill value); ok is false when its value is not known yet.
func (x *exec) scalar(n *node, v *tensor.Tensor, what string) (f float64, ok bool, err error) {
	if numel(v.Shape) != 1 {
		return 0, false, x.errf(n, "%s must hold one value, has shape %v", what, v.Shape)
	}
	if !known(v) {
		return 0, false, nil
	}
	if v.IsFloat() {
		return float64(v.Data[0]), true, nil
	}
	return float64(v.Ints[0]), true, nil
}

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// checkShape refuses a shape with a negative dimension or more than
// maxValues values.
func checkShape(shape []int) error {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in %v", shape)
		}
		n *= int64(d)
		if n > int64(maxValues) {
			return fmt.Errorf("shape %v has more than %d values", shape, int64(maxValues))
		}
	}
	return nil
}

func typeName(v *tensor.Tensor) string {
	if v.IsFloat() {
		return "float32"
	}
	return string(v.DType)
}

// sameType says whether two values have the same element type.
func sameType(a, b *tensor.Tensor) bool {
	return a.IsFloat() == b.IsFloat() && (a.IsFloat() || a.DType == b.DType)
}

// arena is a graph's free list of float buffers, by length, shared by its
// runs: a buffer goes back when its last value dies, and the next node (or
// run) that needs that many values takes it.
type arena struct {
	mu   sync.Mutex
	free map[int][][]float32
	held int // values held in free
}

// arenaMax bounds what the free list keeps (values): beyond, buffers go to
// the garbage collector.
const arenaMax = 1 << 27

func (a *arena) get(n int) []float32 {
	if b := a.take(n); b != nil {
		return b
	}
	return make([]float32, n)
}

// take is get without the fallback: nil when no buffer of n values is
// free.
func (a *arena) take(n int) []float32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.free[n]
	if len(l) == 0 {
		return nil
	}
	b := l[len(l)-1]
	a.free[n] = l[:len(l)-1]
	a.held -= n
	return b
}

// drain moves a's buffers to b.
func (a *arena) drain(b *arena) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.free {
		for _, buf := range l {
			b.put(buf)
		}
	}
	clear(a.free)
	a.held = 0
}

func (a *arena) put(b []float32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held+len(b) > arenaMax {
		return
	}
	if a.free == nil {
		a.free = map[int][][]float32{}
	}
	a.free[len(b)] = append(a.free[len(b)], b)
	a.held += len(b)
}

// parallel runs f(0), ..., f(parts-1) on the worker pool of that many
// threads (inline when parts is 1) and waits for all. A panic in a worker
// is re-raised in the caller (engine.Pool does that), where the API
// boundary's recover reports it.
func parallel(parts int, f func(part int)) {
	if parts <= 1 {
		f(0)
		return
	}
	poolFor(parts).Do(funcTask(f), parts)
}

// funcTask runs a function as an engine.Task.
type funcTask func(part int)

func (f funcTask) Run(part, parts int) { f(part) }
