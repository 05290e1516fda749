// Package graph runs ONNX graphs: the ones torch.onnx.export produces from
// ConvLSTM models and the layers around them (opsets 11 to 17, and the
// opset-18 forms of ops whose attributes became inputs; unrolled time
// loops, zero states built with Shape/ConstantOfShape for dynamic sizes,
// Loop and If from torch.jit.script) and the graphs package export writes
// (a Scan over time).
//
// # The op table
//
// Every operator is declared once, in the file of its family
// (ops_elementwise.go, ops_shape.go, ops_reduce.go, ops_conv.go,
// ops_norm.go, ops_control.go, ops_sequence.go), as an *opDef in the
// register call of that file's init. A declaration holds the ONNX
// since-versions implemented (and the last opset covered), the input and
// output counts, the attributes accepted with their types (and, for
// strings, the values implemented), an optional compile-time check, and
// run: the shape/dtype rule and the kernel in one function. To add an op:
//
//  1. write func runX(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error):
//     check inputs (x.errf), build outputs (x.newFloat, x.like, newInts),
//     and return early when the values are not at hand (x.dry, x.has);
//  2. add &opDef{name, since: v(...), in: io(lo, hi), out: io(lo, hi),
//     attrs: []attrSpec{aInt("axis"), aString("mode", "nearest"), ...},
//     check, run} to the family's register call;
//  3. refuse attribute values you do not implement in check, with
//     c.unsupported(n, "attr", ...) (names op, node and attribute);
//  4. test it against the ONNX node suite and a reference in a _test.go.
//
// The compiler looks each node up in the table: an op not in it, an opset
// outside its range, a wrong arity, an attribute it does not declare or
// an attribute value it does not implement is refused before anything
// runs, with an error naming the node, the op and the attribute (Check
// lists all of them at once). Fusions are passes over the compiled graph,
// in their own files (fuse.go: the ConvLSTM cell).
//
// # Values
//
// Values are *tensor.Tensor: float dtypes computed as float32 in Data,
// int64, int32 and bool (and the other integer types of initialisers)
// exact in Ints with their real dtype. Before a run on inputs of a shape
// not seen yet, a dry pass computes every value's shape and dtype, and
// every integer value (shapes flow through Shape/Gather/Concat), without
// touching float data (Data is nil), so a malformed model or a mismatched
// input fails with an error naming the node before any real work is done.
// An integer value computed from float data is unknown in the dry pass
// (Ints nil); the dry pass stops at the first op that needs such a value
// and the run checks the rest as it goes.
//
// During a run, float buffers whose last reader has run go back to a free
// list (by size) that later nodes, and later runs, draw from (x.alloc):
// their contents are arbitrary, so a kernel writes every output value. A
// kernel may return an input itself or a view sharing its whole Data (as
// Reshape does), never a sub-slice of it (copy instead), and one that keeps
// a value past its node (a sequence's items) holds it (x.hold).
//
// Nothing here panics on a malformed model: Compile and Run recover a
// panic that escapes an op's checks and return it as an internal error
// naming the node, with the stack.
package graph

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Options tune a compiled graph.
type Options struct {
	// Threads used by the large kernels (0: GOMAXPROCS).
	Threads int
	// NoFuse keeps ConvLSTM cell updates as separate nodes instead of one
	// ops.LSTMGates pass (for testing the fusion).
	NoFuse bool
	// Precision of the convolutions whose weights are initialisers (Conv
	// nodes and fused ConvLSTM cells; engine.ConvOptions.Precision): ""
	// or engine.Float32 exact, engine.BFloat16 bfloat16 weights. Weights
	// computed at run time and every other op stay float32.
	Precision engine.Precision
}

// ErrorKind classifies an Error.
type ErrorKind int

const (
	// Invalid: the model or an input is malformed or inconsistent.
	Invalid ErrorKind = iota
	// Unsupported: a valid operator, opset, attribute or type that this
	// interpreter does not implement.
	Unsupported
	// Internal: a bug of ours (a recovered panic), with its stack.
	Internal
)

// Error reports a problem with a node of the graph (or the graph itself
// when Node and Op are empty).
type Error struct {
	File string
	Node string // node name, or its first output when it has no name
	Op   string
	Attr string // the attribute at fault, if any
	Kind ErrorKind
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("graph: ")
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	if e.Op != "" {
		fmt.Fprintf(&b, "node %q (%s): ", e.Node, e.Op)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ValueInfo describes a graph input or output: Dims holds each dimension as
// a number or, when dynamic, its symbolic name ("?" when unnamed).
type ValueInfo struct {
	Name  string   `json:"name"`
	Type  string   `json:"type"`
	Dims  []string `json:"dims"`
	fixed []int    // -1 for dynamic
}

// Graph is a compiled ONNX model, safe for concurrent Run calls.
type Graph struct {
	File     string
	Opset    int64
	Producer string
	main     *program
	inputs   []ValueInfo
	outputs  []ValueInfo
	threads  int
	arena    arena

	mu      sync.Mutex
	checked map[string]bool // input keys that passed the dry pass
}

// Load reads and compiles an ONNX file.
func Load(path string, opts Options) (*Graph, error) {
	m, err := loader.LoadONNX(path)
	if err != nil {
		return nil, err
	}
	return Compile(m, opts)
}

// Compile checks and prepares a loaded model.
func Compile(m *loader.ONNXModel, opts Options) (g *Graph, err error) {
	prec, err := engine.ParsePrecision(string(opts.Precision))
	if err != nil {
		return nil, &Error{Kind: Invalid, File: m.File, Msg: err.Error()}
	}
	c := &compiler{file: m.File, opset: m.Opset, fuse: !opts.NoFuse}
	c.shared.precision = prec
	defer func() {
		if r := recover(); r != nil {
			g, err = nil, internalError(m.File, c.cur, "compiling", r)
		}
	}()
	g, err = c.compileModel(m, opts)
	if err != nil {
		return nil, err
	}
	// A graph whose inputs are all float and of fixed shape (a static torch
	// export) is shape-checked now, so that a mismatch fails at load rather
	// than at the first run.
	static := len(g.inputs) > 0
	shapes := map[string][]int{}
	for _, in := range g.inputs {
		if in.Dims == nil || slices.Contains(in.fixed, -1) || numel(in.fixed) > maxValues || in.Type != "float32" {
			static = false
			break
		}
		shapes[in.Name] = in.fixed
	}
	if static {
		if _, _, err := g.dryRun(shapes); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Check lists every problem Compile would report, all at once instead of
// the first: each unsupported operator, opset or attribute, each malformed
// node. It is empty when Compile would succeed up to its shape check.
func Check(m *loader.ONNXModel) (errs []error) {
	c := &compiler{file: m.File, opset: m.Opset, collect: true}
	defer func() {
		if r := recover(); r != nil {
			errs = append(errs, internalError(m.File, c.cur, "checking", r))
		}
	}()
	if _, err := c.compileModel(m, Options{NoFuse: true}); err != nil {
		c.errs = append(c.errs, err)
	}
	return c.errs
}

func (c *compiler) compileModel(m *loader.ONNXModel, opts Options) (*Graph, error) {
	// Other operator domains only matter if a node uses one (compileGraph
	// refuses such nodes).
	// Each operator's own since-range decides at which opsets it runs
	// (checkNode names the op and the opset); the model's opset only has
	// to be one that exists.
	if m.Opset < 1 || m.Opset > maxOpset {
		return nil, &Error{File: m.File, Kind: Unsupported, Msg: fmt.Sprintf("opset %d: supported opsets are 1 to %d, each operator within its own range (graph.OpsetRange; tested: 11 to 18)", m.Opset, maxOpset)}
	}
	g := &Graph{File: m.File, Opset: m.Opset, Producer: m.Producer, threads: opts.Threads, checked: map[string]bool{}}
	if g.threads <= 0 {
		g.threads = runtime.GOMAXPROCS(0)
	}
	consts := map[string]*tensor.Tensor{}
	for _, t := range m.Initializers {
		consts[t.Name] = fromONNX(t)
	}
	var err error
	g.main, err = c.compileGraph(m.Proto.Graph, nil, consts)
	if err != nil {
		return nil, err
	}
	for _, vi := range m.Proto.Graph.Input {
		if _, isConst := consts[vi.GetName()]; isConst {
			continue // an initialiser listed as an input (IR < 4 style): a constant
		}
		info, err := valueInfo(m.File, vi)
		if err != nil {
			return nil, err
		}
		g.inputs = append(g.inputs, info)
	}
	for _, vi := range m.Proto.Graph.Output {
		info, err := valueInfo(m.File, vi)
		if err != nil {
			return nil, err
		}
		g.outputs = append(g.outputs, info)
	}
	return g, nil
}

// internalError reports a recovered panic: a bug of ours, named by the node
// it happened in, with the stack (trimmed to the frames after the panic).
func internalError(file string, n *node, doing string, r any) *Error {
	var stack string
	if wp, ok := r.(engine.WorkerPanic); ok {
		r, stack = wp.Value, string(wp.Stack)
	} else {
		stack = string(debug.Stack())
	}
	e := &Error{File: file, Kind: Internal, Msg: fmt.Sprintf("internal error while %s: %v\n%s", doing, r, trimStack(stack))}
	if n != nil {
		e.Node, e.Op = n.name, n.op
	}
	return e
}

// trimStack keeps the frames from the panic on, at most 24 lines.
func trimStack(s string) string {
	lines := strings.Split(s, "\n")
	if i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "panic(") }); i >= 0 {
		lines = lines[i:]
	}
	if len(lines) > 24 {
		lines = append(lines[:24], "\t...")
	}
	return strings.Join(lines, "\n")
}

var typeNames = map[int32]tensor.DType{1: tensor.Float32, 6: tensor.Int32, 7: tensor.Int64, 9: tensor.Bool}

func valueInfo(file string, vi *onnxpb.ValueInfoProto) (ValueInfo, error) {
	dims, elem, ok := loader.ONNXDims(vi)
	if !ok {
		return ValueInfo{}, &Error{File: file, Kind: Unsupported, Msg: fmt.Sprintf("graph value %q is not a tensor (sequences, maps and optionals are not supported)", vi.GetName())}
	}
	info := ValueInfo{Name: vi.GetName(), Type: elem, Dims: dims}
	if vi.GetType().GetTensorType().GetShape() == nil {
		info.Dims = nil // rank unknown
	}
	for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
		if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
			info.fixed = append(info.fixed, int(d.GetDimValue()))
		} else {
			info.fixed = append(info.fixed, -1)
		}
	}
	return info, nil
}

// Inputs lists the graph inputs that are not initialisers.
func (g *Graph) Inputs() []ValueInfo { return g.inputs }

// Outputs lists the graph outputs.
func (g *Graph) Outputs() []ValueInfo { return g.outputs }

// inputTypes are the element types Run accepts, as ValueInfo.Type names
// them; "" (no type declared) takes float32.
var inputTypes = map[string]tensor.DType{"float32": tensor.Float32, "int64": tensor.Int64, "int32": tensor.Int32, "bool": tensor.Bool}

// Run executes the graph on named inputs and returns every graph output by
// name. Inputs are float32, int64, int32 or bool tensors of the type the
// graph declares (a tensor without a DType is float32), checked against the
// declared rank, fixed dimensions and consistent symbolic dimensions.
// Outputs come with their real dtype: float32 in Data, integers and bools
// in Ints.
func (g *Graph) Run(inputs map[string]*tensor.Tensor) (out map[string]*tensor.Tensor, err error) {
	vals := map[string]*tensor.Tensor{}
	sym := map[string]int{}
	var key strings.Builder
	for _, in := range g.inputs {
		t := inputs[in.Name]
		if t == nil {
			return nil, &Error{File: g.File, Msg: fmt.Sprintf("missing input %q (dims %s)", in.Name, strings.Join(in.Dims, "×"))}
		}
		want, ok := inputTypes[in.Type]
		if !ok {
			return nil, &Error{File: g.File, Kind: Unsupported, Msg: fmt.Sprintf("input %q has element type %s; supported input types are float32, int64, int32 and bool", in.Name, in.Type)}
		}
		dt := t.DType
		if dt == "" {
			dt = tensor.Float32
		}
		if dt != want {
			return nil, &Error{File: g.File, Msg: fmt.Sprintf("input %q is %s, the graph declares %s", in.Name, dt, want)}
		}
		if err := t.Check(); err != nil {
			return nil, &Error{File: g.File, Msg: fmt.Sprintf("input %q: %v", in.Name, err)}
		}
		if in.Dims != nil {
			if len(t.Shape) != len(in.Dims) {
				return nil, &Error{File: g.File, Msg: fmt.Sprintf("input %q has shape %s, the graph wants rank %d (%s)", in.Name, tensor.ShapeString(t.Shape), len(in.Dims), strings.Join(in.Dims, "×"))}
			}
			for d, want := range in.fixed {
				got := t.Shape[d]
				if want >= 0 && got != want {
					return nil, &Error{File: g.File, Msg: fmt.Sprintf("input %q has shape %s; dimension %d must be %d (graph shape %s; only named dimensions are dynamic)", in.Name, tensor.ShapeString(t.Shape), d, want, strings.Join(in.Dims, "×"))}
				}
				if want < 0 && in.Dims[d] != "?" {
					if s, ok := sym[in.Dims[d]]; ok && s != got {
						return nil, &Error{File: g.File, Msg: fmt.Sprintf("input %q dimension %d (%s) is %d but %s is %d in another input", in.Name, d, in.Dims[d], got, in.Dims[d], s)}
					}
					sym[in.Dims[d]] = got
				}
			}
		}
		v := &tensor.Tensor{Shape: slices.Clone(t.Shape), DType: dt, Data: t.Data, Ints: t.Ints}
		if v.Shape == nil {
			v.Shape = []int{}
		}
		vals[in.Name] = v
		fmt.Fprintf(&key, "%s%v", in.Name, t.Shape)
		if !dt.IsFloat() {
			// The dry pass computes with integer inputs: their values
			// are part of what it checked.
			fmt.Fprintf(&key, "=%x", hashInts(t.Ints))
		}
		key.WriteByte(';')
	}
	g.mu.Lock()
	done := g.checked[key.String()]
	g.mu.Unlock()
	if !done {
		dry := map[string]*tensor.Tensor{}
		for k, v := range vals {
			d := *v
			d.Data = nil
			dry[k] = &d
		}
		if _, err := g.exec(dry, true); err != nil {
			return nil, err
		}
		g.mu.Lock()
		if len(g.checked) > 1024 {
			g.checked = map[string]bool{}
		}
		g.checked[key.String()] = true
		g.mu.Unlock()
	}
	x, err := g.exec(vals, false)
	if err != nil {
		return nil, err
	}
	out = map[string]*tensor.Tensor{}
	for i, name := range g.main.outputs {
		v := x.res[i]
		out[name] = &tensor.Tensor{Shape: slices.Clone(v.Shape), DType: v.DType, Data: v.Data, Ints: v.Ints}
	}
	return out, nil
}

func hashInts(v []int64) uint64 {
	h := uint64(14695981039346656037)
	for _, x := range v {
		h ^= uint64(x)
		h *= 1099511628211
	}
	return h
}

// InferShapes runs the dry pass only: the shape of every graph output for
// float inputs of the given shapes. A graph with integer inputs needs
// their values, and one whose shapes depend on float data (a Cast of
// computed floats to a shape) cannot be inferred: use Run.
func (g *Graph) InferShapes(shapes map[string][]int) (map[string][]int, error) {
	res, stopped, err := g.dryRun(shapes)
	if err != nil {
		return nil, err
	}
	if stopped != nil {
		return nil, &Error{File: g.File, Node: stopped.name, Op: stopped.op, Msg: "shapes depend on values computed from float data: they are known only when running"}
	}
	out := map[string][]int{}
	for i, name := range g.main.outputs {
		out[name] = res[i].Shape
	}
	return out, nil
}

// dryRun runs the dry pass on float inputs of the given shapes and records
// the shapes as checked. stopped is the node where it stopped, if it met a
// value it cannot know (res is then nil).
func (g *Graph) dryRun(shapes map[string][]int) (res []*tensor.Tensor, stopped *node, err error) {
	vals := map[string]*tensor.Tensor{}
	var key strings.Builder
	for _, in := range g.inputs {
		s, ok := shapes[in.Name]
		if !ok {
			return nil, nil, &Error{File: g.File, Msg: fmt.Sprintf("missing input %q", in.Name)}
		}
		if in.Type != "float32" && in.Type != "" {
			return nil, nil, &Error{File: g.File, Kind: Unsupported, Msg: fmt.Sprintf("input %q is %s: shapes cannot be inferred without its values", in.Name, in.Type)}
		}
		vals[in.Name] = &tensor.Tensor{Shape: slices.Clone(s), DType: tensor.Float32}
		fmt.Fprintf(&key, "%s%v;", in.Name, s)
	}
	x, err := g.exec(vals, true)
	if err != nil {
		return nil, nil, err
	}
	g.mu.Lock()
	g.checked[key.String()] = true
	g.mu.Unlock()
	return x.res, x.stopped, nil
}
