package graph

import (
	"slices"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/engine"

	"github.com/convlstm-go/convlstm-go/ops"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// cellPlan is a fused ConvLSTM cell update: the ten nodes
//
//	z_0..z_3 = Split(conv, axis=1, four equal parts)
//	i, f, o = Sigmoid(z_·); g = Tanh(z_·)
//	c' = Add(Mul(f, c), Mul(i, g)); h' = Mul(o, Tanh(c'))
//
// that torch.onnx.export and package export emit for each cell step,
// replaced by one pass of ops.LSTMGates over the conv output. The gate
// roles are read from the graph's structure, so any gate order works. The
// arithmetic is the same (Mul and Add commute exactly in IEEE arithmetic);
// only sigmoid/tanh come from the ops kernels instead of float64 maths, well
// within the 1e-5 tolerance. When the shapes at run time are not the plain
// case (c broadcast against the gates), the original nodes run instead.
type cellPlan struct {
	block    [4]int  // Split output index of i, f, o, g
	original []*node // the replaced nodes, in order, for the fallback
	// conv, when set, is the Conv node producing the gates, fused in too;
	// the node's inputs are then conv's data inputs followed by c.
	conv *node
	// step, when the conv is a ConvLSTM step (inputs x and h, h with the
	// hidden channels, k//2 padding, stride 1, constant weights), is the
	// engine's cell: the same step the native runtime runs. plans holds
	// its workspaces per (batch, height, width).
	step  *engine.Cell
	plans *cellPlans // shared by the nodes of the same layer
}

// fuseCells rewrites p.nodes in place. A pattern is fused only when every
// intermediate value has exactly the consumers of the pattern and is not a
// graph output, so nothing else can observe the difference.
func fuseCells(p *program) {
	producer, uses := usage(p)
	consumers, _ := consumersOf(p)
	only := func(name string) *node { // the single consumer of name, or nil
		if uses[name] != 1 || len(consumers[name]) != 1 {
			return nil
		}
		return consumers[name][0]
	}
	other := func(n *node, name string) (string, bool) { // the other input of a binary node
		if len(n.in) != 2 {
			return "", false
		}
		switch name {
		case n.in[0]:
			return n.in[1], true
		case n.in[1]:
			return n.in[0], true
		}
		return "", false
	}
	removed := map[*node]bool{}
	replace := map[*node]*node{}
	for _, s := range p.nodes {
		if s.op != "Split" || len(s.out) != 4 || removed[s] || attrInt(s, "axis", 0) != 1 {
			continue
		}
		// Four equal parts: no sizes (equal split), or constant equal sizes.
		if len(s.in) > 1 && s.in[1] != "" {
			v := p.constant(s.in[1])
			if v == nil || v.IsFloat() || len(v.Ints) != 4 || v.Ints[0] != v.Ints[1] || v.Ints[0] != v.Ints[2] || v.Ints[0] != v.Ints[3] {
				continue
			}
		} else if a, ok := attrInts(s, "split"); ok && (len(a) != 4 || a[0] != a[1] || a[0] != a[2] || a[0] != a[3]) {
			continue
		}
		act := make([]*node, 4)
		sig, tanhIdx := 0, -1
		ok := true
		for k, z := range s.out {
			n := only(z)
			if n == nil || (n.op != "Sigmoid" && n.op != "Tanh") || removed[n] {
				ok = false
				break
			}
			act[k] = n
			if n.op == "Tanh" {
				tanhIdx = k
			} else {
				sig++
			}
		}
		if !ok || sig != 3 || tanhIdx < 0 {
			continue
		}
		// i·g: the Mul consuming tanh(g).
		mIG := only(act[tanhIdx].out[0])
		if mIG == nil || mIG.op != "Mul" {
			continue
		}
		iIn, _ := other(mIG, act[tanhIdx].out[0])
		iIdx := slices.IndexFunc(act, func(n *node) bool { return n.op == "Sigmoid" && n.out[0] == iIn })
		if iIdx < 0 || only(mIG.out[0]) == nil || only(mIG.out[0]).op != "Add" {
			continue
		}
		add := only(mIG.out[0])
		fcName, _ := other(add, mIG.out[0])
		mFC := producer[fcName]
		if mFC == nil || mFC.op != "Mul" || only(fcName) != add {
			continue
		}
		fIdx, cPrev := -1, ""
		for k, n := range act {
			if n.op == "Sigmoid" && k != iIdx {
				if c, ok := other(mFC, n.out[0]); ok && only(n.out[0]) == mFC {
					fIdx, cPrev = k, c
				}
			}
		}
		if fIdx < 0 {
			continue
		}
		// h' = o · tanh(c'): c' may have other consumers (it is the state).
		var tc *node
		for _, n := range consumers[add.out[0]] {
			if n.op == "Tanh" && only(n.out[0]) != nil && only(n.out[0]).op == "Mul" {
				tc = n
			}
		}
		if tc == nil {
			continue
		}
		mH := only(tc.out[0])
		oIn, _ := other(mH, tc.out[0])
		oIdx := slices.IndexFunc(act, func(n *node) bool { return n.op == "Sigmoid" && n.out[0] == oIn })
		if oIdx < 0 || oIdx == iIdx || oIdx == fIdx || only(oIn) != mH {
			continue
		}
		group := append(append([]*node{s}, act...), mIG, mFC, add, tc, mH)
		// The fused node runs where the last of the group ran (mH); all its
		// inputs (conv output, c) exist by then and its outputs (c', h')
		// are not read before: c' only by tc and later nodes... except
		// nodes between add and mH that read c'. Keep it simple and
		// require none.
		last := 0
		for _, g := range group {
			last = max(last, g.idx)
		}
		early := false
		for _, n := range consumers[add.out[0]] {
			if n != tc && n.idx < last {
				early = true
			}
		}
		if early {
			continue
		}
		orig := slices.Clone(group)
		slices.SortFunc(orig, func(a, b *node) int { return a.idx - b.idx })
		fused := &node{
			idx:   last,
			name:  s.name + "+cell",
			op:    "LSTMCell",
			def:   lstmCellDef,
			in:    []string{s.in[0], cPrev},
			out:   []string{mH.out[0], add.out[0]},
			attrs: s.attrs,
			opset: s.opset,
			cell:  &cellPlan{block: [4]int{iIdx, fIdx, oIdx, tanhIdx}, original: orig},
		}
		for _, g := range group {
			removed[g] = true
		}
		replace[mH] = fused
	}
	if len(removed) == 0 {
		return
	}
	splice(p, replace, removed)
}

// splice rewrites p.nodes: each node in replace gives way to its
// replacement, each removed one goes, the rest keep their order.
func splice(p *program, replace map[*node]*node, removed map[*node]bool) {
	var nodes []*node
	for _, n := range p.nodes {
		if f := replace[n]; f != nil {
			nodes = append(nodes, f)
		} else if !removed[n] {
			nodes = append(nodes, n)
		}
	}
	p.nodes = nodes
}

// usage counts the reads of every value of p: by nodes, by subgraphs (as
// two, so they are never fused away) and as graph outputs (likewise).
func usage(p *program) (producer map[string]*node, uses map[string]int) {
	producer, uses = map[string]*node{}, map[string]int{}
	for _, n := range p.nodes {
		for _, o := range n.out {
			producer[o] = n
		}
		for _, in := range n.in {
			uses[in]++
		}
		for _, in := range n.extra {
			uses[in] += 2
		}
	}
	for _, o := range p.outputs {
		uses[o] += 2
	}
	return producer, uses
}

// fuseConvs folds a channel Concat into the Conv it alone feeds (the Conv
// pads its parts straight into its buffer), then such a Conv into the
// LSTMCell it alone feeds. Only Convs with constant, packed weights qualify.
func fuseConvs(p *program) {
	producer, uses := usage(p)
	removed := map[*node]bool{}
	for i, cv := range p.nodes {
		if cv.op != "Conv" || cv.conv == nil || cv.conv.parts {
			continue
		}
		cat := producer[cv.in[0]]
		if cat == nil || cat.op != "Concat" || uses[cv.in[0]] != 1 || removed[cat] {
			continue
		}
		if ax := attrInt(cat, "axis", 0); ax != 1 && ax != -3 {
			continue
		}
		if slices.Contains(cat.in, "") {
			continue
		}
		cv.conv.parts = true
		fused := *cv
		fused.in = slices.Clone(cat.in)
		fused.name = cat.name + "+" + cv.name
		p.nodes[i] = &fused
		removed[cat] = true
	}
	producer, uses = usage(p)
	for _, ce := range p.nodes {
		if ce.op != "LSTMCell" || ce.cell.conv != nil {
			continue
		}
		cv := producer[ce.in[0]]
		if cv == nil || cv.op != "Conv" || cv.conv == nil || uses[ce.in[0]] != 1 || removed[cv] || cv.conv.m%4 != 0 || cv.conv.group != 1 {
			continue
		}
		ce.cell.conv = cv
		ce.in = append(slices.Clone(cv.in), ce.in[1])
		ce.name = cv.name + "+" + ce.name
		removed[cv] = true
	}
	if len(removed) > 0 {
		p.nodes = slices.DeleteFunc(p.nodes, func(n *node) bool { return removed[n] })
	}
}

// lstmCellDef is the fused cell's declaration: not in the table (no model
// names it), set on the nodes fuseCells creates.
var lstmCellDef = &opDef{name: "LSTMCell", run: runCell}

// runCell runs a fused LSTMCell node: in[0] is the conv output (B, 4·hid,
// H, W) in the Split's block order, in[1] the previous c (B, hid, H, W).
func runCell(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if n.cell.conv != nil {
		return x.convCell(n, in)
	}
	return x.gateCell(n, in[0], in[1], in)
}

// gateCell applies the gate update to the gates z and the previous c, or
// runs the original nodes (the node's inputs in) when the shapes are not
// the plain case.
func (x *exec) gateCell(n *node, z, c *tensor.Tensor, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if !z.IsFloat() || !c.IsFloat() || len(z.Shape) != 4 || z.Shape[1]%4 != 0 {
		return x.unfused(n, in)
	}
	hid := z.Shape[1] / 4
	shape := []int{z.Shape[0], hid, z.Shape[2], z.Shape[3]}
	if !slices.Equal(c.Shape, shape) {
		return x.unfused(n, in)
	}
	h, cn := x.newFloat(shape), x.newFloat(slices.Clone(shape))
	if x.dry {
		return []*tensor.Tensor{h, cn}, nil
	}
	plane := hid * shape[2] * shape[3]
	copy(cn.Data, c.Data)
	b := n.cell.block
	for bi := 0; bi < shape[0]; bi++ {
		zb := z.Data[bi*4*plane : (bi+1)*4*plane]
		blk := func(k int) []float32 { return zb[b[k]*plane : (b[k]+1)*plane] }
		ops.LSTMGates(blk(0), blk(1), blk(2), blk(3), cn.Data[bi*plane:(bi+1)*plane], h.Data[bi*plane:(bi+1)*plane])
	}
	return []*tensor.Tensor{h, cn}, nil
}

// prepareCell makes a fused cell whose conv is a ConvLSTM step run on the
// engine's cell: the conv over cat(x, h) with its constant weights, in the
// gate order the graph's structure says.
func (c *compiler) prepareCell(n *node, p *program) error {
	cv := n.cell.conv
	cn := cv.conv
	hid := cn.m / 4
	if !cn.parts || len(cv.in) != 2 || cn.group != 1 || cn.sh != 1 || cn.sw != 1 || cn.dh != 1 || cn.dw != 1 ||
		cn.kh%2 == 0 || cn.kw%2 == 0 || cn.cg <= hid {
		return nil
	}
	if cn.autoPad == "VALID" || cn.autoPad == "NOTSET" && cn.pads != [4]int{cn.kh / 2, cn.kw / 2, cn.kh / 2, cn.kw / 2} {
		return nil
	}
	w := p.constant(cn.weightName)
	var b *tensor.Tensor
	if cn.biasName != "" {
		if b = p.constant(cn.biasName); b == nil {
			return nil
		}
	}
	var order [4]byte
	for k, letter := range []byte("ifog") {
		order[n.cell.block[k]] = letter
	}
	l := convlstm.Layer{
		LayerConfig: convlstm.LayerConfig{InputDim: cn.cg - hid, HiddenDim: hid, KernelH: cn.kh, KernelW: cn.kw, HasBias: b != nil},
		Weight:      w.Data,
	}
	if b != nil {
		l.Bias = b.Data
	}
	step, plans, err := c.shared.cell(l, convlstm.GateOrder(order[:]))
	if err != nil {
		return c.errf(n, "%v", err)
	}
	n.cell.step, n.cell.plans = step, plans
	return nil
}

// convCell runs a cell fused with its Conv: on the engine's cell step when
// the conv is a ConvLSTM step and the shapes are the plain case, else the
// conv then the gate update, else the original nodes.
func (x *exec) convCell(n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	cv := n.cell.conv
	xs, c := in[:len(in)-1], in[len(in)-1]
	hid := cv.conv.m / 4
	if st := n.cell.step; st != nil && len(xs) == 2 {
		xt, ht := xs[0], xs[1]
		cfg := st.Cfg
		if xt.IsFloat() && ht.IsFloat() && c.IsFloat() && len(xt.Shape) == 4 && xt.Shape[1] == cfg.InputDim {
			shape := []int{xt.Shape[0], hid, xt.Shape[2], xt.Shape[3]}
			if slices.Equal(ht.Shape, shape) && slices.Equal(c.Shape, shape) && shape[0] > 0 && shape[2] > 0 && shape[3] > 0 {
				h, cn := x.newFloat(shape), x.newFloat(slices.Clone(shape))
				if x.dry {
					return []*tensor.Tensor{h, cn}, nil
				}
				key := [3]int{shape[0], shape[2], shape[3]}
				plan := n.cell.getPlan(key, x.g.threads, x.worker)
				plan.Step(poolFor(x.g.threads), xt.Data, ht.Data, c.Data, h.Data, cn.Data)
				n.cell.putPlan(key, plan, x.worker)
				return []*tensor.Tensor{h, cn}, nil
			}
		}
	}
	z, err := runConv(x, cv, xs)
	if err != nil {
		return nil, err
	}
	x.s.vals[cv.out[0]] = z[0] // for the original nodes, if they run
	return x.gateCell(n, z[0], c, in)
}

func (cp *cellPlan) getPlan(key [3]int, threads, worker int) *engine.CellPlan {
	if p, ok := cp.plans.take(key, worker); ok {
		return p
	}
	return cp.step.NewPlan(key[0], key[1], key[2], 1, threads)
}

func (cp *cellPlan) putPlan(key [3]int, p *engine.CellPlan, worker int) {
	cp.plans.put(key, p, worker)
}

// unfused runs the original nodes of a fused cell and returns its two
// outputs.
func (x *exec) unfused(n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return x.runCellNodes(n, in, n.cell.original)
}

// runCellNodes runs the nodes a fused cell replaced and returns the fused
// node's two outputs (h', c'). The fused node's inputs keep their names,
// so the originals find them; they are bound here too so that this does
// not depend on the scope.
func (x *exec) runCellNodes(n *node, in []*tensor.Tensor, original []*node) ([]*tensor.Tensor, error) {
	p, s := x.p, x.s
	for i, name := range n.in {
		if name != "" && in[i] != nil {
			s.vals[name] = in[i]
		}
	}
	for _, o := range original {
		outs, err := x.runNode(o)
		if err != nil {
			return nil, err
		}
		for i, name := range o.out {
			if name != "" && i < len(outs) {
				s.vals[name] = outs[i]
			}
		}
	}
	return []*tensor.Tensor{x.lookup(p, s, n.out[0]), x.lookup(p, s, n.out[1])}, nil
}

// runNode runs one node of a fallback on its inputs, found in the scope by
// name.
func (x *exec) runNode(o *node) ([]*tensor.Tensor, error) {
	in := make([]*tensor.Tensor, len(o.in))
	for i, name := range o.in {
		if name == "" {
			continue
		}
		if in[i] = x.lookup(x.p, x.s, name); in[i] == nil {
			return nil, x.errf(o, "input %q has no value", name)
		}
	}
	return o.def.run(x, o, in)
}

// consumersOf maps each value to the nodes that read it (a node once,
// however many of its inputs name the value), and each node to its place
// in the program.
func consumersOf(p *program) (consumers map[string][]*node, pos map[*node]int) {
	consumers, pos = map[string][]*node{}, map[*node]int{}
	for i, n := range p.nodes {
		pos[n] = i
		for _, in := range n.in {
			if c := consumers[in]; in != "" && (len(c) == 0 || c[len(c)-1] != n) {
				consumers[in] = append(c, n)
			}
		}
	}
	return consumers, pos
}

// CellGates reports, for every ConvLSTM cell update the graph computes (each
// fused LSTMCell, in graph order, Scan bodies included), the conv weight it
// reads and its gate order, read from the structure: which Split block goes
// through Tanh into the cell candidate, which Sigmoid multiplies the old c,
// and so on. A torch export of a ConvLSTM thus tells its own gate order.
func (g *Graph) CellGates() []CellInfo {
	var out []CellInfo
	var walk func(p *program)
	walk = func(p *program) {
		for _, n := range p.nodes {
			for _, name := range sortedKeys(n.sub) {
				walk(n.sub[name])
			}
			if n.op != "LSTMCell" {
				continue
			}
			var order [4]byte
			for k, letter := range []byte("ifog") {
				order[n.cell.block[k]] = letter
			}
			info := CellInfo{Node: n.name, Gates: string(order[:])}
			if n.cell.conv != nil {
				info.Weight = n.cell.conv.conv.weightName
			}
			out = append(out, info)
		}
	}
	walk(g.main)
	return out
}

// CellInfo describes one recognised cell update.
type CellInfo struct {
	Node   string // the fused node's name
	Weight string // initialiser name of the conv weight ("" if not fused with its Conv)
	Gates  string // gate order of the conv's output blocks, e.g. "ifog"
}
