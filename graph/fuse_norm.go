package graph

import (
	"slices"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// GroupNorm as torch.onnx.export writes nn.GroupNorm(G, C):
//
//	r = Reshape(x, [0, G, -1]); n = InstanceNormalization(r, 1s, 0s)
//	y = Reshape(n, Shape(x)) · γ + β        (γ, β of shape (C, 1, 1))
//
// fuseGroupNorms makes the five nodes one: the moments of each group, then
// one pass writing ((x − μ)·a + b)·γ_c + β_c with the roundings of the
// three elementwise steps (engine.NormRows' PostScale): bit-identical to
// the nodes, and the normalised tensor is never written and read back
// twice. It fires only when the intermediates have these readers alone;
// at run time, shapes other than the plain case (a reshape that is not a
// grouping of x's channels, γ or β not per channel) run the original
// nodes.

// groupNorm is a fused GroupNorm's plan: the node's inputs are x, the
// first Reshape's shape, the instance norm's scale and bias, the second
// Reshape's shape, γ and β, in that order.
type groupNorm struct {
	original []*node
	eps      float64
}

const (
	gnX = iota
	gnShape1
	gnScale
	gnBias
	gnShape2
	gnGamma
	gnBeta
)

var groupNormDef = &opDef{name: "GroupNorm", run: runGroupNorm}

func fuseGroupNorms(p *program) {
	producer, uses := usage(p)
	single := func(v string) bool { return uses[v] == 1 }
	removed := map[*node]bool{}
	replace := map[*node]*node{}
	for _, add := range p.nodes {
		if add.op != "Add" || len(add.in) != 2 || add.opset < 7 || removed[add] {
			continue
		}
		// Add(Mul(Reshape(IN(Reshape(x, s1)), s2), γ), β), operands either way round.
		var mul *node
		var beta string
		for k := 0; k < 2; k++ {
			if m := producer[add.in[k]]; m != nil && m.op == "Mul" && len(m.in) == 2 && single(add.in[k]) && isConst(p, add.in[1-k]) {
				mul, beta = m, add.in[1-k]
			}
		}
		if mul == nil || removed[mul] || mul.opset < 7 {
			continue
		}
		var r2 *node
		var gamma string
		for k := 0; k < 2; k++ {
			if r := producer[mul.in[k]]; r != nil && r.op == "Reshape" && single(mul.in[k]) && isConst(p, mul.in[1-k]) {
				r2, gamma = r, mul.in[1-k]
			}
		}
		if r2 == nil || removed[r2] || len(r2.in) != 2 || attrInt(r2, "allowzero", 0) != 0 {
			continue
		}
		in := producer[r2.in[0]]
		if in == nil || in.op != "InstanceNormalization" || !single(r2.in[0]) || removed[in] || len(in.in) != 3 {
			continue
		}
		if !isConst(p, in.in[1]) || !isConst(p, in.in[2]) {
			continue
		}
		r1 := producer[in.in[0]]
		if r1 == nil || r1.op != "Reshape" || !single(in.in[0]) || removed[r1] || len(r1.in) != 2 || attrInt(r1, "allowzero", 0) != 0 {
			continue
		}
		s1 := p.constant(r1.in[1])
		if s1 == nil || s1.IsFloat() || len(s1.Ints) != 3 || s1.Ints[1] < 1 || s1.Ints[2] != -1 {
			continue
		}
		// The second shape is x's own: Shape(x), or a constant checked when
		// running.
		if sh := producer[r2.in[1]]; sh != nil && (sh.op != "Shape" || sh.in[0] != r1.in[0] || len(sh.attrs) > 0) {
			continue
		} else if sh == nil && p.constant(r2.in[1]) == nil {
			continue
		}
		group := []*node{r1, in, r2, mul, add}
		for _, n := range group {
			removed[n] = true
		}
		replace[add] = &node{
			name:  in.name + "+GroupNorm",
			op:    "GroupNorm",
			def:   groupNormDef,
			in:    []string{r1.in[0], r1.in[1], in.in[1], in.in[2], r2.in[1], gamma, beta},
			out:   []string{add.out[0]},
			attrs: in.attrs,
			opset: add.opset,
			gnorm: &groupNorm{original: group, eps: float64(attrFloat(in, "epsilon", 1e-5))},
		}
	}
	if len(replace) == 0 {
		return
	}
	splice(p, replace, removed)
}

func runGroupNorm(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	gn := n.gnorm
	t := in[gnX]
	if !gn.plain(in) {
		return x.runOriginal(gn.original)
	}
	out := x.newFloat(slices.Clone(t.Shape))
	if x.dry || numel(t.Shape) == 0 {
		return one(out, nil)
	}
	groups := int(in[gnShape1].Ints[1])
	c, plane := t.Shape[1], numel(t.Shape[2:])
	engine.Normalize(poolFor(x.g.threads), out.Data, t.Data, engine.NormRows{
		Rows: t.Shape[0] * groups, N: c / groups * plane, Eps: gn.eps,
		Scale: in[gnScale].Data, Bias: in[gnBias].Data,
		PostScale: in[gnGamma].Data, PostBias: in[gnBeta].Data, PostPlane: plane})
	return one(out, nil)
}

// plain says whether the inputs are the case fused: float x of rank ≥ 3
// whose channels the first shape groups, the norm's scale and bias one per
// group, the second shape x's own, γ and β one per channel.
func (gn *groupNorm) plain(in []*tensor.Tensor) bool {
	t := in[gnX]
	if !t.IsFloat() || len(t.Shape) < 3 || t.Shape[1] < 1 {
		return false
	}
	s1 := in[gnShape1]
	if s1.IsFloat() || len(s1.Ints) != 3 || (s1.Ints[0] != 0 && int(s1.Ints[0]) != t.Shape[0]) || s1.Ints[2] != -1 {
		return false
	}
	g := int(s1.Ints[1])
	if g < 1 || t.Shape[1]%g != 0 || numel(t.Shape[2:]) == 0 {
		return false
	}
	for _, k := range []int{gnScale, gnBias} {
		if p := in[k]; !p.IsFloat() || len(p.Shape) != 1 || p.Shape[0] != g {
			return false
		}
	}
	if s2 := in[gnShape2]; s2.IsFloat() || len(s2.Ints) != len(t.Shape) || !slices.EqualFunc(s2.Ints, t.Shape, func(a int64, b int) bool { return int(a) == b }) {
		return false
	}
	for _, k := range []int{gnGamma, gnBeta} {
		if !perChannel(in[k].Shape, len(t.Shape), t.Shape[1]) || !in[k].IsFloat() {
			return false
		}
	}
	return true
}

// isConst says whether value v is a constant, or an Identity of one (the
// weights torch shares between time steps).
func isConst(p *program, v string) bool {
	_, t := p.constThrough(v)
	return t != nil
}

// perChannel says whether a tensor of shape s broadcasts against rank-r
// values as one value per channel (axis 1) of c channels.
func perChannel(s []int, r, c int) bool {
	if len(s) > r || len(s) < r-1 {
		return false
	}
	off := r - len(s)
	for i, d := range s {
		if i+off == 1 {
			if d != c {
				return false
			}
		} else if d != 1 {
			return false
		}
	}
	return true
}
