package graph

import (
	"slices"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// Control flow: ops whose attributes are graphs (compiled with the node,
// in n.sub) run by the same runner in a scope whose parent is the node's,
// so bodies read outer values by name.

func init() {
	register(
		&opDef{name: "Scan", since: v(9, 11, 16, 19, 21), in: io(1, many), out: io(1, many),
			attrs: []attrSpec{aGraph("body"), aInt("num_scan_inputs"), aInts("scan_input_axes"), aInts("scan_input_directions"), aInts("scan_output_axes"), aInts("scan_output_directions")},
			check: checkScan, run: runScan},
	)
}

func checkScan(c *compiler, n *node) error {
	if n.attrs["body"] == nil {
		return c.errAttr(n, "body", "missing graph attribute body")
	}
	if !hasAttr(n, "num_scan_inputs") {
		return c.errAttr(n, "num_scan_inputs", "missing attribute num_scan_inputs")
	}
	for _, name := range []string{"scan_input_directions", "scan_output_directions"} {
		d, _ := attrInts(n, name)
		for _, v := range d {
			if v != 0 && v != 1 {
				return c.errAttr(n, name, "%s %v: want 0 (forward) or 1 (reverse)", name, d)
			}
		}
	}
	return nil
}

// runScan runs a Scan node (opset 9+): N state variables then M scan
// inputs; the body maps (states, slices) to (new states, K per-step
// outputs), stacked along their scan_output_axes.
func runScan(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	body := n.sub["body"]
	m := int(attrInt(n, "num_scan_inputs", -1))
	if m < 1 || m > len(in) {
		return nil, x.errf(n, "num_scan_inputs %d: want 1 to %d", m, len(in))
	}
	ns := len(in) - m
	if len(body.inputs) != len(in) {
		return nil, x.errf(n, "body takes %d inputs, the node passes %d", len(body.inputs), len(in))
	}
	k := len(body.outputs) - ns
	if k < 0 || len(n.out) != len(body.outputs) {
		return nil, x.errf(n, "body has %d outputs, the node %d (with %d states)", len(body.outputs), len(n.out), ns)
	}
	dirs := func(name string, count int) ([]int64, error) {
		d, ok := attrInts(n, name)
		if !ok {
			return make([]int64, count), nil
		}
		if len(d) != count {
			return nil, x.errf(n, "%s %v: want %d values", name, d, count)
		}
		return d, nil
	}
	inDirs, err := dirs("scan_input_directions", m)
	if err != nil {
		return nil, err
	}
	outDirs, err := dirs("scan_output_directions", k)
	if err != nil {
		return nil, err
	}
	inAxesAttr, err := dirs("scan_input_axes", m)
	if err != nil {
		return nil, err
	}
	outAxes, err := dirs("scan_output_axes", k)
	if err != nil {
		return nil, err
	}
	inAxes := make([]int, m)
	steps := -1
	for i := 0; i < m; i++ {
		t := in[ns+i]
		if t == nil || len(t.Shape) == 0 {
			return nil, x.errf(n, "scan input %q must have rank ≥ 1", n.in[ns+i])
		}
		ax, ok := normAxis(inAxesAttr[i], len(t.Shape))
		if !ok {
			return nil, x.errf(n, "scan_input_axes %v: axis %d is out of range for input %q %v", inAxesAttr, inAxesAttr[i], n.in[ns+i], t.Shape)
		}
		inAxes[i] = ax
		if s := t.Shape[ax]; steps >= 0 && s != steps {
			return nil, x.errf(n, "scan inputs have %d and %d steps", steps, s)
		} else {
			steps = s
		}
	}
	if steps == 0 {
		return nil, x.unsupported(n, "", "zero-length scans are not supported (output shapes unknown)")
	}
	states := slices.Clone(in[:ns])
	for i, st := range states {
		if st == nil {
			return nil, x.errf(n, "state input #%d is empty", i)
		}
	}
	iters := steps
	if x.dry {
		iters = 1 // shapes only: one pass through the body gives them
	}
	perStep := make([][]*tensor.Tensor, k)
	parent := x.s
	for t := 0; t < iters; t++ {
		bs := &scope{vals: map[string]*tensor.Tensor{}, parent: parent}
		for i := 0; i < ns; i++ {
			bs.vals[body.inputs[i]] = states[i]
		}
		for i := 0; i < m; i++ {
			step := t
			if inDirs[i] == 1 {
				step = steps - 1 - t
			}
			bs.vals[body.inputs[ns+i]] = x.index(in[ns+i], inAxes[i], step)
		}
		res, err := x.run(body, bs)
		if err != nil {
			return nil, err
		}
		for i := 0; i < ns; i++ {
			if !slices.Equal(res[i].Shape, states[i].Shape) || !sameType(res[i], states[i]) {
				return nil, x.errf(n, "body changes state %q from %s %v to %s %v", body.inputs[i], typeName(states[i]), states[i].Shape, typeName(res[i]), res[i].Shape)
			}
			states[i] = res[i]
		}
		for j := 0; j < k; j++ {
			r := res[ns+j]
			if t > 0 && (!slices.Equal(r.Shape, perStep[j][0].Shape) || !sameType(r, perStep[j][0])) {
				return nil, x.errf(n, "scan output %q changes shape or type between steps", body.outputs[ns+j])
			}
			perStep[j] = append(perStep[j], r)
		}
	}
	outs := append([]*tensor.Tensor{}, states...)
	for j := 0; j < k; j++ {
		parts := perStep[j]
		if outDirs[j] == 1 {
			slices.Reverse(parts)
		}
		o, err := x.stack(n, parts, outAxes[j], steps)
		if err != nil {
			return nil, err
		}
		outs = append(outs, o)
	}
	return outs, nil
}

// index is t[..., i, ...] along axis (a copy: the result may outlive t's
// buffer). In the dry pass a float result has no data.
func (x *exec) index(t *tensor.Tensor, axis, i int) *tensor.Tensor {
	shape := append(slices.Clone(t.Shape[:axis]), t.Shape[axis+1:]...)
	v := &tensor.Tensor{Shape: shape, DType: t.DType}
	if !x.has(t) {
		return v
	}
	outer, inner := blocks(t.Shape, axis)
	idx := []int64{int64(i)}
	if t.IsFloat() {
		v.Data = make([]float32, numel(shape))
		gatherInto(v.Data, t.Data, outer, t.Shape[axis], inner, idx)
	} else {
		v.Ints = make([]int64, numel(shape))
		gatherInto(v.Ints, t.Ints, outer, t.Shape[axis], inner, idx)
	}
	return v
}

// stack joins the per-step values parts (all of one shape, count of them,
// or one in the dry pass) along a new axis.
func (x *exec) stack(n *node, parts []*tensor.Tensor, axis int64, count int) (*tensor.Tensor, error) {
	sshape := parts[0].Shape
	ax, ok := normAxis(axis, len(sshape)+1)
	if !ok {
		return nil, x.errf(n, "output axis %d is out of range for rank %d", axis, len(sshape)+1)
	}
	shape := append(append(slices.Clone(sshape[:ax]), count), sshape[ax:]...)
	out := x.like(parts[0], shape)
	if !x.has(parts...) || len(parts) != count {
		out.Ints = nil
		return out, nil
	}
	// Stacking along ax is a concat of the steps, each viewed with a unit
	// dimension at ax.
	unit := append(append(slices.Clone(sshape[:ax]), 1), sshape[ax:]...)
	views := make([]*tensor.Tensor, len(parts))
	for t, p := range parts {
		views[t] = view(p, unit)
	}
	outer, inner := blocks(shape, ax)
	if out.IsFloat() {
		concatInto(out.Data, views, func(t *tensor.Tensor) []float32 { return t.Data }, outer, inner, ax)
	} else {
		concatInto(out.Ints, views, func(t *tensor.Tensor) []int64 { return t.Ints }, outer, inner, ax)
	}
	return out, nil
}
