package graph

import (
	"math"
	"slices"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// Elementwise ops: unary maths and activations, binary arithmetic with
// multidirectional (NumPy) broadcasting. Kernels pick their loop once per
// call (per contiguous run for broadcasting) and run it without calls per
// element.

func init() {
	register(
		&opDef{name: "Sigmoid", since: v(6, 13), in: io(1, 1), out: io(1, 1), run: runUnary},
		&opDef{name: "Tanh", since: v(6, 13), in: io(1, 1), out: io(1, 1), run: runUnary},
		&opDef{name: "Relu", since: v(6, 13, 14), in: io(1, 1), out: io(1, 1), run: runUnary},
		&opDef{name: "Add", since: v(7, 13, 14), in: io(2, 2), out: io(1, 1), run: runArith},
		&opDef{name: "Sub", since: v(7, 13, 14), in: io(2, 2), out: io(1, 1), run: runArith},
		&opDef{name: "Mul", since: v(7, 13, 14), in: io(2, 2), out: io(1, 1), run: runArith},
		&opDef{name: "Div", since: v(7, 13, 14), in: io(2, 2), out: io(1, 1), run: runArith},
	)
}

func runUnary(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	if !t.IsFloat() {
		return nil, x.errf(n, "input %q must be float32, is %s", n.in[0], typeName(t))
	}
	out := x.newFloat(t.Shape)
	if x.dry {
		return one(out, nil)
	}
	d, s := out.Data, t.Data[:len(out.Data)]
	switch n.op {
	case "Sigmoid":
		for i, v := range s {
			d[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	case "Tanh":
		for i, v := range s {
			d[i] = float32(math.Tanh(float64(v)))
		}
	case "Relu":
		for i, v := range s {
			d[i] = max(v, 0)
		}
	}
	return one(out, nil)
}

// broadcastShape is NumPy's rule: align right, 1 stretches.
func broadcastShape(a, b []int) ([]int, bool) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if j := len(a) - r + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - r + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		default:
			return nil, false
		}
	}
	return out, true
}

// bstrides are the strides of shape s broadcast to out (0 on stretched dims).
func bstrides(s, out []int) []int {
	st := make([]int, len(out))
	acc := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := len(s) - len(out) + i
		if j >= 0 && s[j] != 1 {
			st[i] = acc
		}
		if j >= 0 {
			acc *= s[j]
		}
	}
	return st
}

// broadcastRuns walks the output of a broadcast binary op by contiguous
// runs: f(o, ia, ib, sa, sb, n) covers outputs o..o+n-1, reading a from ia
// and b from ib with steps sa and sb (each 0 or 1). Output axes of size 1
// are dropped and axes that both inputs read the same way are merged, so
// runs are as long as the broadcast allows.
func broadcastRuns(out, as, bs []int, f func(o, ia, ib, sa, sb, n int)) {
	total := numel(out)
	if total == 0 {
		return
	}
	sa0, sb0 := bstrides(as, out), bstrides(bs, out)
	var dims, sa, sb []int
	for i, d := range out {
		if d == 1 {
			continue
		}
		k := len(dims) - 1
		if k >= 0 && mergeable(sa[k], sa0[i], d) && mergeable(sb[k], sb0[i], d) {
			dims[k] *= d
			sa[k], sb[k] = sa0[i], sb0[i]
			continue
		}
		dims, sa, sb = append(dims, d), append(sa, sa0[i]), append(sb, sb0[i])
	}
	if len(dims) == 0 {
		f(0, 0, 0, 0, 0, 1)
		return
	}
	last := len(dims) - 1
	run := dims[last]
	idx := make([]int, last)
	ia, ib := 0, 0
	for o := 0; o < total; o += run {
		f(o, ia, ib, sa[last], sb[last], run)
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			ia += sa[d]
			ib += sb[d]
			if idx[d] < dims[d] {
				break
			}
			ia -= sa[d] * dims[d]
			ib -= sb[d] * dims[d]
			idx[d] = 0
		}
	}
}

// mergeable: an outer axis of stride outer followed by an inner axis of
// size d and stride inner read as one axis.
func mergeable(outer, inner, d int) bool {
	return outer == inner*d
}

func runArith(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b := in[0], in[1]
	if !sameType(a, b) {
		return nil, x.errf(n, "inputs %q (%s) and %q (%s) have different element types", n.in[0], typeName(a), n.in[1], typeName(b))
	}
	if a.DType == tensor.Bool {
		return nil, x.errf(n, "inputs are bool: %s takes numbers", n.op)
	}
	shape, ok := broadcastShape(a.Shape, b.Shape)
	if !ok {
		return nil, x.errf(n, "shapes %v (%q) and %v (%q) do not broadcast", a.Shape, n.in[0], b.Shape, n.in[1])
	}
	out := x.like(a, shape)
	if !x.has(a, b) {
		out.Ints = nil
		return one(out, nil)
	}
	op := arithOps[n.op]
	if a.IsFloat() {
		if slices.Equal(a.Shape, b.Shape) {
			arith(op, out.Data, a.Data, b.Data, 1, 1)
			return one(out, nil)
		}
		broadcastRuns(shape, a.Shape, b.Shape, func(o, ia, ib, sa, sb, m int) {
			arith(op, out.Data[o:o+m], a.Data[ia:], b.Data[ib:], sa, sb)
		})
		return one(out, nil)
	}
	if op == opDiv && slices.Contains(b.Ints, 0) {
		return nil, x.errf(n, "integer division by zero")
	}
	broadcastRuns(shape, a.Shape, b.Shape, func(o, ia, ib, sa, sb, m int) {
		arith(op, out.Ints[o:o+m], a.Ints[ia:], b.Ints[ib:], sa, sb)
	})
	if a.DType != tensor.Int64 {
		for i, v := range out.Ints {
			out.Ints[i] = wrapInt(v, a.DType)
		}
	}
	return one(out, nil)
}

const (
	opAdd = iota
	opSub
	opMul
	opDiv
)

var arithOps = map[string]int{"Add": opAdd, "Sub": opSub, "Mul": opMul, "Div": opDiv}

// arith computes d[i] = a[i·sa] op b[i·sb] for i < len(d), sa and sb 0 or 1.
func arith[E float32 | int64](op int, d, a, b []E, sa, sb int) {
	n := len(d)
	if sa == 0 && sb == 0 {
		var v E
		switch op {
		case opAdd:
			v = a[0] + b[0]
		case opSub:
			v = a[0] - b[0]
		case opMul:
			v = a[0] * b[0]
		case opDiv:
			v = a[0] / b[0]
		}
		for i := range d {
			d[i] = v
		}
		return
	}
	switch {
	case sa == 1 && sb == 1:
		a, b = a[:n], b[:n]
		switch op {
		case opAdd:
			for i := range d {
				d[i] = a[i] + b[i]
			}
		case opSub:
			for i := range d {
				d[i] = a[i] - b[i]
			}
		case opMul:
			for i := range d {
				d[i] = a[i] * b[i]
			}
		case opDiv:
			for i := range d {
				d[i] = a[i] / b[i]
			}
		}
	case sa == 0:
		s, b := a[0], b[:n]
		switch op {
		case opAdd:
			for i := range d {
				d[i] = s + b[i]
			}
		case opSub:
			for i := range d {
				d[i] = s - b[i]
			}
		case opMul:
			for i := range d {
				d[i] = s * b[i]
			}
		case opDiv:
			for i := range d {
				d[i] = s / b[i]
			}
		}
	default:
		a, s := a[:n], b[0]
		switch op {
		case opAdd:
			for i := range d {
				d[i] = a[i] + s
			}
		case opSub:
			for i := range d {
				d[i] = a[i] - s
			}
		case opMul:
			for i := range d {
				d[i] = a[i] * s
			}
		case opDiv:
			for i := range d {
				d[i] = a[i] / s
			}
		}
	}
}
