// Package runtime replays a ConvLSTM's forward pass exactly as PyTorch's
// ConvLSTM_pytorch computes it, in float32: layer by layer, step by step.
// Each layer's time loop and cell step are package engine's (shared with
// the ONNX interpreter's fused cells); this package chains the layers,
// handles the input and state layouts, and streams.
//
// A Runner owns the packed weights, a worker pool and reusable workspaces;
// once warmed up for an input size, a streaming step allocates nothing.
// A Runner (and each Stream) is not safe for concurrent use; make one per
// goroutine (they may share a *convlstm.Model).
package runtime

import (
	"fmt"
	goruntime "runtime"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Options configure a Runner.
type Options struct {
	// Threads is the number of worker threads (0: one per CPU). Results are
	// identical for every thread count.
	Threads int
	// Direct runs every convolution as a direct (offset GEMM) convolution,
	// never Winograd. Both agree with PyTorch within the parity bar; Direct
	// is the slower, plainer path, for comparison.
	Direct bool
	// Precision of the convolutions: "" or engine.Float32 (exact float32,
	// the default), or engine.BFloat16 ("bf16"): weights packed as
	// bfloat16 and, on CPUs with AVX512_BF16, VDPBF16PS on bfloat16 inputs
	// with float32 accumulation (1.3-1.5× faster on Zen 5, with errors up
	// to ~1e-2 of the outputs' scale); elsewhere float32 kernels on the rounded
	// weights (same accuracy, not faster). Runner.PrecisionPath says which.
	// Gates and state stay float32.
	Precision engine.Precision
}

// Runner runs one model.
type Runner struct {
	model   *convlstm.Model
	prec    engine.Precision
	cells   []*engine.Cell
	threads int
	pool    *engine.Pool
	plans   []*engine.CellPlan // cached for the last (batch, height, width, chunk)
	// inner holds the output sequences of the layers below the last when
	// Forward does not return them (two, used in turn), and spare the
	// buffers of results handed back by Recycle. Fresh memory costs its
	// first-touch page faults: on the project's VM 10-25 us a page, and
	// 2,400 pages per 64×64, [64, 64] forward pass (its output and final
	// state), a quarter of its time.
	inner [2][]float32
	spare [][]float32
}

// New packs the model's weights and starts the worker pool. Call Close to
// stop the workers.
func New(m *convlstm.Model, opts Options) (*Runner, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	prec, err := engine.ParsePrecision(string(opts.Precision))
	if err != nil {
		return nil, fmt.Errorf("runtime: Options.Precision: %w", err)
	}
	n := opts.Threads
	if n <= 0 {
		n = goruntime.GOMAXPROCS(0)
	}
	r := &Runner{model: m, prec: prec, threads: n, pool: engine.NewPool(n)}
	for i, l := range m.Layers {
		c, err := engine.NewCellOptions(l, m.Gates, engine.CellOptions{Direct: opts.Direct, Precision: prec})
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("runtime: layer %d: %w", i, err)
		}
		r.cells = append(r.cells, c)
	}
	return r, nil
}

// Close stops the worker threads. The Runner must not be used afterwards.
func (r *Runner) Close() { r.pool.Close() }

// Model returns the model the Runner runs.
func (r *Runner) Model() *convlstm.Model { return r.model }

// Precision reports the precision of the convolutions (engine.Float32 or
// engine.BFloat16).
func (r *Runner) Precision() engine.Precision { return r.prec }

// PrecisionPath says how the precision runs on this machine:
// "float32", "bf16 (avx512bf16: VDPBF16PS)" or "bf16 (converted to float32:
// ...)" (engine.PrecisionPath).
func (r *Runner) PrecisionPath() string { return engine.PrecisionPath(r.prec) }

// Threads reports the number of threads in use.
func (r *Runner) Threads() int { return r.threads }

// LayerState is one layer's hidden and cell state, each (B, hidden, H, W).
type LayerState struct {
	H, C *tensor.Tensor
}

// ForwardOptions select the input layout and the outputs.
type ForwardOptions struct {
	// TimeFirst: the input is (T, B, C, H, W) rather than (B, T, C, H, W);
	// outputs use the same layout.
	TimeFirst bool
	// AllLayers: return every layer's output sequence, not only the last.
	AllLayers bool
	// Initial is the state each layer starts from; nil means zeros, as in
	// ConvLSTM_pytorch. If given, it needs one entry per layer.
	Initial []LayerState
}

// Result is a forward pass's output.
type Result struct {
	// Output is the last layer's hidden state at every step, (B, T, hidden,
	// H, W), or (T, B, ...) for time-first input.
	Output *tensor.Tensor
	// Layers holds every layer's output sequence with AllLayers (the last
	// one is Output); nil otherwise.
	Layers []*tensor.Tensor
	// Final is each layer's state after the last step.
	Final []LayerState
}

// Forward runs the whole sequence x through every layer.
func (r *Runner) Forward(x *tensor.Tensor, opts ForwardOptions) (*Result, error) {
	if len(x.Shape) != 5 {
		return nil, fmt.Errorf("runtime: input has shape %s, want 5 dimensions %s", tensor.ShapeString(x.Shape), layoutName(opts.TimeFirst))
	}
	bi, ti := 0, 1
	if opts.TimeFirst {
		bi, ti = 1, 0
	}
	B, T, C, H, W := x.Shape[bi], x.Shape[ti], x.Shape[2], x.Shape[3], x.Shape[4]
	if err := r.checkInput(x, B, T, C, H, W, opts.TimeFirst); err != nil {
		return nil, err
	}
	plans := r.plansFor(B, H, W, T)
	if err := r.loadState(plans, opts.Initial, B, H, W); err != nil {
		return nil, err
	}
	in := engine.SeqLayout(x.Data, B, T, C, H*W, opts.TimeFirst)
	res := &Result{}
	for l, p := range plans {
		hd := r.model.Layers[l].HiddenDim
		shape := []int{B, T, hd, H, W}
		if opts.TimeFirst {
			shape = []int{T, B, hd, H, W}
		}
		n := B * T * hd * H * W
		var data []float32
		if opts.AllLayers || l == len(plans)-1 {
			data = r.take(n)
		} else {
			buf := &r.inner[l%2]
			if cap(*buf) < n {
				*buf = make([]float32, n)
			}
			data = (*buf)[:n]
		}
		out := engine.SeqLayout(data, B, T, hd, H*W, opts.TimeFirst)
		p.Run(r.pool, in, out, T, opts.Initial == nil)
		o := &tensor.Tensor{Shape: shape, Data: data, DType: "float32"}
		if opts.AllLayers {
			res.Layers = append(res.Layers, o)
		}
		res.Output = o
		in = out
	}
	res.Final = r.exportState(plans)
	return res, nil
}

// Recycle hands the buffers of a Result back to r, for later Forward calls
// to write their outputs and final states into instead of new memory. The
// caller must not use res's tensors afterwards (Recycle clears res). A
// service that runs a Runner in a loop saves the page faults of fresh
// memory this way; results not recycled are simply collected.
func (r *Runner) Recycle(res *Result) {
	if res == nil {
		return
	}
	ts := append([]*tensor.Tensor{res.Output}, res.Layers...)
	for _, s := range res.Final {
		ts = append(ts, s.H, s.C)
	}
	for _, t := range ts {
		r.RecycleTensor(t)
	}
	*res = Result{}
}

// RecycleTensor is Recycle for one tensor of a Result (a caller that
// keeps the others); it ignores a tensor that holds no buffer or one
// already handed back.
func (r *Runner) RecycleTensor(t *tensor.Tensor) {
	if t == nil || cap(t.Data) == 0 {
		return
	}
	for _, b := range r.spare {
		if &b[:1][0] == &t.Data[:1][0] {
			return
		}
	}
	// Enough for every output and state of a few calls; beyond it the
	// smallest buffers go.
	if limit := 4 * (len(r.model.Layers) + 1); len(r.spare) >= limit {
		small := 0
		for i, b := range r.spare {
			if cap(b) < cap(r.spare[small]) {
				small = i
			}
		}
		if cap(r.spare[small]) >= cap(t.Data) {
			return
		}
		r.spare[small] = r.spare[len(r.spare)-1]
		r.spare = r.spare[:len(r.spare)-1]
	}
	r.spare = append(r.spare, t.Data[:cap(t.Data)])
	t.Data = nil
}

// take returns a buffer of n floats for an output or state that Forward
// writes in full: the smallest recycled one that fits, or new memory.
func (r *Runner) take(n int) []float32 {
	best := -1
	for i, b := range r.spare {
		if cap(b) >= n && (best < 0 || cap(b) < cap(r.spare[best])) {
			best = i
		}
	}
	if best < 0 {
		return make([]float32, n)
	}
	b := r.spare[best][:n]
	r.spare[best] = r.spare[len(r.spare)-1]
	r.spare = r.spare[:len(r.spare)-1]
	return b
}

func layoutName(timeFirst bool) string {
	if timeFirst {
		return "(T, B, C, H, W) (time-first)"
	}
	return "(B, T, C, H, W) (batch-first)"
}

// maxElements bounds any one tensor the runtime allocates.
const maxElements = 1 << 31

func (r *Runner) checkInput(x *tensor.Tensor, B, T, C, H, W int, timeFirst bool) error {
	if B < 1 || T < 1 || H < 1 || W < 1 {
		return fmt.Errorf("runtime: input has shape %s: batch, time, height and width must be at least 1 for %s", tensor.ShapeString(x.Shape), layoutName(timeFirst))
	}
	if C != r.model.InputDim() {
		return fmt.Errorf("runtime: input has %d channels (shape %s, %s), the model's first layer takes %d", C, tensor.ShapeString(x.Shape), layoutName(timeFirst), r.model.InputDim())
	}
	n := 1
	for _, d := range x.Shape {
		if d > maxElements/n {
			return fmt.Errorf("runtime: input shape %s is too large", tensor.ShapeString(x.Shape))
		}
		n *= d
	}
	if len(x.Data) != n {
		return fmt.Errorf("runtime: input has %d values for shape %s", len(x.Data), tensor.ShapeString(x.Shape))
	}
	for _, l := range r.model.Layers {
		if B*T*l.HiddenDim > maxElements/(H*W) {
			return fmt.Errorf("runtime: output of shape (%d, %d, %d, %d, %d) is too large", B, T, l.HiddenDim, H, W)
		}
	}
	return nil
}

// plansFor returns workspaces for this batch and image size, reusing the
// cached ones when they fit.
func (r *Runner) plansFor(B, H, W, T int) []*engine.CellPlan {
	if ps := r.plans; ps != nil {
		fits := true
		for _, p := range ps {
			fits = fits && p.Fits(B, H, W, T)
		}
		if fits {
			return ps
		}
	}
	ps := make([]*engine.CellPlan, len(r.cells))
	for i, c := range r.cells {
		ps[i] = c.NewPlan(B, H, W, T, r.threads)
	}
	r.plans = ps
	return ps
}

// loadState sets every layer's state: zeros, or the given initial state.
func (r *Runner) loadState(plans []*engine.CellPlan, initial []LayerState, B, H, W int) error {
	if initial != nil && len(initial) != len(plans) {
		return fmt.Errorf("runtime: initial state has %d layers, the model has %d", len(initial), len(plans))
	}
	for l, p := range plans {
		p.ZeroState()
		if initial == nil {
			continue
		}
		hd := r.model.Layers[l].HiddenDim
		want := []int{B, hd, H, W}
		for _, s := range []struct {
			name string
			t    *tensor.Tensor
		}{{fmt.Sprintf("h_%d", l), initial[l].H}, {fmt.Sprintf("c_%d", l), initial[l].C}} {
			if s.t == nil {
				return fmt.Errorf("runtime: initial state %s is missing", s.name)
			}
			if !equalShape(s.t.Shape, want) || len(s.t.Data) != B*hd*H*W {
				return fmt.Errorf("runtime: initial state %s has shape %s, want %s (batch, hidden, height, width)", s.name, tensor.ShapeString(s.t.Shape), tensor.ShapeString(want))
			}
		}
		p.SetState(initial[l].H.Data, initial[l].C.Data)
	}
	return nil
}

func (r *Runner) exportState(plans []*engine.CellPlan) []LayerState {
	st := make([]LayerState, len(plans))
	for l, p := range plans {
		hd := r.model.Layers[l].HiddenDim
		shape := []int{p.B, hd, p.H, p.W}
		n := p.B * hd * p.H * p.W
		st[l] = LayerState{
			H: &tensor.Tensor{Shape: shape, Data: r.take(n), DType: "float32"},
			C: &tensor.Tensor{Shape: append([]int(nil), shape...), Data: r.take(n), DType: "float32"},
		}
		p.State(st[l].H.Data, st[l].C.Data)
	}
	return st
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
