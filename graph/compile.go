package graph

import (
	"fmt"
	"sort"
	"sync"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// node is a compiled NodeProto.
type node struct {
	idx   int
	name  string
	op    string
	def   *opDef
	in    []string // "" marks an omitted optional input
	out   []string
	attrs map[string]*onnxpb.AttributeProto
	opset int64
	// Per-op state prepared at compile time.
	value *tensor.Tensor      // Constant
	conv  *convNode           // Conv: attributes, constant weights packed after the fusion passes
	gemmB []float32           // Gemm with a constant B: B' laid out k×n
	sub   map[string]*program // graph attributes: Scan/Loop body, If branches
	cell  *cellPlan           // fused cell update (op "LSTMCell")
	gcell *gateCell           // fused general cell update (op "GateCell")
	gnorm *groupNorm          // fused GroupNorm (op "GroupNorm")
	extra []string            // outer-scope names the subgraphs read (for lifetimes)
}

// program is a compiled GraphProto; subgraphs have a parent.
type program struct {
	parent  *program
	consts  map[string]*tensor.Tensor
	nodes   []*node
	inputs  []string // non-constant graph inputs in order
	outputs []string
	outInfo []ValueInfo    // declared type and shape of each output
	lastUse map[string]int // node index after which a value can be dropped
	free    []string       // names read from enclosing scopes
	// The dependencies between nodes, for running them concurrently
	// (schedule.go), made on first use.
	depsOnce sync.Once
	sched    *deps
}

func (p *program) constant(name string) *tensor.Tensor {
	for q := p; q != nil; q = q.parent {
		if v, ok := q.consts[name]; ok {
			return v
		}
	}
	return nil
}

// compiler carries what compileGraph needs across nested graphs.
type compiler struct {
	file    string
	opset   int64
	fuse    bool
	collect bool    // Check: record node errors and go on
	errs    []error // what collect recorded
	cur     *node   // the node being compiled, for a recovered panic
	prog    *program
	shared  shared // packed weights by content, shared between nodes
}

func (c *compiler) errf(n *node, format string, args ...any) error {
	return &Error{File: c.file, Node: n.name, Op: n.op, Msg: fmt.Sprintf(format, args...)}
}

// errAttr reports an invalid value of attribute attr.
func (c *compiler) errAttr(n *node, attr, format string, args ...any) error {
	return &Error{File: c.file, Node: n.name, Op: n.op, Attr: attr, Msg: fmt.Sprintf(format, args...)}
}

// unsupported reports something valid that we do not implement.
func (c *compiler) unsupported(n *node, attr, format string, args ...any) error {
	return &Error{File: c.file, Node: n.name, Op: n.op, Attr: attr, Kind: Unsupported, Msg: fmt.Sprintf(format, args...)}
}

// fromONNX converts a decoded initialiser or constant: floats of any width
// are float32 values here.
func fromONNX(t *loader.NamedTensor) *tensor.Tensor {
	v := &tensor.Tensor{Shape: append([]int{}, t.Shape...), DType: t.DType, Data: t.Data, Ints: t.Ints}
	if v.IsFloat() {
		v.DType = tensor.Float32
		if v.Data == nil {
			v.Data = []float32{}
		}
	} else if v.Ints == nil {
		v.Ints = []int64{}
	}
	return v
}

func (c *compiler) compileGraph(gp *onnxpb.GraphProto, parent *program, consts map[string]*tensor.Tensor) (*program, error) {
	p := &program{parent: parent, consts: consts, lastUse: map[string]int{}}
	saved := c.prog
	defer func() { c.prog = saved }()
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
		// Values of enclosing graphs are checked there, at run time.
		return defined[name] || parent != nil
	}
	free := map[string]bool{}
	for i, np := range gp.Node {
		n := &node{idx: i, name: np.GetName(), op: np.GetOpType(), in: np.Input, out: np.Output, attrs: map[string]*onnxpb.AttributeProto{}, opset: c.opset}
		if n.name == "" && len(n.out) > 0 {
			n.name = n.out[0]
		}
		for _, a := range np.Attribute {
			n.attrs[a.GetName()] = a
		}
		c.cur, c.prog = n, p
		var err error
		if d := np.GetDomain(); d != "" && d != "ai.onnx" {
			err = c.unsupported(n, "", "operator domain %q is not supported (only the default ONNX domain)", d)
		} else {
			err = c.compileNode(n, p, defined, free, visible)
		}
		for _, o := range n.out {
			if o != "" {
				defined[o] = true
			}
		}
		if err != nil {
			if !c.collect {
				return nil, err
			}
			c.errs = append(c.errs, err)
			continue
		}
		if n.op == "Constant" {
			consts[n.out[0]] = n.value // evaluated now, never run
			continue
		}
		p.nodes = append(p.nodes, n)
	}
	c.cur = nil
	for _, vi := range gp.Output {
		name := vi.GetName()
		if !defined[name] {
			if !visible(name) {
				err := &Error{File: c.file, Msg: fmt.Sprintf("graph output %q is not produced by any node", name)}
				if !c.collect {
					return nil, err
				}
				c.errs = append(c.errs, err)
			}
			free[name] = true
		}
		p.outputs = append(p.outputs, name)
		info, _ := valueInfo(c.file, vi) // an untyped output stays zero
		p.outInfo = append(p.outInfo, info)
	}
	if c.fuse {
		c.foldConstants(p) // first: the passes below then see constants
		fuseCells(p)
		fuseGateCells(p) // the cells fuseCells did not take: several Splits, peepholes, norms
		fuseGroupNorms(p)
		fuseConvs(p)
		fuseConvEpilogues(p) // after the cells have taken their convs, before elementwise chains
		pruneZeroParts(p)    // after BatchNormalization folding: it slices the folded weights
		fuseElementwise(p)   // last: the passes above match single ops
	}
	if err := c.prepareConvs(p); err != nil {
		return nil, err
	}
	for k, n := range p.nodes {
		n.idx = k
		for _, in := range n.in {
			p.lastUse[in] = k
		}
		for _, in := range n.extra {
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

// compileNode checks one node against the table and the values defined so
// far, and compiles its subgraphs.
func (c *compiler) compileNode(n *node, p *program, defined, free map[string]bool, visible func(string) bool) error {
	for _, o := range n.out {
		if o != "" && defined[o] {
			return c.errf(n, "output %q is defined twice", o)
		}
	}
	for _, in := range n.in {
		if in != "" && !defined[in] {
			if !visible(in) {
				return c.errf(n, "input %q is not produced by an earlier node, an initializer or a graph input (nodes must be in topological order)", in)
			}
			free[in] = true
		}
	}
	if err := c.checkNode(n); err != nil {
		return err
	}
	// Subgraphs (declared GRAPH attributes) are compiled with this graph
	// as their parent; the outer values they read are inputs of the node
	// for lifetime purposes.
	for _, spec := range n.def.attrs {
		a := n.attrs[spec.name]
		if spec.kind != onnxpb.AttributeProto_GRAPH || a == nil {
			continue
		}
		if a.G == nil {
			return c.errAttr(n, spec.name, "graph attribute %q is empty", spec.name)
		}
		sub, err := c.compileSubgraph(n, a.G, p)
		if err != nil {
			return err
		}
		if n.sub == nil {
			n.sub = map[string]*program{}
		}
		n.sub[spec.name] = sub
		c.cur = n
		for _, f := range sub.free {
			if !defined[f] {
				free[f] = true
			}
			n.extra = append(n.extra, f)
		}
	}
	return nil
}

// depth limits nested subgraphs (a Loop in an If in a Loop ...).
const maxDepth = 32

func (c *compiler) compileSubgraph(n *node, gp *onnxpb.GraphProto, p *program) (*program, error) {
	depth := 0
	for q := p; q != nil; q = q.parent {
		depth++
	}
	if depth > maxDepth {
		return nil, c.errf(n, "subgraphs nested more than %d deep", maxDepth)
	}
	consts := map[string]*tensor.Tensor{}
	for i, tp := range gp.Initializer {
		t, err := loader.DecodeAttributeTensor(c.file, tp)
		if err != nil {
			return nil, c.errf(n, "subgraph initializer #%d: %v", i, err)
		}
		consts[t.Name] = fromONNX(t)
	}
	return c.compileGraph(gp, p, consts)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
