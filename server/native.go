package server

import (
	"fmt"
	"sort"
	"strings"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/runtime"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Native serves a ConvLSTM model (weights from .pt, safetensors, npz) on
// package runtime. Its inputs and outputs are what `convlstm-run run`
// reads and writes: input (B, T, C, H, W), optional initial states h_l and
// c_l (B, hidden_l, H, W) for every layer l, and outputs output (B, T,
// hidden_last, H, W) and the final h_l, c_l.
//
// Requests with equal T, H and W that either all start from zeros or all
// start from a given state are stacked along B into one forward pass: the
// runtime computes every batch row with the same operations in the same
// order whatever B is, so a row's results are bit-identical to running it
// alone (TestBatchingIsExact checks it).
type Native struct {
	m       *convlstm.Model
	threads int
	meta    ModelMetadata
	hidden  []int
	// runners caches one runtime.Runner per recent batch geometry: a
	// Runner keeps workspaces for the last shape it ran, and batches of
	// varying B would otherwise rebuild them (about 34 MiB per batch row at
	// 64×64 with hidden [64, 64]) on every forward pass. The cache holds
	// runners whose B·H·W add up to at most twice the largest one's, so
	// its memory stays within twice the largest batch's workspaces.
	runners []cachedRunner
	tick    int
}

type cachedRunner struct {
	b, h, w int
	r       *runtime.Runner
	used    int
}

// maxRunners bounds the number of cached runners.
const maxRunners = 8

// NewNative packs the model for serving with the given worker threads
// (0: all cores).
func NewNative(m *convlstm.Model, threads int) (*Native, error) {
	r, err := runtime.New(m, runtime.Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	n := &Native{m: m, threads: threads, runners: []cachedRunner{{r: r}}}
	last := m.Layers[len(m.Layers)-1].HiddenDim
	n.meta = ModelMetadata{
		Platform: "convlstm-go_native",
		Stateful: true,
		Inputs:   []TensorMetadata{{Name: "input", Datatype: "FP32", Shape: []int64{-1, -1, int64(m.InputDim()), -1, -1}}},
		Outputs:  []TensorMetadata{{Name: "output", Datatype: "FP32", Shape: []int64{-1, -1, int64(last), -1, -1}}},
	}
	for l, ly := range m.Layers {
		n.hidden = append(n.hidden, ly.HiddenDim)
		for _, k := range []string{"h", "c"} {
			tm := TensorMetadata{Name: fmt.Sprintf("%s_%d", k, l), Datatype: "FP32", Shape: []int64{-1, int64(ly.HiddenDim), -1, -1}}
			n.meta.Outputs = append(n.meta.Outputs, tm)
			tm.Optional = true
			n.meta.Inputs = append(n.meta.Inputs, tm)
		}
	}
	return n, nil
}

// Metadata implements Backend.
func (n *Native) Metadata() ModelMetadata { return n.meta }

// Close implements Backend.
func (n *Native) Close() error {
	for _, c := range n.runners {
		c.r.Close()
	}
	n.runners = nil
	return nil
}

// runner returns a Runner for batches of b rows of h×w images: the one
// that last ran that geometry, else a new one, evicting the least recently
// used runners to keep the cache's workspaces bounded (see Native.runners).
func (n *Native) runner(b, h, w int) *runtime.Runner {
	n.tick++
	for i, c := range n.runners {
		if c.b == b && c.h == h && c.w == w {
			n.runners[i].used = n.tick
			return c.r
		}
	}
	if len(n.runners) == 1 && n.runners[0].b == 0 {
		// The runner NewNative made, not used yet.
		n.runners[0] = cachedRunner{b: b, h: h, w: w, r: n.runners[0].r, used: n.tick}
		return n.runners[0].r
	}
	size := func(c cachedRunner) int64 { return int64(c.b) * int64(c.h) * int64(c.w) }
	want := cachedRunner{b: b, h: h, w: w, used: n.tick}
	fits := func() bool {
		total, largest := size(want), size(want)
		for _, c := range n.runners {
			total += size(c)
			largest = max(largest, size(c))
		}
		return len(n.runners) < maxRunners && total <= 2*largest
	}
	for len(n.runners) > 0 && !fits() {
		lru := 0
		for i, c := range n.runners {
			if c.used < n.runners[lru].used {
				lru = i
			}
		}
		// The evicted runner is reused (packed weights, threads); its
		// workspaces are rebuilt for the new geometry on first use.
		if want.r != nil {
			want.r.Close()
		}
		want.r = n.runners[lru].r
		n.runners = append(n.runners[:lru], n.runners[lru+1:]...)
	}
	if want.r == nil {
		r, err := runtime.New(n.m, runtime.Options{Threads: n.threads})
		if err != nil {
			panic(fmt.Sprintf("server: a second runner for an accepted model failed: %v", err))
		}
		want.r = r
	}
	n.runners = append(n.runners, want)
	return want.r
}

// nativeState is a sequence's h and c of every layer, each (B, hidden, H, W).
type nativeState struct {
	layers  []runtime.LayerState
	b, h, w int
	bytes   int64
}

func (s *nativeState) Bytes() int64 { return s.bytes }

// nativeShape is a prepared request's geometry.
type nativeShape struct{ b, t, h, w int }

func (n *Native) names() string {
	var s []string
	for _, in := range n.meta.Inputs {
		s = append(s, in.Name)
	}
	return strings.Join(s, ", ")
}

// Prepare implements Backend.
func (n *Native) Prepare(inputs map[string]*tensor.Tensor, mode Mode) (*Prepared, error) {
	known := map[string]bool{}
	for _, in := range n.meta.Inputs {
		known[in.Name] = true
	}
	var unknown []string
	for k := range inputs {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, errorf(BadRequest, "the model has no input %q; its inputs are %s", unknown[0], n.names())
	}
	x := inputs["input"]
	if x == nil {
		return nil, errorf(BadRequest, "input \"input\" (B, T, C, H, W) is missing")
	}
	if len(x.Shape) != 5 {
		return nil, errorf(BadRequest, "input \"input\" has shape %s; want 5 dimensions (B, T, C, H, W)", tensor.ShapeString(x.Shape))
	}
	B, T, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], x.Shape[4]
	if B < 1 || T < 1 || H < 1 || W < 1 {
		return nil, errorf(BadRequest, "input \"input\" has shape %s: batch, time, height and width must be at least 1", tensor.ShapeString(x.Shape))
	}
	if C != n.m.InputDim() {
		return nil, errorf(BadRequest, "input \"input\" has %d channels (shape %s); the model takes %d (B, T, %d, H, W)", C, tensor.ShapeString(x.Shape), n.m.InputDim(), n.m.InputDim())
	}
	given := 0
	for l, hd := range n.hidden {
		for _, k := range []string{"h", "c"} {
			name := fmt.Sprintf("%s_%d", k, l)
			t := inputs[name]
			if t == nil {
				continue
			}
			given++
			want := []int{B, hd, H, W}
			if !tensor.SameShape(t.Shape, want) {
				return nil, errorf(BadRequest, "state input %q has shape %s; want %s (batch, hidden, height, width) for input of shape %s", name, tensor.ShapeString(t.Shape), tensor.ShapeString(want), tensor.ShapeString(x.Shape))
			}
		}
	}
	if given != 0 && given != 2*len(n.hidden) {
		return nil, errorf(BadRequest, "a state must be given whole: h_l and c_l for each of the model's %d layers (%d given)", len(n.hidden), given)
	}
	if given != 0 && mode == SequenceStep {
		return nil, errorf(BadRequest, "a step that continues a sequence starts from the state the server holds; state inputs are only taken with sequence_start or without a sequence")
	}
	p := &Prepared{Rows: B, Inputs: inputs}
	var work, state int64
	for l, hd := range n.hidden {
		in := n.m.Layers[l].InputDim
		kh, kw := n.m.Layers[l].KernelH, n.m.Layers[l].KernelW
		plane := int64(H) * int64(W)
		padded := int64(H+kh) * int64(W+kw)
		chunk := int64(min(T, 16))
		state += 2 * int64(B) * int64(hd) * plane * 4
		work += 4 * (int64(B)*int64(T)*int64(hd)*plane + int64(B)*chunk*padded*int64(4*hd+in+hd))
	}
	p.StateBytes, p.WorkBytes = state, work+state
	fromState := given != 0 || mode == SequenceStep
	p.Key = fmt.Sprintf("t%d h%d w%d state=%t", T, H, W, fromState)
	return p, nil
}

func shapeOf(p *Prepared) nativeShape {
	s := p.Inputs["input"].Shape
	return nativeShape{b: s[0], t: s[1], h: s[3], w: s[4]}
}

// Fits implements Backend.
func (n *Native) Fits(p *Prepared, s State) error {
	st, ok := s.(*nativeState)
	if !ok {
		return errorf(Internal, "state of another model")
	}
	g := shapeOf(p)
	if g.b != st.b || g.h != st.h || g.w != st.w {
		return errorf(BadRequest, "the sequence holds a state for batch %d and %d×%d images; this step has batch %d and %d×%d images", st.b, st.h, st.w, g.b, g.h, g.w)
	}
	return nil
}

// stateOf is the state a work item starts from: the sequence's, the one
// in its inputs, or nil for zeros.
func (n *Native) stateOf(w Work) []runtime.LayerState {
	if st, ok := w.State.(*nativeState); ok {
		return st.layers
	}
	if w.Inputs["h_0"] == nil {
		return nil
	}
	ls := make([]runtime.LayerState, len(n.hidden))
	for l := range ls {
		ls[l] = runtime.LayerState{H: toEngine(w.Inputs[fmt.Sprintf("h_%d", l)]), C: toEngine(w.Inputs[fmt.Sprintf("c_%d", l)])}
	}
	return ls
}

// Run implements Backend: one forward pass over the rows of every item.
func (n *Native) Run(items []Work) []Result {
	res := make([]Result, len(items))
	g0 := shapeOf(items[0].Prepared)
	rows := 0
	for _, w := range items {
		rows += w.Rows
	}
	C := n.m.InputDim()
	frame := g0.t * C * g0.h * g0.w
	var x *tensor.Tensor
	var initial []runtime.LayerState
	if len(items) == 1 {
		x = toEngine(items[0].Inputs["input"])
		initial = n.stateOf(items[0])
	} else {
		x = &tensor.Tensor{Shape: []int{rows, g0.t, C, g0.h, g0.w}, Data: make([]float32, 0, rows*frame), DType: tensor.Float32}
		for _, w := range items {
			x.Data = append(x.Data, w.Inputs["input"].Data...)
		}
		if st := n.stateOf(items[0]); st != nil {
			initial = make([]runtime.LayerState, len(n.hidden))
			for l, hd := range n.hidden {
				size := rows * hd * g0.h * g0.w
				h := &tensor.Tensor{Shape: []int{rows, hd, g0.h, g0.w}, Data: make([]float32, 0, size), DType: tensor.Float32}
				c := &tensor.Tensor{Shape: []int{rows, hd, g0.h, g0.w}, Data: make([]float32, 0, size), DType: tensor.Float32}
				for _, w := range items {
					s := n.stateOf(w)
					h.Data = append(h.Data, s[l].H.Data...)
					c.Data = append(c.Data, s[l].C.Data...)
				}
				initial[l] = runtime.LayerState{H: h, C: c}
			}
		}
	}
	out, err := n.runner(rows, g0.h, g0.w).Forward(x, runtime.ForwardOptions{Initial: initial})
	if err != nil {
		for i := range res {
			res[i].Err = errorf(BadRequest, "%v", err)
		}
		return res
	}
	last := n.hidden[len(n.hidden)-1]
	row := 0
	for i, w := range items {
		b := w.Rows
		outs := map[string]*tensor.Tensor{}
		per := g0.t * last * g0.h * g0.w
		outs["output"] = tensor.FromFloats(out.Output.Data[row*per:(row+b)*per], b, g0.t, last, g0.h, g0.w)
		st := &nativeState{b: b, h: g0.h, w: g0.w, layers: make([]runtime.LayerState, len(n.hidden))}
		for l, hd := range n.hidden {
			per := hd * g0.h * g0.w
			h, c := out.Final[l].H.Data, out.Final[l].C.Data
			if len(items) > 1 {
				// Copied: a sequence keeps only its own rows alive, not
				// the batch's (and its state's size is what it holds).
				h = append([]float32(nil), h[row*per:(row+b)*per]...)
				c = append([]float32(nil), c[row*per:(row+b)*per]...)
			}
			shape := []int{b, hd, g0.h, g0.w}
			st.layers[l] = runtime.LayerState{H: tensor.FromFloats(h, shape...), C: tensor.FromFloats(c, shape...)}
			st.bytes += int64(len(h)+len(c)) * 4
			outs[fmt.Sprintf("h_%d", l)] = tensor.FromFloats(h, shape...)
			outs[fmt.Sprintf("c_%d", l)] = tensor.FromFloats(c, shape...)
		}
		res[i] = Result{Outputs: outs, State: st}
		row += b
	}
	return res
}

// toEngine converts to what the engines take: float32 data (the server
// has converted every float input already).
func toEngine(t *tensor.Tensor) *tensor.Tensor {
	return &tensor.Tensor{Shape: t.Shape, Data: t.Data, DType: tensor.Float32}
}
