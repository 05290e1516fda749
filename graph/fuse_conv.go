package graph

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/convlstm-go/convlstm-go/ops"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Compile-time passes on convolutions, run before their weights are packed
// (prepareConvs):
//
//   - foldBatchNorms folds an inference BatchNormalization into the Conv or
//     ConvTranspose before it: w' = w·γ/√(σ²+ε) per output channel,
//     b' = (b − μ)·γ/√(σ²+ε) + β. torch.onnx.export does this itself unless
//     told to keep training-mode structure (the "unfolded" exports).
//   - fuseConvActivations moves the activation after a Conv or
//     ConvTranspose (Relu, LeakyRelu, Sigmoid, Tanh, HardSigmoid, HardSwish,
//     Gelu and every other one-input elementwise op, Clip with constant
//     bounds, and GELU as torch exports it before opset 20: Div, Erf, Add,
//     Mul, Mul) into the convolution's epilogue, applied to each output
//     plane right after it is written.
//
// Either happens only when the convolution's output has that one reader
// and is not a graph output, so nothing can observe the intermediate value;
// the fused node takes the name of the last output it replaces. The
// activations run the elementwise ops' own kernels (unary.apply), or for
// Relu and LeakyRelu a masked loop that gives the same bits without a
// branch on the sign, so fused and unfused graphs agree bit for bit.

// fuseConvEpilogues runs both passes: BatchNormalization first, so that
// an activation after it moves into the convolution too. compileGraph
// calls it after the cell passes (a cell's conv feeds a Split, never these
// nodes, but a folded weight must not reach a cell's engine step, which
// packs the initialisers) and before elementwise chains are fused (they
// would otherwise take torch's GELU chain).
func fuseConvEpilogues(p *program) {
	foldBatchNorms(p)
	fuseConvActivations(p)
}

// convFamily reports whether n is a Conv or ConvTranspose with compile-time
// state (constant weights), the nodes these passes rewrite.
func convFamily(n *node) bool {
	return (n.op == "Conv" || n.op == "ConvTranspose" && n.conv != nil && n.conv.tr != nil) && n.conv != nil
}

// floatConst is a constant float tensor of p (possibly behind Identity
// nodes), or nil.
func floatConst(p *program, name string) *tensor.Tensor {
	if name == "" {
		return nil
	}
	_, t := p.constThrough(name)
	if t == nil || !t.IsFloat() || t.Data == nil {
		return nil
	}
	return t
}

// foldBatchNorms folds every inference BatchNormalization that alone reads
// a Conv's or ConvTranspose's output into its weights and bias. Convs that
// share weights and fold the same BatchNormalization parameters share the
// folded arrays.
func foldBatchNorms(p *program) {
	producer, uses := usage(p)
	type foldKey struct{ w, b, scale, bias, mean, v string }
	folded := map[foldKey][2][]float32{}
	removed := map[*node]bool{}
	for _, bn := range p.nodes {
		if bn.op != "BatchNormalization" || batchNormTraining(bn) || len(bn.in) != 5 || attrInt(bn, "spatial", 1) != 1 {
			continue
		}
		if slices.ContainsFunc(bn.out[1:], func(o string) bool { return o != "" }) {
			continue
		}
		cv := producer[bn.in[0]]
		if cv == nil || removed[cv] || !convFamily(cv) || uses[bn.in[0]] != 1 || cv.conv.w != nil || cv.conv.act != nil || len(cv.out) != 1 {
			continue
		}
		cn := cv.conv
		var m int
		var wName, bName string
		switch {
		case cn.tr != nil:
			m, wName, bName = cn.tr.mg*cn.tr.group, cn.tr.weightName, cn.tr.biasName
		default:
			m, wName, bName = cn.m, cn.weightName, cn.biasName
		}
		w := floatConst(p, wName)
		if w == nil || m < 1 || len(w.Data)%m != 0 {
			continue
		}
		var b []float32
		if bName != "" {
			bt := floatConst(p, bName)
			if bt == nil || len(bt.Data) != m {
				continue
			}
			b = bt.Data
		}
		params := make([][]float32, 4)
		ok := true
		for k := range params {
			t := floatConst(p, bn.in[1+k])
			if t == nil || len(t.Data) != m || len(t.Shape) != 1 {
				ok = false
				break
			}
			params[k] = t.Data
		}
		if !ok {
			continue
		}
		key := foldKey{wName, bName, bn.in[1], bn.in[2], bn.in[3], bn.in[4] + fmt.Sprint(attrFloat(bn, "epsilon", 1e-5))}
		wb, done := folded[key]
		if !done {
			a, shift := batchNormAffine(params[0], params[1], params[2], params[3], float64(attrFloat(bn, "epsilon", 1e-5)))
			wb = [2][]float32{scaleOutputChannels(w.Data, cn, a), make([]float32, m)}
			for c := 0; c < m; c++ {
				// b' = (b − μ)·a + β = b·a + (β − μ·a)
				var bc float64
				if b != nil {
					bc = float64(b[c])
				}
				wb[1][c] = float32(bc*float64(a[c]) + float64(shift[c]))
			}
			folded[key] = wb
		}
		cn.w, cn.b = wb[0], wb[1]
		cv.out = []string{bn.out[0]}
		cv.name += "+" + bn.name
		removed[bn] = true
	}
	if len(removed) > 0 {
		p.nodes = slices.DeleteFunc(p.nodes, func(n *node) bool { return removed[n] })
	}
}

// scaleOutputChannels returns the weights with output channel m scaled by
// a[m]: Conv weights are (M, C/g, k...), ConvTranspose weights (C, M/g,
// k...), output channel g·(M/g) + j.
func scaleOutputChannels(w []float32, cn *convNode, a []float32) []float32 {
	out := make([]float32, len(w))
	if t := cn.tr; t != nil {
		cg := t.c / t.group
		k := len(w) / (t.c * t.mg)
		for c := 0; c < t.c; c++ {
			g := c / cg
			for j := 0; j < t.mg; j++ {
				s := a[g*t.mg+j]
				blk := (c*t.mg + j) * k
				for i := blk; i < blk+k; i++ {
					out[i] = w[i] * s
				}
			}
		}
		return out
	}
	per := len(w) / len(a)
	for m, s := range a {
		for i := m * per; i < (m+1)*per; i++ {
			out[i] = w[i] * s
		}
	}
	return out
}

// fuseConvActivations moves activations into the epilogue of the Conv or
// ConvTranspose they alone follow; a chain of them (Conv, Relu, Clip)
// composes.
func fuseConvActivations(p *program) {
	for {
		producer, uses := usage(p)
		cons, _ := consumersOf(p)
		removed := map[*node]bool{}
		for _, cv := range p.nodes {
			if !convFamily(cv) || len(cv.out) != 1 || removed[cv] {
				continue
			}
			y := cv.out[0]
			act, name, group := matchActivation(p, y, uses, cons, producer)
			if act == nil || slices.ContainsFunc(group, func(n *node) bool { return removed[n] }) {
				continue
			}
			last := group[len(group)-1]
			if prev := cv.conv.act; prev != nil {
				cv.conv.act = func(plane []float32) { prev(plane); act(plane) }
				cv.conv.actName += "+" + name
			} else {
				cv.conv.act, cv.conv.actName = act, name
			}
			cv.out = []string{last.out[0]}
			cv.name += "+" + name
			for _, g := range group {
				removed[g] = true
			}
		}
		if len(removed) == 0 {
			return
		}
		p.nodes = slices.DeleteFunc(p.nodes, func(n *node) bool { return removed[n] })
	}
}

// matchActivation recognises the activation reading y (y's only reader, or
// GELU's five nodes, which read y twice): the function applying it in
// place, its name, and the nodes it replaces in order (the last one's
// output is the result).
func matchActivation(p *program, y string, uses map[string]int, cons map[string][]*node, producer map[string]*node) (func([]float32), string, []*node) {
	rs := cons[y]
	if uses[y] == 2 && len(rs) == 2 {
		return matchGELU(p, y, uses, cons)
	}
	if uses[y] != 1 || len(rs) != 1 {
		return nil, "", nil
	}
	a := rs[0]
	if len(a.out) != 1 || a.in[0] != y || len(a.in) < 1 {
		return nil, "", nil
	}
	group := []*node{a}
	switch a.op {
	case "Relu":
		if len(a.in) != 1 {
			return nil, "", nil
		}
		return ops.Relu, a.op, group
	case "LeakyRelu":
		alpha := attrFloat(a, "alpha", 0.01)
		return func(d []float32) { ops.LeakyRelu(d, alpha) }, fmt.Sprintf("LeakyRelu(%g)", alpha), group
	case "Clip":
		// Bounds as runClip reads them: attributes before opset 11 (absent:
		// ±FLT_MAX from opset 6), constant scalar inputs from 11.
		lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
		if a.opset < 11 {
			if a.opset >= 6 {
				lo, hi = -math.MaxFloat32, math.MaxFloat32
			}
			lo, hi = attrFloat(a, "min", lo), attrFloat(a, "max", hi)
		} else {
			for k, bound := range []*float32{&lo, &hi} {
				if len(a.in) <= k+1 || a.in[k+1] == "" {
					continue
				}
				t := floatConst(p, a.in[k+1])
				if t == nil || len(t.Data) != 1 {
					return nil, "", nil // a computed bound
				}
				*bound = t.Data[0]
			}
		}
		u := unary{k: uClip, a: lo, b: hi}
		return func(d []float32) { u.apply(d, d) }, fmt.Sprintf("Clip(%g,%g)", lo, hi), group
	}
	if _, ok := unaryKinds[a.op]; ok && len(a.in) == 1 {
		// Sigmoid, Tanh, HardSigmoid, HardSwish, Gelu, Elu, ...: the
		// elementwise ops' own kernels, with the same roundings as when
		// the node runs alone.
		u := unaryOf(a)
		name := a.op
		switch a.op {
		case "HardSigmoid":
			name = fmt.Sprintf("HardSigmoid(%g,%g)", u.a, u.b)
		case "Gelu":
			name = "Gelu(" + attrString(a, "approximate", "none") + ")"
		}
		return func(d []float32) { u.apply(d, d) }, name, group
	}
	return nil, "", nil
}

// matchGELU recognises torch's export of the exact GELU of y:
// Mul(Mul(y, Add(Erf(Div(y, c1)), c2)), c3), each intermediate read once,
// operands of Add and Mul in either order, c1, c2 and c3 scalar constants.
func matchGELU(p *program, y string, uses map[string]int, cons map[string][]*node) (func([]float32), string, []*node) {
	var div, mul1 *node
	for _, r := range cons[y] {
		switch {
		case r.op == "Div" && len(r.in) == 2 && r.in[0] == y:
			div = r
		case r.op == "Mul" && len(r.in) == 2:
			mul1 = r
		}
	}
	scalar := func(name string) (float32, bool) {
		t := floatConst(p, name)
		if t == nil || len(t.Data) != 1 {
			return 0, false
		}
		return t.Data[0], true
	}
	only := func(v string) *node {
		if uses[v] != 1 || len(cons[v]) != 1 {
			return nil
		}
		return cons[v][0]
	}
	other := func(n *node, v string) string {
		if n.in[0] == v {
			return n.in[1]
		}
		return n.in[0]
	}
	if div == nil || mul1 == nil || len(div.out) != 1 {
		return nil, "", nil
	}
	c1, ok := scalar(div.in[1])
	if !ok {
		return nil, "", nil
	}
	erf := only(div.out[0])
	if erf == nil || erf.op != "Erf" || len(erf.out) != 1 {
		return nil, "", nil
	}
	add := only(erf.out[0])
	if add == nil || add.op != "Add" || len(add.in) != 2 {
		return nil, "", nil
	}
	c2, ok := scalar(other(add, erf.out[0]))
	if !ok || only(add.out[0]) != mul1 || other(mul1, add.out[0]) != y {
		return nil, "", nil
	}
	mul2 := only(mul1.out[0])
	if mul2 == nil || mul2.op != "Mul" || len(mul2.in) != 2 {
		return nil, "", nil
	}
	c3, ok := scalar(other(mul2, mul1.out[0]))
	if !ok {
		return nil, "", nil
	}
	erfK := unary{k: uErf}
	return func(d []float32) {
		// Op by op as the nodes compute it, a block at a time: x/c1, the
		// Erf kernel, +c2, ·x, ·c3.
		var t [256]float32
		for o := 0; o < len(d); o += len(t) {
			x := d[o:min(len(d), o+len(t))]
			b := t[:len(x)]
			for i, v := range x {
				b[i] = v / c1
			}
			erfK.apply(b, b)
			for i, v := range x {
				x[i] = float32(v*(b[i]+c2)) * c3
			}
		}
	}, "GELU", []*node{div, erf, add, mul1, mul2}
}

// fusedName lists what a convolution node carries (for tests and errors).
func (cn *convNode) fusedName() string {
	var parts []string
	if cn.w != nil {
		parts = append(parts, "BatchNormalization")
	}
	if cn.actName != "" {
		parts = append(parts, cn.actName)
	}
	return strings.Join(parts, "+")
}
