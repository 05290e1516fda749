package server

import (
	"strconv"
	"strings"

	"github.com/convlstm-go/convlstm-go/graph"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// ONNX serves an ONNX graph on package graph: its inputs and outputs are
// the graph's, by name. Requests are not stacked (a graph's first
// dimension need not be a batch) and carry no sequence state.
type ONNX struct {
	g    *graph.Graph
	meta ModelMetadata
}

// NewONNX wraps a compiled graph.
func NewONNX(g *graph.Graph) (*ONNX, error) {
	o := &ONNX{g: g, meta: ModelMetadata{Platform: "onnx_convlstm-go"}}
	for _, in := range g.Inputs() {
		tm, err := onnxMeta(in)
		if err != nil {
			return nil, err
		}
		o.meta.Inputs = append(o.meta.Inputs, tm)
	}
	for _, out := range g.Outputs() {
		tm, err := onnxMeta(out)
		if err != nil {
			return nil, err
		}
		o.meta.Outputs = append(o.meta.Outputs, tm)
	}
	return o, nil
}

func onnxMeta(v graph.ValueInfo) (TensorMetadata, error) {
	dt, ok := datatypeOf(tensor.DType(v.Type))
	if !ok {
		return TensorMetadata{}, errorf(Internal, "graph value %q has element type %s, which the protocol cannot carry", v.Name, v.Type)
	}
	tm := TensorMetadata{Name: v.Name, Datatype: dt, Shape: []int64{}}
	for _, d := range v.Dims {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil {
			n = -1
		}
		tm.Shape = append(tm.Shape, n)
	}
	return tm, nil
}

// Metadata implements Backend.
func (o *ONNX) Metadata() ModelMetadata { return o.meta }

// Close implements Backend.
func (o *ONNX) Close() error { return nil }

// Prepare implements Backend: every graph input must be given, with the
// graph's rank and fixed dimensions; a dry pass over the graph checks the
// rest (symbolic dimensions, op constraints) before any work is queued.
func (o *ONNX) Prepare(inputs map[string]*tensor.Tensor, mode Mode) (*Prepared, error) {
	var names []string
	for _, in := range o.meta.Inputs {
		names = append(names, in.Name)
	}
	for k := range inputs {
		found := false
		for _, n := range names {
			found = found || n == k
		}
		if !found {
			return nil, errorf(BadRequest, "the model has no input %q; its inputs are %s", k, strings.Join(names, ", "))
		}
	}
	shapes := map[string][]int{}
	for _, in := range o.meta.Inputs {
		t := inputs[in.Name]
		if t == nil {
			return nil, errorf(BadRequest, "input %q is missing (the graph's inputs are %s)", in.Name, strings.Join(names, ", "))
		}
		if len(t.Shape) != len(in.Shape) {
			return nil, errorf(BadRequest, "input %q has shape %s; the graph wants %d dimensions %s", in.Name, tensor.ShapeString(t.Shape), len(in.Shape), shapeText(in.Shape))
		}
		for d, want := range in.Shape {
			if want >= 0 && int64(t.Shape[d]) != want {
				return nil, errorf(BadRequest, "input %q has shape %s; dimension %d must be %d (graph shape %s)", in.Name, tensor.ShapeString(t.Shape), d, want, shapeText(in.Shape))
			}
		}
		shapes[in.Name] = t.Shape
	}
	outShapes, err := o.g.InferShapes(shapes)
	if err != nil {
		return nil, errorf(BadRequest, "%v", err)
	}
	var work int64
	for _, s := range outShapes {
		work += int64(tensor.Numel(s)) * 4
	}
	for _, t := range inputs {
		work += int64(t.NumElements()) * 4
	}
	return &Prepared{Rows: 1, Inputs: inputs, WorkBytes: work}, nil
}

// Fits implements Backend; ONNX graphs have no sequences.
func (o *ONNX) Fits(*Prepared, State) error {
	return errorf(BadRequest, "the model keeps no state between requests")
}

// Run implements Backend, one graph run per item.
func (o *ONNX) Run(items []Work) []Result {
	res := make([]Result, len(items))
	for i, w := range items {
		in := map[string]*tensor.Tensor{}
		for k, t := range w.Inputs {
			in[k] = toEngine(t)
		}
		out, err := o.g.Run(in)
		if err != nil {
			res[i].Err = errorf(BadRequest, "%v", err)
			continue
		}
		res[i].Outputs = map[string]*tensor.Tensor{}
		for k, t := range out {
			res[i].Outputs[k] = fromEngine(t)
		}
	}
	return res
}

// fromEngine takes an engine's output: float32 data (whatever float type
// the graph declares, it computes in float32) or exact integers.
func fromEngine(t *tensor.Tensor) *tensor.Tensor {
	if t.IsFloat() {
		return tensor.FromFloats(t.Data, t.Shape...)
	}
	return t
}

func shapeText(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
