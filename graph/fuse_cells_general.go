package graph

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/convlstm-go/convlstm-go/ops"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// General cell updates. fuseCells takes the ConvLSTM update whose four
// gates are the blocks of one Split, straight into Sigmoid/Tanh. Published
// cells reach the same update by other ways:
//
//	OpenSTL:   i = σ(i_x + i_h), f = σ(f_x + f_h + 1), g = tanh(g_x + g_h), o = σ(o_x + o_h)
//	           (two Splits: LayerNorm(conv_x(x)) and LayerNorm(conv_h(h)))
//	peephole:  i = σ(z_i + W_ci⊙c), f = σ(z_f + W_cf⊙c), o = σ(z_o + W_co⊙c')
//
// and then, all of them,
//
//	c' = f⊙c + i⊙g;  h' = o⊙tanh(c')
//
// fuseGateCells finds that core (Add of two Muls, Sigmoid/Tanh factors,
// h' = σ(·)⊙tanh(c')) and walks back from each activation through the
// arithmetic that computes its pre-activation (Add, Sub, Mul, Div), to
// leaves: blocks of a 4-way channel Split (read in place, the Split
// removed when the cell reads all of it), other values of the cell's shape,
// constants (scalars folded into the program, tensors broadcast once per
// shape) and, for o only, c' itself. The whole DAG (several inputs, two
// outputs) becomes one node that goes once over the positions, a block at
// a time: the pre-activation programs run on the block (the same float32
// operations, in the same order, as the nodes they replace: bit-identical),
// then the gate update runs on ops.LSTMGates' vector kernels. Only the
// activations differ from the unfused graph (the kernels' polynomials
// instead of float64 maths: a few float32 ulps).
//
// A cell whose o reads c' (a peephole) needs the update in two halves:
// LSTMGates computes c' (its h discarded), the program computes o's
// pre-activation from c', and a second LSTMGates call with σ(f) = 1 and
// tanh(g) = 0 (gates +30 and 0: exactly 1 and 0 in float32, checked once at
// start-up, else the scalar path runs) leaves c' as it is and gives
// h' = σ(o)⊙tanh(c').
//
// Nothing outside the cell may read its intermediates (a value read
// elsewhere stays a leaf, its node unfused); c' may have other readers (it
// is the state), none before the fused node. At run time, inputs that are
// not float or whose shapes are not the plain case (every non-constant leaf
// of the cell's shape, constants broadcasting into it) run the original
// nodes.

// Operand kinds of a pre-activation program.
const (
	opReg    = iota // a register of the block
	opLeaf          // a leaf input of the fused node
	opScalar        // a scalar constant
	opCNew          // c' (o's program only)
)

type gOperand struct {
	kind int
	idx  int     // register or leaf index
	val  float32 // scalar
}

type gInstr struct {
	k      bKind
	dst    int
	a, b   gOperand
	source *node // for the fallback's order and tests
	// madd, when set, is a Mul a·b whose product only the next
	// instruction read (dst = a·b + add, or add + a·b): both in one pass,
	// the product rounded before the sum as the two nodes do.
	madd    bool
	add     gOperand
	addLeft bool // add + a·b rather than a·b + add
}

// fuseMulAdd merges each Mul whose register only the next instruction,
// an Add, reads into it (a peephole's z + W⊙c): one pass over the block
// instead of two.
func (p *gProg) fuseMulAdd() {
	var code []gInstr
	for i := 0; i < len(p.code); i++ {
		in := p.code[i]
		if in.k == bMul && i+1 < len(p.code) && p.code[i+1].k == bAdd && p.readsReg(in.dst) == 1 {
			next := p.code[i+1]
			r := gOperand{kind: opReg, idx: in.dst}
			switch {
			case next.b == r && next.a != r:
				in.madd, in.add, in.addLeft = true, next.a, true
			case next.a == r && next.b != r:
				in.madd, in.add = true, next.b
			}
			if in.madd {
				in.dst = next.dst
				code = append(code, in)
				i++
				continue
			}
		}
		code = append(code, in)
	}
	p.code = code
}

// readsReg counts the operands of p that read register r.
func (p *gProg) readsReg(r int) int {
	n := 0
	op := gOperand{kind: opReg, idx: r}
	for _, in := range p.code {
		for _, o := range []gOperand{in.a, in.b} {
			if o == op {
				n++
			}
		}
		if in.madd && in.add == op {
			n++
		}
	}
	if p.res == op {
		n++
	}
	return n
}

// gProg computes one pre-activation into register res (or reads a leaf or
// scalar directly when it has no arithmetic).
type gProg struct {
	code []gInstr
	res  gOperand
}

// gLeaf is an input of the fused node: a value of the cell's shape, block
// k of a 4-way channel Split of a value, or a constant tensor broadcast
// into the cell's shape.
type gLeaf struct {
	name  string
	block int // -1: the value itself; 0..3: that block of a Split of it
	cnst  *tensor.Tensor
	split *node // the Split whose block it is (compile time)
}

// gateCell is a fused general cell's plan.
type gateCell struct {
	leaves   []gLeaf
	progs    [4]gProg // pre-activations of i, f, o, g
	c        int      // the leaf holding c
	oReadsC  bool     // o is computed from c' (a peephole)
	regs     int
	original []*node // in graph order, for the fallback
	hOut     string
	cOut     string

	planes  *gatePlanes // constant leaves broadcast to a plane
	scratch sync.Pool   // register sets ([][]float32), one per worker
	// peep, for the peephole cell (i = σ(zi + wi⊙c), f likewise, o =
	// σ(zo + wo⊙c'), g = tanh(zg), each z and w a leaf), is the leaves
	// zi, zf, zo, zg, wi, wf, wo: the update runs as one
	// ops.LSTMPeephole pass.
	peep *[7]int
}

// peepholes recognises the peephole cell in the programs (after
// fuseMulAdd: each peephole term one multiply-add of two leaves, or of a
// leaf and c'), or returns nil.
func (gc *gateCell) peepholes() *[7]int {
	c := gOperand{kind: opLeaf, idx: gc.c}
	// term returns the leaves z and w of a program z + w⊙x (either order
	// of product and sum, of w and x).
	term := func(p gProg, x gOperand) (z, w int, ok bool) {
		if len(p.code) != 1 || !p.code[0].madd || p.res != (gOperand{kind: opReg, idx: p.code[0].dst}) {
			return 0, 0, false
		}
		in := p.code[0]
		if in.add.kind != opLeaf || in.add == c {
			return 0, 0, false
		}
		switch {
		case in.a == x && in.b.kind == opLeaf && in.b != c:
			return in.add.idx, in.b.idx, true
		case in.b == x && in.a.kind == opLeaf && in.a != c:
			return in.add.idx, in.a.idx, true
		}
		return 0, 0, false
	}
	zi, wi, ok1 := term(gc.progs[0], c)
	zf, wf, ok2 := term(gc.progs[1], c)
	zo, wo, ok3 := term(gc.progs[2], gOperand{kind: opCNew})
	g := gc.progs[3]
	if !ok1 || !ok2 || !ok3 || len(g.code) != 0 || g.res.kind != opLeaf || g.res == c {
		return nil
	}
	return &[7]int{zi, zf, zo, g.res.idx, wi, wf, wo}
}

// gatePeephole lets peephole cells run as one ops.LSTMPeephole pass
// (tests turn it off to run the two-half path).
var gatePeephole = true

// gateCellFusion turns the pass off (tests compare against the unfused
// nodes; Options.NoFuse turns off every fusion).
var gateCellFusion = true

func fuseGateCells(p *program) {
	if !gateCellFusion {
		return
	}
	producer, uses := usage(p)
	consumers, pos := consumersOf(p)
	claimed := map[*node]bool{}
	replace := map[*node]*node{}
	planes := &gatePlanes{}
	for _, add := range p.nodes {
		if add.op != "Add" || claimed[add] {
			continue
		}
		m := &gateMatcher{p: p, producer: producer, uses: uses, consumers: consumers, pos: pos, claimed: claimed}
		cell, group, last := m.match(add)
		if cell == nil {
			continue
		}
		for _, n := range group {
			claimed[n] = true
		}
		cell.planes = planes
		fused := &node{
			name:  add.name + "+cell",
			op:    "GateCell",
			def:   gateCellDef,
			out:   []string{cell.hOut, cell.cOut},
			attrs: add.attrs,
			opset: add.opset,
			gcell: cell,
		}
		for _, l := range cell.leaves {
			fused.in = append(fused.in, l.name)
		}
		replace[last] = fused
	}
	if len(replace) == 0 {
		return
	}
	splice(p, replace, claimed)
}

// gateMatcher matches one cell around a candidate c' Add.
type gateMatcher struct {
	p         *program
	producer  map[string]*node
	uses      map[string]int
	consumers map[string][]*node
	pos       map[*node]int
	claimed   map[*node]bool

	group  []*node
	leaves []gLeaf
	splits map[*node]bool // Splits whose blocks are leaves
	cell   *gateCell
	cNew   string
}

// single is the node that alone reads value v, when it has op op and is
// not taken yet.
func (m *gateMatcher) single(v, op string) *node {
	if m.uses[v] != 1 || len(m.consumers[v]) != 1 {
		return nil
	}
	n := m.consumers[v][0]
	if n.op != op || m.claimed[n] || slices.Contains(m.group, n) {
		return nil
	}
	return n
}

// act is the Sigmoid or Tanh node producing v, read only by its consumer.
func (m *gateMatcher) act(v, op string) *node {
	n := m.producer[v]
	if n == nil || n.op != op || len(n.in) != 1 || m.uses[v] != 1 || m.claimed[n] {
		return nil
	}
	return n
}

func (m *gateMatcher) match(add *node) (*gateCell, []*node, *node) {
	if len(add.in) != 2 || len(add.out) != 1 || add.opset < 7 {
		return nil, nil, nil
	}
	muls := [2]*node{m.producer[add.in[0]], m.producer[add.in[1]]}
	for _, mu := range muls {
		if mu == nil || mu.op != "Mul" || len(mu.in) != 2 || m.uses[mu.out[0]] != 1 || m.claimed[mu] || mu.opset < 7 {
			return nil, nil, nil
		}
	}
	cNew := add.out[0]
	// h' = o ⊙ tanh(c'): a Tanh reading c' whose only reader is a Mul by a
	// Sigmoid.
	var tc, mh, so *node
	for _, t := range m.consumers[cNew] {
		if t.op != "Tanh" || m.claimed[t] || m.uses[t.out[0]] != 1 || len(m.consumers[t.out[0]]) != 1 {
			continue
		}
		h := m.consumers[t.out[0]][0]
		if h.op != "Mul" || len(h.in) != 2 || m.claimed[h] || h.opset < 7 {
			continue
		}
		other := h.in[0]
		if other == t.out[0] {
			other = h.in[1]
		}
		if s := m.act(other, "Sigmoid"); s != nil && other != t.out[0] {
			tc, mh, so = t, h, s
			break
		}
	}
	if tc == nil {
		return nil, nil, nil
	}
	// One Mul is σ(i)⊙tanh(g), the other σ(f)⊙c.
	for order := 0; order < 2; order++ {
		mig, mfc := muls[order], muls[1-order]
		si, tg := m.pair(mig, "Sigmoid", "Tanh")
		if si == nil {
			continue
		}
		var sf *node
		var cName string
		for k := 0; k < 2; k++ {
			if s := m.act(mfc.in[k], "Sigmoid"); s != nil && s != si && s != so && mfc.in[1-k] != mfc.in[k] {
				sf, cName = s, mfc.in[1-k]
				break
			}
		}
		if sf == nil {
			continue
		}
		if cell, group, last := m.build(add, mig, mfc, tc, mh, si, sf, so, tg, cName, cNew); cell != nil {
			return cell, group, last
		}
	}
	return nil, nil, nil
}

// pair returns the nodes producing the two factors of Mul mu when one is
// an op1 and the other an op2, each read only by mu.
func (m *gateMatcher) pair(mu *node, op1, op2 string) (*node, *node) {
	for k := 0; k < 2; k++ {
		a, b := m.act(mu.in[k], op1), m.act(mu.in[1-k], op2)
		if a != nil && b != nil && a != b {
			return a, b
		}
	}
	return nil, nil
}

func (m *gateMatcher) build(add, mig, mfc, tc, mh, si, sf, so, tg *node, cName, cNew string) (*gateCell, []*node, *node) {
	m.group = []*node{add, mig, mfc, tc, mh, si, sf, so, tg}
	m.leaves, m.splits, m.cNew = nil, map[*node]bool{}, cNew
	m.cell = &gateCell{hOut: mh.out[0], cOut: cNew}
	cell := m.cell
	var ok bool
	if cell.c, ok = m.leaf(cName); !ok {
		return nil, nil, nil
	}
	for k, s := range []*node{si, sf, so, tg} {
		prog, ok := m.prog(s.in[0], k == 2)
		if !ok {
			return nil, nil, nil
		}
		cell.progs[k] = prog
	}
	for k := range cell.progs {
		cell.progs[k].fuseMulAdd()
	}
	cell.oReadsC = progReads(cell.progs[2], opCNew)
	cell.peep = cell.peepholes()
	if progReads(cell.progs[0], opCNew) || progReads(cell.progs[1], opCNew) || progReads(cell.progs[3], opCNew) {
		return nil, nil, nil
	}
	// A Split is read in place when the cell reads every block of it and
	// nothing else does; otherwise its blocks are the Split's outputs.
	for s := range m.splits {
		whole := true
		for _, o := range s.out {
			for _, r := range m.consumers[o] {
				if !slices.Contains(m.group, r) {
					whole = false
				}
			}
			if m.uses[o] != countReads(m.group, o) {
				whole = false
			}
		}
		if whole {
			m.group = append(m.group, s)
			continue
		}
		for i := range m.leaves {
			if l := &m.leaves[i]; l.split == s {
				l.name, l.block, l.split = s.out[l.block], -1, nil
			}
		}
	}
	// Intermediates: read by the group only, never a graph output or by a
	// subgraph (usage counts those twice).
	last := add
	for _, n := range m.group {
		if m.pos[n] > m.pos[last] {
			last = n
		}
		if n == add || n == mh || n.op == "Split" {
			continue
		}
		if m.uses[n.out[0]] != countReads(m.group, n.out[0]) {
			return nil, nil, nil
		}
	}
	// Nothing outside may read c' or h' before the fused node runs.
	for _, v := range []string{cNew, mh.out[0]} {
		for _, r := range m.consumers[v] {
			if !slices.Contains(m.group, r) && m.pos[r] < m.pos[last] {
				return nil, nil, nil
			}
		}
	}
	cell.leaves = m.leaves
	cell.original = slices.Clone(m.group)
	slices.SortFunc(cell.original, func(a, b *node) int { return m.pos[a] - m.pos[b] })
	return cell, m.group, last
}

func progReads(p gProg, kind int) bool {
	if p.res.kind == kind {
		return true
	}
	for _, in := range p.code {
		if in.a.kind == kind || in.b.kind == kind || in.madd && in.add.kind == kind {
			return true
		}
	}
	return false
}

func countReads(group []*node, v string) int {
	c := 0
	for _, n := range group {
		c += countOf(n.in, v)
	}
	return c
}

// leaf returns the leaf index reading value v (a constant, a Split block
// or a value), adding it.
func (m *gateMatcher) leaf(v string) (int, bool) {
	l := gLeaf{name: v, block: -1}
	if _, t := m.p.constThrough(v); t != nil { // Identity copies of a weight too
		if !t.IsFloat() {
			return 0, false
		}
		l.cnst = t
	} else if s := m.producer[v]; s != nil && s.op == "Split" && !m.claimed[s] {
		if k := slices.Index(s.out, v); k >= 0 && splitsFour(m.p, s) {
			l.name, l.block, l.split = s.in[0], k, s
			m.splits[s] = true
		}
	}
	if i := slices.IndexFunc(m.leaves, func(o gLeaf) bool { return o.name == l.name && o.block == l.block }); i >= 0 {
		return i, true
	}
	m.leaves = append(m.leaves, l)
	return len(m.leaves) - 1, true
}

// splitsFour says whether Split s cuts axis 1 into four equal blocks.
func splitsFour(p *program, s *node) bool {
	if len(s.out) != 4 || slices.Contains(s.out, "") || len(s.in) == 0 {
		return false
	}
	if ax := attrInt(s, "axis", 0); ax != 1 {
		return false
	}
	if len(s.in) > 1 && s.in[1] != "" {
		v := p.constant(s.in[1])
		return v != nil && !v.IsFloat() && len(v.Ints) == 4 && v.Ints[0] == v.Ints[1] && v.Ints[0] == v.Ints[2] && v.Ints[0] == v.Ints[3]
	}
	if a, ok := attrInts(s, "split"); ok {
		return len(a) == 4 && a[0] == a[1] && a[0] == a[2] && a[0] == a[3]
	}
	return !hasAttr(s, "num_outputs") || attrInt(s, "num_outputs", 0) == 4
}

// prog compiles the pre-activation v: the arithmetic nodes that compute it
// for this cell alone, down to leaves.
func (m *gateMatcher) prog(v string, allowC bool) (gProg, bool) {
	var p gProg
	res, ok := m.operand(&p, v, allowC)
	p.res = res
	return p, ok
}

func (m *gateMatcher) operand(p *gProg, v string, allowC bool) (gOperand, bool) {
	if v == m.cNew {
		return gOperand{kind: opCNew}, allowC
	}
	if t := m.p.constant(v); t != nil && t.IsFloat() && len(t.Data) == 1 {
		return gOperand{kind: opScalar, val: t.Data[0]}, true
	}
	n := m.producer[v]
	if n != nil && len(n.out) == 1 && len(n.in) == 2 && n.opset >= 7 && !m.claimed[n] && m.uses[v] == 1 && !slices.Contains(m.group, n) {
		if k, arith := binaryKinds[n.op]; arith && k <= bDiv {
			a, ok1 := m.operand(p, n.in[0], allowC)
			b, ok2 := m.operand(p, n.in[1], allowC)
			if !ok1 || !ok2 {
				return gOperand{}, false
			}
			if a.kind == opScalar && b.kind == opScalar {
				// Constant arithmetic: leave it a leaf (its node runs).
				return m.leafOperand(v)
			}
			m.group = append(m.group, n)
			dst := m.cell.regs
			m.cell.regs++
			p.code = append(p.code, gInstr{k: k, dst: dst, a: a, b: b, source: n})
			return gOperand{kind: opReg, idx: dst}, true
		}
	}
	return m.leafOperand(v)
}

func (m *gateMatcher) leafOperand(v string) (gOperand, bool) {
	i, ok := m.leaf(v)
	return gOperand{kind: opLeaf, idx: i}, ok
}

// gateBlock is how many positions go through the programs and the gate
// kernel at a time.
const gateBlock = 512

// gateConst holds the kernel inputs of the peephole's second half: +30 (σ
// is exactly 1 in float32) and 0 (tanh is exactly 0).
var gateConst = func() (c struct{ big, zero [gateBlock]float32 }) {
	for i := range c.big {
		c.big[i] = 30
	}
	return c
}()

// gateIdentity is gateIdentityOK (a variable for the tests).
var gateIdentity = gateIdentityOK

// gateIdentityOK says whether ops.LSTMGates with f = +30, i = 0, g = 0
// leaves c bit for bit, as the peephole's second half needs (checked once
// on the kernels this CPU runs, over values of every magnitude).
var gateIdentityOK = sync.OnceValue(func() bool {
	var c, c0, h [64]float32
	for i := range c {
		v := float32(math.Ldexp(1+float64(i)/64, i%40-20))
		if i%2 == 1 {
			v = -v
		}
		c[i], c0[i] = v, v
	}
	c[0], c0[0] = 0, 0
	ops.LSTMGates(gateConst.zero[:64], gateConst.big[:64], gateConst.zero[:64], gateConst.zero[:64], c[:], h[:])
	return c == c0
})

// gateCellDef is the fused node's declaration (not in the table: no model
// names it).
var gateCellDef = &opDef{name: "GateCell", run: runGateCell}

func runGateCell(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	gc := n.gcell
	shape, ok := gc.shape(in)
	if !ok {
		return x.gateOriginal(n, gc, in)
	}
	h, cn := x.newFloat(shape), x.newFloat(slices.Clone(shape))
	if x.dry {
		return []*tensor.Tensor{h, cn}, nil
	}
	plane := numel(shape[1:])
	// Leaf slices per batch entry: base offset and per-batch stride.
	base := make([][]float32, len(in))
	stride := make([]int, len(in))
	for i, l := range gc.leaves {
		t := in[i]
		switch {
		case l.cnst != nil:
			base[i] = gc.plane(i, t, shape[1:])
		case l.block >= 0:
			base[i], stride[i] = t.Data[l.block*plane:], 4*plane
		default:
			base[i], stride[i] = t.Data, plane
		}
	}
	peephole := gc.oReadsC
	// span runs the update on positions [lo, hi) (within one batch entry's
	// plane or across them).
	span := func(lo, hi int, regs [][]float32) {
		junk, fill := regs[gc.regs], regs[gc.regs+1:]
		leaf := make([][]float32, len(base))
		for p := lo; p < hi; {
			b, j := p/plane, p%plane
			L := min(gateBlock, hi-p, plane-j)
			for i := range base {
				leaf[i] = base[i][b*stride[i]+j:][:L]
			}
			cb, hb := cn.Data[p:p+L], h.Data[p:p+L]
			if q := gc.peep; q != nil && gatePeephole && ops.LSTMPeephole(leaf[q[0]], leaf[q[1]], leaf[q[2]], leaf[q[3]], leaf[q[4]], leaf[q[5]], leaf[q[6]], leaf[gc.c], cb, hb) {
				p += L
				continue
			}
			copy(cb, leaf[gc.c])
			var pre [4][]float32
			for k := range pre {
				if k == 2 && peephole {
					continue
				}
				pre[k] = gc.progs[k].run(regs, leaf, nil, fill[k], L)
			}
			if !peephole {
				ops.LSTMGates(pre[0], pre[1], pre[2], pre[3], cb, hb)
				p += L
				continue
			}
			ops.LSTMGates(pre[0], pre[1], gateConst.zero[:L], pre[3], cb, junk[:L])
			o := gc.progs[2].run(regs, leaf, cb, fill[2], L)
			if gateIdentity() {
				// c' = σ(30)·c' + σ(0)·tanh(0) = c' exactly: cb is
				// left as it is.
				ops.LSTMGates(gateConst.zero[:L], gateConst.big[:L], o, gateConst.zero[:L], cb, hb)
			} else {
				for q := range hb {
					so := float32(1 / (1 + math.Exp(-float64(o[q]))))
					hb[q] = so * float32(math.Tanh(float64(cb[q])))
				}
			}
			p += L
		}
	}
	// Program registers, then the discarded h of the peephole's first half
	// and a constant pre-activation of each gate: one set per worker, kept
	// between runs.
	newRegs := func() [][]float32 {
		if r, ok := gc.scratch.Get().(*[][]float32); ok {
			return *r
		}
		regs := make([][]float32, gc.regs+5)
		for r := range regs {
			regs[r] = make([]float32, gateBlock)
		}
		return regs
	}
	done := func(regs [][]float32) { gc.scratch.Put(&regs) }
	total := shape[0] * plane
	parts := 1
	if x.g.threads > 1 {
		parts = min(x.g.threads, total/grainCostly)
	}
	if parts <= 1 {
		regs := newRegs()
		span(0, total, regs)
		done(regs)
		return []*tensor.Tensor{h, cn}, nil
	}
	// Split by image rows (axis 2), as the convolutions that wrote the
	// gates are (engine.ConvPlan.Apply): each part reads what its own core
	// wrote. Without rows to split, by positions.
	rows := 1
	if len(shape) > 2 {
		rows = shape[2]
	}
	inner := numel(shape[2:])
	parallel(parts, func(part int) {
		regs := newRegs()
		defer done(regs)
		if rows < parts {
			span(total*part/parts, total*(part+1)/parts, regs)
			return
		}
		rowLen := inner / rows
		y0, y1 := rows*part/parts, rows*(part+1)/parts
		for bc := 0; bc < total/inner; bc++ { // batch entry and channel
			span(bc*inner+y0*rowLen, bc*inner+y1*rowLen, regs)
		}
	})
	return []*tensor.Tensor{h, cn}, nil
}

// run evaluates the program on a block of L positions and returns the
// pre-activation (a register, or a leaf's values).
func (g *gProg) run(regs, leaf [][]float32, cNew, fill []float32, L int) []float32 {
	val := func(o gOperand) ([]float32, int) {
		switch o.kind {
		case opReg:
			return regs[o.idx][:L], 1
		case opLeaf:
			return leaf[o.idx], 1
		case opCNew:
			return cNew, 1
		}
		return []float32{o.val}, 0
	}
	for _, in := range g.code {
		a, sa := val(in.a)
		b, sb := val(in.b)
		if in.madd {
			c, sc := val(in.add)
			mulAdd(regs[in.dst][:L], a, b, c, sa, sb, sc, in.addLeft)
			continue
		}
		arith2(in.k, regs[in.dst][:L], a, b, sa, sb)
	}
	r, s := val(g.res)
	if s == 0 { // a constant pre-activation
		d := fill[:L]
		for i := range d {
			d[i] = r[0]
		}
		return d
	}
	return r
}

// mulAdd writes d[i] = a[i·sa]·b[i·sb] + c[i·sc] (or c + a·b when left),
// the product rounded to float32 first, as Mul then Add compute it; steps
// are 0 (a scalar) or 1.
func mulAdd(d, a, b, c []float32, sa, sb, sc int, left bool) {
	n := len(d)
	if sa == 1 && sb == 1 && sc == 1 {
		// c + p and p + c are the same sum (IEEE addition commutes).
		ops.MulAdd(d, a[:n], b[:n], c[:n])
		return
	}
	for i := range d {
		p := float32(a[i*sa] * b[i*sb])
		if left {
			d[i] = c[i*sc] + p
		} else {
			d[i] = p + c[i*sc]
		}
	}
}

// shape is the cell's shape at run time, or false when the inputs are not
// the plain case: float, every non-constant leaf of one shape (a Split's
// input with four times the channels), constants broadcasting into it.
func (gc *gateCell) shape(in []*tensor.Tensor) ([]int, bool) {
	var shape []int
	for i, l := range gc.leaves {
		t := in[i]
		if !t.IsFloat() {
			return nil, false
		}
		if l.cnst != nil {
			continue
		}
		s := t.Shape
		if l.block >= 0 {
			if len(s) < 2 || s[1]%4 != 0 {
				return nil, false
			}
			s = slices.Clone(s)
			s[1] /= 4
		}
		if shape == nil {
			shape = s
		} else if !slices.Equal(shape, s) {
			return nil, false
		}
	}
	if len(shape) < 2 || numel(shape) == 0 {
		return nil, false
	}
	for i, l := range gc.leaves {
		if l.cnst == nil {
			continue
		}
		s := in[i].Shape
		if len(s) == len(shape) && s[0] != 1 {
			return nil, false // a constant with a batch axis of its own
		}
		if b, ok := broadcastShape(shape, s); !ok || !slices.Equal(b, shape) {
			return nil, false
		}
	}
	return slices.Clone(shape), true
}

// plane is constant leaf i as one batch entry of the cell's shape: its own
// data when it has that many values, else broadcast once per shape (and
// shared by the cells of the graph that read the same constant).
func (gc *gateCell) plane(i int, t *tensor.Tensor, shape []int) []float32 {
	n := numel(shape)
	if len(t.Data) == n {
		return t.Data // (H, W, ...) or (1, H, W, ...): broadcasting adds nothing
	}
	return gc.planes.get(t, shape)
}

// gatePlanes are constants broadcast to a cell's plane, by constant and
// shape, for the cells of one graph.
type gatePlanes struct {
	mu sync.Mutex
	m  map[gatePlaneKey][]float32
}

type gatePlaneKey struct {
	t     *tensor.Tensor
	shape string
}

func (gp *gatePlanes) get(t *tensor.Tensor, shape []int) []float32 {
	key := gatePlaneKey{t, fmt.Sprint(shape)}
	gp.mu.Lock()
	defer gp.mu.Unlock()
	if p := gp.m[key]; p != nil {
		return p
	}
	s := t.Shape
	if len(s) > len(shape) {
		s = s[len(s)-len(shape):] // a leading batch axis of 1
	}
	p := make([]float32, numel(shape))
	bc := newBcast(shape, s)
	step := bc.step(0)
	bc.runs(0, len(p), func(o, m int, off []int) {
		for j := 0; j < m; j++ {
			p[o+j] = t.Data[off[0]+j*step]
		}
	})
	if gp.m == nil || len(gp.m) >= 64 {
		gp.m = map[gatePlaneKey][]float32{}
	}
	gp.m[key] = p
	return p
}

// gateOriginal runs the replaced nodes (the fused node's inputs are in the
// scope by name) and returns h' and c'.
func (x *exec) gateOriginal(n *node, gc *gateCell, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return x.runCellNodes(n, in, gc.original)
}

// describe is the cell's programs in words (tests and debugging).
func (gc *gateCell) describe() string {
	var b strings.Builder
	opnd := func(o gOperand) string {
		switch o.kind {
		case opReg:
			return fmt.Sprintf("r%d", o.idx)
		case opLeaf:
			l := gc.leaves[o.idx]
			if l.block >= 0 {
				return fmt.Sprintf("%s[%d]", l.name, l.block)
			}
			return l.name
		case opCNew:
			return "c'"
		}
		return fmt.Sprint(o.val)
	}
	for k, name := range []string{"i", "f", "o", "g"} {
		fmt.Fprintf(&b, "%s:", name)
		for _, in := range gc.progs[k].code {
			switch {
			case in.madd && in.addLeft:
				fmt.Fprintf(&b, " r%d=%s+%s*%s;", in.dst, opnd(in.add), opnd(in.a), opnd(in.b))
			case in.madd:
				fmt.Fprintf(&b, " r%d=%s*%s+%s;", in.dst, opnd(in.a), opnd(in.b), opnd(in.add))
			default:
				fmt.Fprintf(&b, " r%d=%s%s%s;", in.dst, opnd(in.a), "+-*/"[in.k:in.k+1], opnd(in.b))
			}
		}
		fmt.Fprintf(&b, " %s\n", opnd(gc.progs[k].res))
	}
	fmt.Fprintf(&b, "c: %s", gc.leaves[gc.c].name)
	return b.String()
}
