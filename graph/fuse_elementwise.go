package graph

import (
	"math"
	"slices"
	"strings"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// Elementwise chains: a run of float elementwise nodes, each the only
// reader of the one before, such as GELU as torch.onnx.export writes it
//
//	Div(x, √2) → Erf → Add(·, 1) → Mul(x, ·) → Mul(·, 0.5)
//
// or sigmoid(x)·255, tanh(x)·10, a LayerNorm's ·γ + β, is run as one node:
// the output is computed block by block (blockLen values at a time go
// through every op while they sit in L1), and the intermediate tensors
// are never written. Each op uses the same kernel as when it runs alone,
// in the same order, so the fused result is bit-identical to the unfused
// one.
//
// A chain starts at any fusable node and grows while the value it computes
// has exactly one reader, a fusable node, and is neither a graph output nor
// read by a subgraph. Ops with one float input (every unary op, Clip with
// constant or absent bounds) fuse as they are; binary ones (Add, Sub, Mul,
// Div, Pow, PRelu, two-input Min and Max) take their other operand from a
// scalar constant (folded in), another value (an input of the fused node,
// read in place, broadcast by runs like a standalone op), or the chain's
// value itself (x·x).
//
// Shapes and types are only known when running: the fused node checks
// that its inputs are float32 and that no op after the first enlarges the
// value by broadcasting (that would repeat the work before it for every
// copy); otherwise it runs the original nodes one by one.

// blockLen is how many values go through the chain at a time: small
// enough that the block and its float64 twin stay in L1, large enough that
// the loops over it dominate the per-block overhead.
const blockLen = 1024

// Operands of a chain step besides fused-node inputs (index >= 0).
const (
	argSelf  = -1 // the chain's value so far
	argConst = -2 // the step's constant c
)

// ewStep is one op of a chain. The first step reads only inputs and
// constants; every later step reads the chain's value (as a, b or both).
type ewStep struct {
	n     *node
	unary bool
	u     unary // when unary: applied to a
	k     bKind // when binary: a op b
	a, b  int   // operands: an input index, argSelf or argConst
	c     []float32
	shape []int // the constant's shape (it may add leading axes)
}

// ewChain is a fused node's plan.
type ewChain struct {
	steps    []ewStep
	original []*node // in graph order, for the fallback
	costly   bool    // a step is a transcendental or Pow
	gelu     bool    // the steps are the exported GELU: one dedicated loop
}

// chainFusion turns the pass off (for benchmarks that compare; Options
// NoFuse turns off every fusion).
var chainFusion = true

// fuseElementwise rewrites p.nodes, replacing each chain of two or more
// fusable nodes by one node placed where the chain's last node was.
func fuseElementwise(p *program) {
	if !chainFusion {
		return
	}
	producer, uses := usage(p)
	consumers, pos := consumersOf(p)
	claimed := map[*node]bool{}
	replace := map[*node]*node{}
	for _, head := range p.nodes {
		if claimed[head] {
			continue
		}
		first, ok := chainStep(p, head, "")
		if !ok || readsIntegers(head, producer) {
			continue
		}
		chain := &ewChain{steps: []ewStep{first}, original: []*node{head}}
		for cur := head; ; {
			// The value's only reader (it may read it twice: x·x), and
			// nothing else: no other node, graph output or subgraph.
			o := cur.out[0]
			if len(consumers[o]) != 1 {
				break
			}
			next := consumers[o][0]
			// Later in the graph (a subgraph's node may name its own
			// output as an input: an error when running, not a loop here).
			if claimed[next] || pos[next] <= pos[cur] || uses[o] != countOf(next.in, o) {
				break
			}
			st, ok := chainStep(p, next, o)
			if !ok {
				break
			}
			chain.steps = append(chain.steps, st)
			chain.original = append(chain.original, next)
			cur = next
		}
		if len(chain.steps) < 2 {
			continue
		}
		for _, n := range chain.original {
			claimed[n] = true
		}
		last := chain.original[len(chain.original)-1]
		replace[last] = chain.node()
	}
	if len(replace) == 0 {
		return
	}
	splice(p, replace, claimed)
}

// intSources are ops whose outputs are integers or bools (Cast unless to
// a float type): a chain starting on them would fall back every run.
var intSources = map[string]bool{"Shape": true, "Size": true, "Range": true, "NonZero": true, "ArgMax": true, "ArgMin": true,
	"Equal": true, "Less": true, "Greater": true, "LessOrEqual": true, "GreaterOrEqual": true, "And": true, "Or": true, "Xor": true, "Not": true}

// readsIntegers says whether node n reads a value that is known at compile
// time to be integer: shape arithmetic, not for this pass.
func readsIntegers(n *node, producer map[string]*node) bool {
	for _, in := range n.in {
		pr := producer[in]
		if pr == nil {
			continue
		}
		if intSources[pr.op] {
			return true
		}
		if to := attrInt(pr, "to", 1); pr.op == "Cast" && to != 1 && to != 10 && to != 11 && to != 16 {
			return true
		}
	}
	return false
}

// chainStep describes node n as a chain step reading the chain's value
// self ("" for the first step), or reports that it does not fuse.
func chainStep(p *program, n *node, self string) (ewStep, bool) {
	st := ewStep{n: n}
	if len(n.out) != 1 || n.out[0] == "" || slices.Contains(n.in, "") && n.op != "Clip" {
		return st, false
	}
	operand := func(name string) (int, bool) {
		switch {
		case name == self:
			return argSelf, true
		case name == "":
			return 0, false
		}
		if t := p.constant(name); t != nil {
			if !t.IsFloat() {
				return 0, false // integer arithmetic (shapes): not for this pass
			}
			if len(t.Data) == 1 && st.c == nil {
				st.c, st.shape = t.Data, t.Shape
				return argConst, true
			}
		}
		return 0, true // an input: numbered by node()
	}
	if _, ok := unaryKinds[n.op]; ok && n.op != "Clip" {
		st.unary, st.u = true, unaryOf(n)
		a, ok := operand(n.in[0])
		st.a = a
		return st, ok && (self == "" || a == argSelf)
	}
	switch n.op {
	case "Clip":
		u := unary{k: uClip, a: float32(math.Inf(-1)), b: float32(math.Inf(1))}
		if n.opset < 11 {
			if n.opset >= 6 {
				u.a, u.b = -math.MaxFloat32, math.MaxFloat32
			}
			u.a, u.b = attrFloat(n, "min", u.a), attrFloat(n, "max", u.b)
		} else {
			for i, b := range []*float32{&u.a, &u.b} {
				if i+1 >= len(n.in) || n.in[i+1] == "" {
					continue
				}
				t := p.constant(n.in[i+1])
				if t == nil || !t.IsFloat() || len(t.Data) != 1 {
					return st, false // a bound known only when running
				}
				*b = t.Data[0]
			}
		}
		st.unary, st.u = true, u
		a, ok := operand(n.in[0])
		st.a = a
		return st, ok && (self == "" || a == argSelf)
	case "Add", "Sub", "Mul", "Div", "Pow", "PRelu":
		if n.opset < 7 {
			return st, false // legacy broadcast attributes
		}
	case "Max", "Min":
		if n.opset < 8 || len(n.in) != 2 {
			return st, false
		}
	default:
		return st, false
	}
	st.k = binaryKinds[n.op]
	var ok1, ok2 bool
	st.a, ok1 = operand(n.in[0])
	st.b, ok2 = operand(n.in[1])
	switch {
	case !ok1 || !ok2:
		return st, false
	case self == "":
		if st.a == argConst && st.b == argConst {
			return st, false // constant folding is not this pass's business
		}
		if st.k == bPRelu && st.a == argConst {
			return st, false
		}
		return st, true
	case st.k == bPRelu: // the chain's value must be the input, not the slope
		return st, st.a == argSelf
	}
	return st, st.a == argSelf || st.b == argSelf
}

// node builds the fused node: its inputs are the chain's operands that are
// neither the chain's value nor folded constants, without repeats.
func (ch *ewChain) node() *node {
	var in []string
	index := func(name string) int {
		if i := slices.Index(in, name); i >= 0 {
			return i
		}
		in = append(in, name)
		return len(in) - 1
	}
	ops := make([]string, len(ch.steps))
	for i := range ch.steps {
		st := &ch.steps[i]
		ops[i] = st.n.op
		if st.a >= 0 {
			st.a = index(st.n.in[0])
		}
		if !st.unary && st.b >= 0 {
			st.b = index(st.n.in[1])
		}
		if (st.unary && st.u.costly()) || (!st.unary && st.k == bPow) {
			ch.costly = true
		}
	}
	ch.gelu = ch.isGELU()
	head, last := ch.original[0], ch.original[len(ch.original)-1]
	name := "ElementwiseChain"
	if ch.gelu {
		name = "GELU"
	}
	def := &opDef{name: name, run: func(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		return x.runChain(n, ch, in)
	}}
	return &node{
		idx:   last.idx,
		name:  head.name,
		op:    strings.Join(ops, "+"),
		def:   def,
		in:    in,
		out:   []string{last.out[0]},
		attrs: head.attrs,
		opset: head.opset,
	}
}

// isGELU recognises torch's exported GELU, 0.5·(x·(erf(x/√2) + 1)), in
// any operand order of its commutative ops.
func (ch *ewChain) isGELU() bool {
	s := ch.steps
	if len(s) != 5 {
		return false
	}
	is := func(st ewStep, k bKind, c float32) bool { // self op c, either way round
		return !st.unary && st.k == k && st.c != nil && st.c[0] == c &&
			(st.a == argSelf && st.b == argConst || st.a == argConst && st.b == argSelf)
	}
	x := s[0].a
	return !s[0].unary && s[0].k == bDiv && x >= 0 && s[0].b == argConst && s[0].c[0] == float32(math.Sqrt2) &&
		s[1].unary && s[1].u.k == uErf &&
		is(s[2], bAdd, 1) &&
		!s[3].unary && s[3].k == bMul && (s[3].a == x && s[3].b == argSelf || s[3].a == argSelf && s[3].b == x) &&
		is(s[4], bMul, 0.5)
}

// runChain runs a fused chain, or its original nodes when the inputs are
// not the float tensors of compatible shapes it was fused for.
func (x *exec) runChain(n *node, ch *ewChain, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	shape, ok := ch.shape(in)
	if !ok {
		return x.runOriginal(ch.original)
	}
	out := x.outFloat(n, shape, in, firstN(len(in))...)
	if x.dry {
		return one(out, nil)
	}
	shapes := make([][]int, len(in))
	for i, t := range in {
		shapes[i] = t.Shape
	}
	p := newBcast(shape, shapes...)
	steps := make([]int, len(in))
	for i := range in {
		steps[i] = p.step(i)
	}
	grain := grainCheap
	if ch.costly {
		grain = grainCostly
	}
	x.split(p.total, grain, func(lo, hi int) {
		var tmp [blockLen]float32
		var f64 [blockLen]float64
		ops := make([][]float32, len(in))
		p.runs(lo, hi, func(o, m int, off []int) {
			for j := 0; j < m; j += blockLen {
				b := min(blockLen, m-j)
				for i, t := range in {
					ops[i] = t.Data[off[i]+j*steps[i]:]
				}
				if ch.gelu {
					gelu(out.Data[o+j:o+j+b], ops[ch.steps[0].a], ch.steps[0].c[0], f64[:b])
					continue
				}
				ch.block(out.Data[o+j:o+j+b], tmp[:b], ops, steps)
			}
		})
	})
	return one(out, nil)
}

// block runs every step on one block: the value lives in tmp and the last
// step writes d.
func (ch *ewChain) block(d, tmp []float32, ops [][]float32, steps []int) {
	last := len(ch.steps) - 1
	for s := range ch.steps {
		st := &ch.steps[s]
		dst := tmp
		if s == last {
			dst = d
		}
		arg := func(a int) ([]float32, int) {
			switch a {
			case argSelf:
				return tmp, 1
			case argConst:
				return st.c, 0
			}
			return ops[a], steps[a]
		}
		a, sa := arg(st.a)
		if st.unary {
			if sa == 0 { // a one-value first operand: compute once
				var v [1]float32
				st.u.apply(v[:], a)
				for i := range dst {
					dst[i] = v[0]
				}
				continue
			}
			st.u.apply(dst, a)
			continue
		}
		b, sb := arg(st.b)
		arithF(st.k, dst, a, b, sa, sb)
	}
}

// gelu is the exported GELU in one pass over a block, with the unfused
// ops' roundings in their order: t = x/c (c = √2 rounded to float32),
// e = erf(t), y = (x·(e+1))·0.5. f64 is scratch of len(d).
func gelu(d, x []float32, c float32, f64 []float64) {
	x = x[:len(d)]
	for i, v := range x {
		f64[i] = float64(v / c)
	}
	for i, v := range f64 {
		f64[i] = erf64(v)
	}
	for i, v := range x {
		m := v * (float32(f64[i]) + 1)
		d[i] = m * 0.5
	}
}

// shape is the chain's output shape, or false when an input is not float
// or an op after the first would enlarge the value.
func (ch *ewChain) shape(in []*tensor.Tensor) ([]int, bool) {
	for _, t := range in {
		if !t.IsFloat() {
			return nil, false
		}
	}
	opShape := func(st *ewStep, a int) []int {
		switch a {
		case argConst:
			return st.shape
		case argSelf:
			return nil
		}
		return in[a].Shape
	}
	var cur []int
	for s := range ch.steps {
		st := &ch.steps[s]
		shapes := [][]int{opShape(st, st.a)}
		if !st.unary {
			shapes = append(shapes, opShape(st, st.b))
		}
		for _, sh := range shapes {
			if sh == nil {
				continue // the chain's value
			}
			if s == 0 && cur == nil {
				cur = sh
				continue
			}
			next, ok := broadcastShape(cur, sh)
			if !ok || s > 0 && numel(next) != numel(cur) {
				return nil, false
			}
			cur = next
		}
	}
	return slices.Clone(cur), true
}

// runOriginal runs a chain's original nodes in the current scope (they
// find the fused node's inputs there by name) and returns the last one's
// output. The intermediate values stay in the scope, unheld: they are few,
// and collected with it.
func (x *exec) runOriginal(nodes []*node) ([]*tensor.Tensor, error) {
	var outs []*tensor.Tensor
	for _, o := range nodes {
		var err error
		if outs, err = x.runNode(o); err != nil {
			return nil, err
		}
		if o != nodes[len(nodes)-1] {
			x.s.vals[o.out[0]] = outs[0]
		}
	}
	return outs[:1], nil
}

func countOf(names []string, name string) int {
	c := 0
	for _, n := range names {
		if n == name {
			c++
		}
	}
	return c
}

func firstN(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
