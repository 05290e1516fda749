// Package graph runs the ONNX graphs that torch.onnx.export produces from
// ConvLSTM modules (opsets 11 to 17; unrolled time loops, zero states built
// with Shape/ConstantOfShape for dynamic batch/height/width) and the graphs
// package export writes (a Scan over time).
//
// A model is compiled once: every op is checked against the set we
// implement, Constant nodes are evaluated, and each Conv whose weights are
// constants has them packed for ops.ConvGemm (or transformed for
// ops.Winograd3x3 when 3×3, pad 1, ≥ 8 channels). Each cell update that
// torch and package export emit (Concat → Conv → Split → Sigmoid/Tanh →
// Mul/Add) is recognised by its structure and fused into one node: the
// inputs are padded straight into the GEMM's buffer and its output rows go
// straight into ops.LSTMGates (see fuse.go). Before a run on inputs of a
// shape not seen yet, a dry pass computes every value's shape (and every
// integer value, since shapes flow through Shape/Gather/Concat) without
// touching float data, so a malformed model or a mismatched input fails with
// an error naming the node before any real work is done. Nothing here panics
// on a malformed model: a panic that escapes an op's checks is recovered and
// returned as an error naming the node.
package graph

import (
	"github.com/convlstm-go/convlstm-go/tensor"

	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
)

// Options tune a compiled graph.
type Options struct {
	// Threads used by Conv (0: GOMAXPROCS).
	Threads int
	// NoFuse keeps ConvLSTM cell updates as separate nodes instead of one
	// ops.LSTMGates pass (for testing the fusion).
	NoFuse bool
}

// Error reports a problem with a node of the graph (or the graph itself
// when Node and Op are empty).
type Error struct {
	File string
	Node string // node name, or its first output when it has no name
	Op   string
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

	mu      sync.Mutex
	checked map[string]bool // input shape keys that passed the dry pass
}

// value is a tensor flowing through the graph: float data in f, or exact
// integers (shapes, indices) in i. During the dry pass a float value's f is
// nil and only its shape is known.
type value struct {
	shape []int
	f     []float32
	i     []int64
	isInt bool
}

func (v *value) size() int { return numel(v.shape) }

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// node is a compiled NodeProto.
type node struct {
	idx   int
	name  string
	op    string
	in    []string // "" marks an omitted optional input
	out   []string
	attrs map[string]*onnxpb.AttributeProto
	opset int64
	conv  *convPlan // Conv with constant weights, packed at load
	body  *program  // Scan/Loop body
	cell  *cellPlan // fused cell update (op "LSTMCell")
	extra []string  // outer-scope names a body reads (for lifetimes)
}

// program is a compiled GraphProto; bodies of Scan/Loop have a parent.
type program struct {
	parent  *program
	consts  map[string]*value
	nodes   []*node
	inputs  []string // non-constant graph inputs in order
	outputs []string
	lastUse map[string]int // node index after which a value can be dropped
	free    []string       // names read from enclosing scopes
}

func (p *program) constant(name string) *value {
	for q := p; q != nil; q = q.parent {
		if v, ok := q.consts[name]; ok {
			return v
		}
	}
	return nil
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
	defer func() {
		if r := recover(); r != nil {
			g, err = nil, &Error{File: m.File, Msg: fmt.Sprintf("internal error while compiling (malformed model?): %v", r)}
		}
	}()
	// Other operator domains only matter if a node uses one (compileGraph
	// refuses such nodes).
	if m.Opset < 7 || m.Opset > 21 {
		return nil, &Error{File: m.File, Msg: fmt.Sprintf("opset %d: supported opsets are 7 to 21 (tested: 11 to 17)", m.Opset)}
	}
	g = &Graph{File: m.File, Opset: m.Opset, Producer: m.Producer, threads: opts.Threads, checked: map[string]bool{}}
	if g.threads <= 0 {
		g.threads = runtime.GOMAXPROCS(0)
	}
	consts := map[string]*value{}
	for _, t := range m.Initializers {
		consts[t.Name] = fromONNX(t)
	}
	c := &compiler{file: m.File, opset: m.Opset, fuse: !opts.NoFuse}
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
	// A graph whose inputs are all of fixed shape (a static torch export) is
	// shape-checked now, so that a mismatch fails at load rather than at the
	// first run.
	static := len(g.inputs) > 0
	shapes := map[string][]int{}
	var key strings.Builder
	for _, in := range g.inputs {
		if in.Dims == nil || slices.Contains(in.fixed, -1) || numel(in.fixed) > maxValues {
			static = false
			break
		}
		shapes[in.Name] = in.fixed
		fmt.Fprintf(&key, "%s%v;", in.Name, in.fixed)
	}
	if static {
		if _, err := g.InferShapes(shapes); err != nil {
			return nil, err
		}
		g.checked[key.String()] = true
	}
	return g, nil
}

func valueInfo(file string, vi *onnxpb.ValueInfoProto) (ValueInfo, error) {
	dims, elem, ok := loader.ONNXDims(vi)
	if !ok {
		return ValueInfo{}, &Error{File: file, Msg: fmt.Sprintf("graph value %q is not a tensor", vi.GetName())}
	}
	info := ValueInfo{Name: vi.GetName(), Type: elem, Dims: dims}
	if vi.GetType().GetTensorType().GetShape() == nil {
		info.Dims = nil // rank unknown
	}
	for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
		if isDimValue(d) {
			info.fixed = append(info.fixed, int(d.GetDimValue()))
		} else {
			info.fixed = append(info.fixed, -1)
		}
	}
	return info, nil
}

func isDimValue(d *onnxpb.TensorShapeProto_Dimension) bool {
	_, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue)
	return ok
}

// Inputs lists the graph inputs that are not initialisers.
func (g *Graph) Inputs() []ValueInfo { return g.inputs }

// Outputs lists the graph outputs.
func (g *Graph) Outputs() []ValueInfo { return g.outputs }

// fromONNX converts a decoded initialiser or constant.
func fromONNX(t *loader.NamedTensor) *value {
	v := &value{shape: append([]int{}, t.Shape...)}
	if t.IsFloat() {
		v.f = t.Data
		if v.f == nil {
			v.f = []float32{}
		}
	} else {
		v.isInt, v.i = true, t.Ints
		if v.i == nil {
			v.i = []int64{}
		}
	}
	return v
}

// compiler carries what compileGraph needs across nested bodies.
type compiler struct {
	file  string
	opset int64
	fuse  bool
}

func (c *compiler) errf(n *node, format string, args ...any) error {
	return &Error{File: c.file, Node: n.name, Op: n.op, Msg: fmt.Sprintf(format, args...)}
}

func (c *compiler) compileGraph(gp *onnxpb.GraphProto, parent *program, consts map[string]*value) (*program, error) {
	p := &program{parent: parent, consts: consts, lastUse: map[string]int{}}
	defined := map[string]bool{}
	for n := range consts {
		defined[n] = true
	}
	for _, vi := range gp.Input {
		name := vi.GetName()
		if name == "" {
			return nil, &Error{File: c.file, Msg: "graph input with no name"}
		}
		if _, isConst := consts[name]; !isConst {
			p.inputs = append(p.inputs, name)
		}
		defined[name] = true
	}
	visible := func(name string) bool {
		if defined[name] {
			return true
		}
		for q := parent; q != nil; q = q.parent {
			if q.constant(name) != nil {
				return true
			}
		}
		return parent != nil // values of enclosing graphs are checked there at run time
	}
	free := map[string]bool{}
	for i, np := range gp.Node {
		n := &node{idx: i, name: np.GetName(), op: np.GetOpType(), in: np.Input, out: np.Output, attrs: map[string]*onnxpb.AttributeProto{}, opset: c.opset}
		if n.name == "" && len(n.out) > 0 {
			n.name = n.out[0]
		}
		if d := np.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, c.errf(n, "operator domain %q is not supported (only the default ONNX domain)", d)
		}
		for _, a := range np.Attribute {
			n.attrs[a.GetName()] = a
		}
		if err := c.checkNode(n); err != nil {
			return nil, err
		}
		for _, in := range n.in {
			if in == "" {
				continue
			}
			if !defined[in] {
				if parent == nil || !visible(in) {
					return nil, c.errf(n, "input %q is not produced by an earlier node, an initializer or a graph input (nodes must be in topological order)", in)
				}
				free[in] = true
			}
		}
		if n.op == "Scan" || n.op == "Loop" {
			body, err := c.compileBody(n, p)
			if err != nil {
				return nil, err
			}
			n.body = body
			for _, f := range body.free {
				if !defined[f] {
					free[f] = true
				}
				n.extra = append(n.extra, f)
			}
		}
		for _, o := range n.out {
			if o == "" {
				continue
			}
			if defined[o] {
				return nil, c.errf(n, "output %q is defined twice", o)
			}
			defined[o] = true
		}
		if n.op == "Constant" {
			v, err := c.constantValue(n)
			if err != nil {
				return nil, err
			}
			if len(n.out) != 1 {
				return nil, c.errf(n, "Constant must have one output, has %d", len(n.out))
			}
			consts[n.out[0]] = v
			continue // evaluated now, never run
		}
		if n.op == "Conv" {
			if err := c.prepareConv(n, p); err != nil {
				return nil, err
			}
		}
		p.nodes = append(p.nodes, n)
	}
	for _, vi := range gp.Output {
		name := vi.GetName()
		if !defined[name] {
			if parent == nil || !visible(name) {
				return nil, &Error{File: c.file, Msg: fmt.Sprintf("graph output %q is not produced by any node", name)}
			}
			free[name] = true
		}
		p.outputs = append(p.outputs, name)
	}
	if c.fuse {
		fuseCells(p)
		fuseConvs(p)
	}
	for k, n := range p.nodes {
		n.idx = k
		for _, in := range append(append([]string{}, n.in...), n.extra...) {
			p.lastUse[in] = k
		}
	}
	for _, o := range p.outputs {
		p.lastUse[o] = len(p.nodes) // never dropped
	}
	for f := range free {
		p.free = append(p.free, f)
	}
	sort.Strings(p.free)
	return p, nil
}

func (c *compiler) compileBody(n *node, p *program) (*program, error) {
	a := n.attrs["body"]
	if a == nil || a.G == nil {
		return nil, c.errf(n, "missing graph attribute \"body\"")
	}
	consts := map[string]*value{}
	for i, tp := range a.G.Initializer {
		t, err := loader.DecodeAttributeTensor(c.file, tp)
		if err != nil {
			return nil, c.errf(n, "body initializer #%d: %v", i, err)
		}
		consts[t.Name] = fromONNX(t)
	}
	return c.compileGraph(a.G, p, consts)
}

// constantValue evaluates a Constant node.
func (c *compiler) constantValue(n *node) (*value, error) {
	for name, a := range n.attrs {
		switch name {
		case "value":
			t, err := loader.DecodeAttributeTensor(c.file, a.T)
			if err != nil {
				return nil, c.errf(n, "value: %v", err)
			}
			return fromONNX(t), nil
		case "value_float":
			return &value{shape: []int{}, f: []float32{a.GetF()}}, nil
		case "value_floats":
			return &value{shape: []int{len(a.Floats)}, f: append([]float32{}, a.Floats...)}, nil
		case "value_int":
			return &value{shape: []int{}, i: []int64{a.GetI()}, isInt: true}, nil
		case "value_ints":
			return &value{shape: []int{len(a.Ints)}, i: append([]int64{}, a.Ints...), isInt: true}, nil
		}
	}
	return nil, c.errf(n, "no value, value_float(s) or value_int(s) attribute (sparse and string constants are not supported)")
}

// arity is the allowed number of inputs and outputs of each supported op.
var arity = map[string][4]int{ // min in, max in, min out, max out
	"Conv": {2, 3, 1, 1}, "Concat": {1, 1 << 20, 1, 1}, "Split": {1, 2, 1, 1 << 20},
	"Slice": {1, 5, 1, 1}, "Gather": {2, 2, 1, 1}, "Sigmoid": {1, 1, 1, 1}, "Tanh": {1, 1, 1, 1},
	"Relu": {1, 1, 1, 1}, "Mul": {2, 2, 1, 1}, "Add": {2, 2, 1, 1}, "Sub": {2, 2, 1, 1}, "Div": {2, 2, 1, 1},
	"Unsqueeze": {1, 2, 1, 1}, "Squeeze": {1, 2, 1, 1}, "Constant": {0, 0, 1, 1},
	"ConstantOfShape": {1, 1, 1, 1}, "Shape": {1, 1, 1, 1}, "Identity": {1, 1, 1, 1},
	"Transpose": {1, 1, 1, 1}, "Reshape": {2, 2, 1, 1}, "Cast": {1, 1, 1, 1},
	"Scan": {1, 1 << 20, 1, 1 << 20},
}

// SupportedOps lists the operators the interpreter runs.
func SupportedOps() []string {
	var s []string
	for k := range arity {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

func (c *compiler) checkNode(n *node) error {
	ar, ok := arity[n.op]
	if !ok {
		return c.errf(n, "operator %s is not supported; supported: %s", n.op, strings.Join(SupportedOps(), ", "))
	}
	if len(n.in) < ar[0] || len(n.in) > ar[1] {
		return c.errf(n, "%d inputs, want %d to %d", len(n.in), ar[0], ar[1])
	}
	if len(n.out) < ar[2] || len(n.out) > ar[3] {
		return c.errf(n, "%d outputs, want %d to %d", len(n.out), ar[2], ar[3])
	}
	for i := 0; i < ar[0] && i < len(n.in); i++ {
		if n.in[i] == "" && n.op != "Loop" {
			return c.errf(n, "required input #%d is empty", i)
		}
	}
	for _, o := range n.out {
		if o == "" && n.op != "Split" && n.op != "Scan" && n.op != "Loop" {
			return c.errf(n, "output with an empty name")
		}
	}
	return nil
}

// Run executes the graph on named float32 inputs and returns every graph
// output by name. Inputs are checked against the declared rank, fixed
// dimensions and consistent symbolic dimensions.
func (g *Graph) Run(inputs map[string]*tensor.Tensor) (out map[string]*tensor.Tensor, err error) {
	vals := map[string]*value{}
	sym := map[string]int{}
	var key strings.Builder
	for _, in := range g.inputs {
		t := inputs[in.Name]
		if t == nil {
			return nil, &Error{File: g.File, Msg: fmt.Sprintf("missing input %q (dims %s)", in.Name, strings.Join(in.Dims, "×"))}
		}
		if in.Type != "float32" {
			return nil, &Error{File: g.File, Msg: fmt.Sprintf("input %q has element type %s; only float32 inputs are supported", in.Name, in.Type)}
		}
		if len(t.Data) != t.NumElements() {
			return nil, &Error{File: g.File, Msg: fmt.Sprintf("input %q: %d values for shape %s", in.Name, len(t.Data), tensor.ShapeString(t.Shape))}
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
		vals[in.Name] = &value{shape: append([]int{}, t.Shape...), f: t.Data}
		fmt.Fprintf(&key, "%s%v;", in.Name, t.Shape)
	}
	g.mu.Lock()
	done := g.checked[key.String()]
	g.mu.Unlock()
	if !done {
		dry := map[string]*value{}
		for k, v := range vals {
			dry[k] = &value{shape: v.shape}
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
	res, err := g.exec(vals, false)
	if err != nil {
		return nil, err
	}
	out = map[string]*tensor.Tensor{}
	for i, name := range g.main.outputs {
		v := res[i]
		t := &tensor.Tensor{Shape: append([]int{}, v.shape...), DType: tensor.Float32, Data: v.f}
		if v.isInt {
			t = &tensor.Tensor{Shape: append([]int{}, v.shape...), DType: tensor.Int64, Ints: v.i}
		}
		out[name] = t
	}
	return out, nil
}

// InferShapes runs the dry pass only: the shape of every graph output for
// inputs of the given shapes.
func (g *Graph) InferShapes(shapes map[string][]int) (map[string][]int, error) {
	vals := map[string]*value{}
	for _, in := range g.inputs {
		s, ok := shapes[in.Name]
		if !ok {
			return nil, &Error{File: g.File, Msg: fmt.Sprintf("missing input %q", in.Name)}
		}
		vals[in.Name] = &value{shape: s}
	}
	res, err := g.exec(vals, true)
	if err != nil {
		return nil, err
	}
	out := map[string][]int{}
	for i, name := range g.main.outputs {
		out[name] = res[i].shape
	}
	return out, nil
}

func (g *Graph) exec(vals map[string]*value, dry bool) (res []*value, err error) {
	r := &runner{g: g, dry: dry}
	defer func() {
		if rec := recover(); rec != nil {
			res, err = nil, &Error{File: g.File, Node: r.cur.name, Op: r.cur.op, Msg: fmt.Sprintf("internal error (malformed model?): %v", rec)}
		}
	}()
	return r.run(g.main, &scope{vals: vals})
}

// scope holds the values of one graph execution; bodies see their
// enclosing scopes.
type scope struct {
	vals   map[string]*value
	parent *scope
}

type runner struct {
	g   *Graph
	dry bool
	cur node // for the recover message
}

func (r *runner) lookup(p *program, s *scope, name string) *value {
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

func (r *runner) run(p *program, s *scope) ([]*value, error) {
	for _, n := range p.nodes {
		r.cur = node{name: n.name, op: n.op}
		in := make([]*value, len(n.in))
		for i, name := range n.in {
			if name == "" {
				continue
			}
			in[i] = r.lookup(p, s, name)
			if in[i] == nil {
				return nil, r.errf(n, "input %q has no value", name)
			}
		}
		outs, err := r.node(p, s, n, in)
		if err != nil {
			return nil, err
		}
		if len(outs) < len(n.out) {
			return nil, r.errf(n, "produced %d outputs, the node names %d", len(outs), len(n.out))
		}
		for i, o := range n.out {
			if o != "" {
				s.vals[o] = outs[i]
			}
		}
		if !r.dry {
			for _, name := range n.in {
				if p.lastUse[name] == n.idx {
					delete(s.vals, name)
				}
			}
		}
	}
	res := make([]*value, len(p.outputs))
	for i, name := range p.outputs {
		res[i] = r.lookup(p, s, name)
		if res[i] == nil {
			return nil, &Error{File: r.g.File, Msg: fmt.Sprintf("graph output %q has no value", name)}
		}
	}
	return res, nil
}

func (r *runner) errf(n *node, format string, args ...any) error {
	return &Error{File: r.g.File, Node: n.name, Op: n.op, Msg: fmt.Sprintf(format, args...)}
}
