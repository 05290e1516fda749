package model

import (
	"fmt"
	goruntime "runtime"
	"strings"

	"github.com/convlstm-go/convlstm-go/runtime"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Run runs the model on named inputs (see Inputs) and returns its outputs
// by name (see Outputs). Every input the model requires must be given and
// nothing else; an input's dtype must be of the kind the model declares
// (any float dtype for a float input, as its values are held in float32;
// any integer dtype for an integer input, relabelled exactly; bool for
// bool).
func (m *Model) Run(inputs map[string]*tensor.Tensor, opts RunOptions) (map[string]*tensor.Tensor, error) {
	if err := m.CheckRunOptions(opts); err != nil {
		return nil, err
	}
	if err := m.CheckInputs(inputs); err != nil {
		return nil, err
	}
	if m.Kind == KindGraph {
		return m.runGraph(inputs, opts)
	}
	return m.runNative(inputs, opts)
}

// CheckRunOptions reports run options that do not apply to the model
// (an *OptionError), as Run would, without running.
func (m *Model) CheckRunOptions(opts RunOptions) error {
	return CheckOptions(m.File, m.Kind, Options{}, opts)
}

// CheckInputs checks inputs as Run would, without running: unknown names,
// missing required inputs, values of the wrong kind, and shapes against
// the rank and fixed dimensions each input declares. Errors name the input
// and what was expected.
func (m *Model) CheckInputs(inputs map[string]*tensor.Tensor) error {
	known := map[string]IO{}
	for _, in := range m.inputs {
		known[in.Name] = in
	}
	var unknown []string
	for _, k := range sortedKeys(inputs) {
		if _, ok := known[k]; !ok {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("model: %s: no input named %s; the model takes %s", m.File, strings.Join(unknown, ", "), names(m.inputs))
	}
	for _, in := range m.inputs {
		t, ok := inputs[in.Name]
		if !ok || t == nil {
			if !in.Optional {
				return fmt.Errorf("model: %s: input %s is missing; the model takes %s", m.File, in, names(m.inputs))
			}
			continue
		}
		if err := t.Check(); err != nil {
			return fmt.Errorf("model: %s: input %q: %v", m.File, in.Name, err)
		}
		if err := kindMatches(in, t); err != nil {
			return fmt.Errorf("model: %s: input %q is %s %s: %v", m.File, in.Name, dtypeName(t), tensor.ShapeString(t.Shape), err)
		}
		if err := shapeMatches(in, t.Shape); err != "" {
			return fmt.Errorf("model: %s: input %q has shape %s: %s; want %s", m.File, in.Name, tensor.ShapeString(t.Shape), err, in.DimString())
		}
	}
	return nil
}

// shapeMatches checks a shape against an input's declared dims (-1 matches
// any size, nil dims any shape) and says what differs.
func shapeMatches(in IO, shape []int) string {
	if in.Dims == nil {
		return ""
	}
	if len(in.Dims) != len(shape) {
		return fmt.Sprintf("%d dimensions, the model takes %d", len(shape), len(in.Dims))
	}
	for i, d := range in.Dims {
		if d >= 0 && shape[i] != d {
			if i < len(in.axes) {
				return fmt.Sprintf("%d %s, the model takes %d", shape[i], in.axes[i], d)
			}
			return fmt.Sprintf("dimension %d is %d, the model takes %d", i, shape[i], d)
		}
	}
	return ""
}

func dtypeName(t *tensor.Tensor) tensor.DType {
	if t.DType == "" {
		return tensor.Float32
	}
	return t.DType
}

// kindMatches checks a tensor against the dtype an input declares.
func kindMatches(in IO, t *tensor.Tensor) error {
	want := in.DType
	switch {
	case want.IsFloat():
		if !t.IsFloat() {
			return fmt.Errorf("want %s values (any float dtype is read as float32)", want)
		}
	case want == tensor.Bool:
		if t.DType != tensor.Bool {
			return fmt.Errorf("want bool values")
		}
	case want.IsInt():
		if t.IsFloat() || t.DType == tensor.Bool {
			return fmt.Errorf("want %s values (any integer dtype is accepted)", want)
		}
		if lo, hi, ok := intRange(want); ok {
			for i, v := range t.Ints {
				if v < lo || v > hi {
					return fmt.Errorf("value %d at index %d does not fit the %s the model declares", v, i, want)
				}
			}
		}
	default:
		return fmt.Errorf("the model declares element type %s, which cannot be given", want)
	}
	return nil
}

// intRange is the range of an integer dtype narrower than int64.
func intRange(dt tensor.DType) (lo, hi int64, ok bool) {
	bits := 8 * dt.Size()
	if bits == 0 || bits >= 64 {
		return 0, 0, false
	}
	if dt == tensor.Uint8 || dt == tensor.Uint16 || dt == tensor.Uint32 {
		return 0, 1<<bits - 1, true
	}
	return -1 << (bits - 1), 1<<(bits-1) - 1, true
}

// asDeclared relabels an input held in a compatible dtype as the one the
// model declares: float values are already float32, integers exact int64.
func asDeclared(in IO, t *tensor.Tensor) *tensor.Tensor {
	if t.DType == in.DType {
		return t
	}
	c := *t
	c.DType = in.DType
	return &c
}

func (m *Model) runGraph(inputs map[string]*tensor.Tensor, opts RunOptions) (map[string]*tensor.Tensor, error) {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	feed := make(map[string]*tensor.Tensor, len(inputs))
	for _, in := range m.inputs {
		if t := inputs[in.Name]; t != nil {
			feed[in.Name] = asDeclared(in, t)
		}
	}
	return m.Graph.Run(feed)
}

func (m *Model) runNative(inputs map[string]*tensor.Tensor, opts RunOptions) (map[string]*tensor.Tensor, error) {
	layers := len(m.Native.Layers)
	var initial []runtime.LayerState
	var have, missing []string
	for l := 0; l < layers; l++ {
		for _, k := range []string{fmt.Sprintf("h_%d", l), fmt.Sprintf("c_%d", l)} {
			if inputs[k] != nil {
				have = append(have, k)
			} else {
				missing = append(missing, k)
			}
		}
	}
	if len(have) > 0 {
		if len(missing) > 0 {
			return nil, fmt.Errorf("model: %s: an initial state needs h_l and c_l for each of the model's %d layer(s) (or none, to start from zeros): %s given, %s missing", m.File, layers, strings.Join(have, ", "), strings.Join(missing, ", "))
		}
		initial = make([]runtime.LayerState, layers)
		for l := range initial {
			initial[l] = runtime.LayerState{H: inputs[fmt.Sprintf("h_%d", l)], C: inputs[fmt.Sprintf("c_%d", l)]}
		}
	}
	r, err := m.nativeRunner()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	res, err := r.Forward(inputs["input"], runtime.ForwardOptions{TimeFirst: opts.TimeFirst, AllLayers: opts.AllLayers, Initial: initial})
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", m.File, err)
	}
	out := map[string]*tensor.Tensor{"output": res.Output}
	for l, s := range res.Final {
		out[fmt.Sprintf("h_%d", l)], out[fmt.Sprintf("c_%d", l)] = s.H, s.C
	}
	for l, o := range res.Layers {
		out[fmt.Sprintf("output_%d", l)] = o
	}
	return out, nil
}

func threadCount(n int) int {
	if n <= 0 {
		return goruntime.GOMAXPROCS(0)
	}
	return n
}

// Recycle hands tensors that Run returned back to the model, for later
// Runs of a native ConvLSTM to write their outputs and states into instead
// of new memory (which costs its page faults on first touch); the caller
// must not use them afterwards. Graph models ignore it.
func (m *Model) Recycle(outputs map[string]*tensor.Tensor) {
	if m.Kind != KindConvLSTM {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.runner == nil {
		return
	}
	for _, t := range outputs {
		m.runner.RecycleTensor(t)
	}
}
