package graph

import (
	"slices"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// Constant folding. A traced export computes some values from constants
// alone: the zero state's convolution at the first step of a cell with
// separate conv_h (OpenSTL: Conv, LayerNormalization and Split of zeros,
// the same every run). foldConstants runs such nodes once, at compile
// time, with the kernels they would run with, and makes their outputs
// constants; the fusion passes then see constants (a folded Split block is
// a constant leaf of a general cell). ONNX Runtime does the same.
//
// Not folded: Identity (constThrough and CellGates name weights through
// them), nodes with subgraphs, ops that make sequences, outputs larger
// than foldMaxValues (a ConstantOfShape of a large image stays a node
// rather than a resident constant), and any node whose kernel reports an
// error (the run reports it, naming the node, as without folding).

// foldMaxValues bounds the values of one folded output.
const foldMaxValues = 1 << 22

// foldConstants folds p's constant nodes into p.consts.
func (c *compiler) foldConstants(p *program) {
	g := &Graph{File: c.file, threads: 1}
	x := &exec{g: g, owned: map[*float32]*ownedBuf{}, counted: map[*tensor.Tensor]int{}, p: p, s: &scope{vals: map[string]*tensor.Tensor{}}}
	kept := p.nodes[:0]
	for _, n := range p.nodes {
		if !foldable(p, n) || !x.fold(n) {
			kept = append(kept, n)
		}
	}
	clear(p.nodes[len(kept):])
	p.nodes = kept
}

// foldable says whether n reads only constants and may be folded.
func foldable(p *program, n *node) bool {
	if n.op == "Identity" || n.def == nil || n.def.seqIn || len(n.sub) > 0 || len(n.extra) > 0 || len(n.out) == 0 {
		return false
	}
	switch n.op {
	case "SequenceConstruct", "SequenceEmpty", "SplitToSequence", "SequenceInsert", "SequenceErase", "ConcatFromSequence", "SequenceAt", "SequenceLength":
		return false
	}
	for _, in := range n.in {
		if in == "" {
			continue
		}
		t := p.constant(in)
		if t == nil || (t.IsFloat() && t.Data == nil) || (!t.IsFloat() && t.Ints == nil) {
			return false
		}
	}
	return true
}

// fold runs n on its constant inputs and records its outputs as constants
// of x.p; false (nothing recorded) when the kernel fails or an output is
// not a plain tensor of at most foldMaxValues values.
func (x *exec) fold(n *node) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false // the run will report it
		}
	}()
	in := make([]*tensor.Tensor, len(n.in))
	for i, name := range n.in {
		if name != "" {
			in[i] = x.p.constant(name)
		}
	}
	x.cur = n
	outs, err := n.def.run(x, n, in)
	if err != nil || len(outs) < len(n.out) {
		return false
	}
	for i, o := range n.out {
		if o == "" {
			continue
		}
		t := outs[i]
		if t == nil || t.DType == seqDType || numel(t.Shape) > foldMaxValues || (t.IsFloat() && t.Data == nil) || (!t.IsFloat() && t.Ints == nil) {
			return false
		}
	}
	for i, o := range n.out {
		if o == "" {
			continue
		}
		// A copy: the output may be a view of a constant input, or a
		// buffer of this pass's arena.
		x.p.consts[o] = outs[i].Clone()
	}
	return true
}

// pruneZeroParts drops from a Conv over a fused channel Concat the parts
// that are constant zeros, with their input channels of the weight: a
// cell's first step from a zero state, conv(cat(x, 0)), is conv_x(x) and
// costs only x's share (the peephole row's cells: a third and a half of
// their first steps). The channel offsets must be known: every part but at
// most one a constant. Convs fused into an LSTMCell are not touched (the
// engine's cell skips a zero h itself, bit for bit as before).
func pruneZeroParts(p *program) {
	for _, n := range p.nodes {
		cn := n.conv
		if n.op != "Conv" || cn == nil || !cn.parts || cn.group != 1 || cn.packed != nil || len(n.in) < 2 {
			continue
		}
		chans := make([]int, len(n.in))
		zero := make([]bool, len(n.in))
		unknown, known, any := -1, 0, false
		for i, in := range n.in {
			t := p.constant(in)
			if t == nil {
				if unknown >= 0 {
					unknown = -2
					break
				}
				unknown = i
				continue
			}
			if !t.IsFloat() || len(t.Shape) != 4 || t.Data == nil {
				unknown = -2
				break
			}
			chans[i], known = t.Shape[1], known+t.Shape[1]
			zero[i] = !slices.ContainsFunc(t.Data, func(v float32) bool { return v != 0 })
			any = any || zero[i]
		}
		if unknown == -2 || !any || known > cn.cg || (unknown < 0 && known != cn.cg) || !slices.Contains(zero, false) {
			continue
		}
		if unknown >= 0 {
			chans[unknown] = cn.cg - known
		}
		w, b := cn.w, cn.b
		if w == nil {
			wt := p.constant(cn.weightName)
			if wt == nil || len(wt.Data) != cn.m*cn.cg*cn.kh*cn.kw {
				continue
			}
			w = wt.Data
			if cn.biasName != "" {
				bt := p.constant(cn.biasName)
				if bt == nil || !bt.IsFloat() || len(bt.Data) != cn.m {
					continue // a computed bias: packed per run, not here
				}
				b = bt.Data
			}
		}
		keep := 0
		for i := range n.in {
			if !zero[i] {
				keep += chans[i]
			}
		}
		kk := cn.kh * cn.kw
		pw := make([]float32, 0, cn.m*keep*kk)
		for o := 0; o < cn.m; o++ {
			row := w[o*cn.cg*kk:]
			c0 := 0
			for i := range n.in {
				if !zero[i] {
					pw = append(pw, row[c0*kk:(c0+chans[i])*kk]...)
				}
				c0 += chans[i]
			}
		}
		var in []string
		for i, name := range n.in {
			if !zero[i] {
				in = append(in, name)
			}
		}
		c := *cn
		c.w, c.b, c.cg = pw, b, keep
		n.conv, n.in = &c, in
	}
}
