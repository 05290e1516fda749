package graph

import (
	"math"
	"slices"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// Elementwise ops: unary maths and activations; binary arithmetic,
// comparisons and logic with multidirectional (NumPy) broadcasting, or the
// legacy broadcast/axis attributes before opset 7; the variadic Min, Max,
// Sum and Mean; Where; PRelu (slope broadcast to the input); Clip.
//
// Float values are float32 and follow NumPy's float32 arithmetic (the ONNX
// reference): one rounding per op, transcendental functions within 1 ulp
// (elementwise_math.go). Integers stay exact in Ints with their dtype's
// wrap-around; integer Div truncates toward zero like C, ONNX Runtime and
// the reference's cast; comparisons and logic give bool tensors.
//
// Kernels choose their loop once per contiguous run: the output is walked
// as runs along which every operand either advances or stays put (a
// scalar, a per-channel value), never element by element through an index
// computation. Large outputs are split across threads, and a float output
// takes over the buffer of an input that dies at the node (exec.reusable).
// Chains of these ops are fused into one pass by fuse_elementwise.go.

func init() {
	ci := aInts("consumed_inputs").upTo(5) // an optimisation hint of opset 1: ignored
	legacy := []attrSpec{aInt("broadcast").upTo(6), aInt("axis").upTo(6)}
	unary := func(name string, since []int64, attrs ...attrSpec) *opDef {
		return &opDef{name: name, since: since, in: io(1, 1), out: io(1, 1), attrs: attrs, run: runUnary}
	}
	binary := func(name string, since []int64, run func(*exec, *node, []*tensor.Tensor) ([]*tensor.Tensor, error), attrs ...attrSpec) *opDef {
		return &opDef{name: name, since: since, in: io(2, 2), out: io(1, 1), attrs: attrs, run: run}
	}
	variadic := func(name string, since []int64) *opDef {
		return &opDef{name: name, since: since, in: io(1, many), out: io(1, 1), attrs: []attrSpec{ci}, run: runVariadic}
	}
	arith := append([]attrSpec{ci}, legacy...)
	register(
		unary("Abs", v(1, 6, 13), ci),
		unary("Neg", v(1, 6, 13), ci),
		unary("Exp", v(1, 6, 13), ci),
		unary("Log", v(1, 6, 13), ci),
		unary("Sqrt", v(1, 6, 13), ci),
		unary("Reciprocal", v(1, 6, 13), ci),
		unary("Floor", v(1, 6, 13), ci),
		unary("Ceil", v(1, 6, 13), ci),
		unary("Sign", v(9, 13)),
		unary("Erf", v(9, 13)),
		unary("Sigmoid", v(1, 6, 13), ci),
		unary("Tanh", v(1, 6, 13), ci),
		unary("Relu", v(1, 6, 13, 14), ci),
		unary("HardSigmoid", v(1, 6), aFloat("alpha"), aFloat("beta"), ci),
		unary("LeakyRelu", v(1, 6, 16), aFloat("alpha"), ci),
		unary("Elu", v(1, 6), aFloat("alpha"), ci),
		unary("Selu", v(1, 6), aFloat("alpha"), aFloat("gamma"), ci),
		unary("Celu", v(12), aFloat("alpha")),
		unary("Softplus", v(1)),
		unary("Softsign", v(1)),
		unary("HardSwish", v(14)),
		unary("Gelu", v(20), aString("approximate", "none", "tanh")),
		unary("Not", v(1)),
		&opDef{name: "Clip", since: v(1, 6, 11, 12, 13), in: io(1, 3), out: io(1, 1),
			attrs: []attrSpec{aFloat("min").upTo(10), aFloat("max").upTo(10), ci}, check: checkClip, run: runClip},
		binary("Add", v(1, 6, 7, 13, 14), runArith, arith...),
		binary("Sub", v(1, 6, 7, 13, 14), runArith, arith...),
		binary("Mul", v(1, 6, 7, 13, 14), runArith, arith...),
		binary("Div", v(1, 6, 7, 13, 14), runArith, arith...),
		binary("Pow", v(1, 7, 12, 13, 15), runPow, legacy...),
		binary("PRelu", v(1, 6, 7, 9, 16), runPRelu, ci),
		binary("Equal", v(1, 7, 11, 13, 19), runCompare, legacy...),
		binary("Less", v(1, 7, 9, 13), runCompare, legacy...),
		binary("Greater", v(1, 7, 9, 13), runCompare, legacy...),
		binary("LessOrEqual", v(12, 16), runCompare),
		binary("GreaterOrEqual", v(12, 16), runCompare),
		binary("And", v(1, 7), runLogic, legacy...),
		binary("Or", v(1, 7), runLogic, legacy...),
		binary("Xor", v(1, 7), runLogic, legacy...),
		variadic("Min", v(1, 6, 8, 12, 13)),
		variadic("Max", v(1, 6, 8, 12, 13)),
		variadic("Sum", v(1, 6, 8, 13)),
		variadic("Mean", v(1, 6, 8, 13)),
		&opDef{name: "Where", since: v(9, 16), in: io(3, 3), out: io(1, 1), run: runWhere},
	)
}

// Work below these sizes (values) runs on one thread: cheap kernels are
// memory-bound and not worth a goroutine below a few hundred kilobytes,
// transcendental ones cost tens of cycles per value.
const (
	grainCheap  = 1 << 15
	grainCostly = 1 << 11
)

// split runs f over [0, total) in parts of at least grain values, at most
// one per thread, with boundaries on 64-byte lines.
func (x *exec) split(total, grain int, f func(lo, hi int)) {
	parts := 1
	if x.g.threads > 1 {
		parts = min(x.g.threads, total/grain)
	}
	if parts <= 1 {
		f(0, total)
		return
	}
	parallel(parts, func(p int) {
		lo, hi := (total*p/parts)&^15, (total*(p+1)/parts)&^15
		if p == parts-1 {
			hi = total
		}
		f(lo, hi)
	})
}

// outFloat is a float output of the given shape for node n: the buffer of
// one of the candidate inputs when it has as many values and dies here
// (the kernel then works in place), else a new one from the arena.
func (x *exec) outFloat(n *node, shape []int, in []*tensor.Tensor, cands ...int) *tensor.Tensor {
	if !x.dry {
		size := numel(shape)
		for _, i := range cands {
			if t := in[i]; t != nil && len(t.Data) == size && x.reusable(n, i, t) {
				return &tensor.Tensor{Shape: shape, DType: tensor.Float32, Data: t.Data}
			}
		}
	}
	return x.newFloat(shape)
}

// ---- unary ----

// uKind names a unary kernel.
type uKind uint8

const (
	uAbs uKind = iota
	uNeg
	uRelu
	uReciprocal
	uSign
	uLeakyRelu
	uHardSigmoid
	uHardSwish
	uSoftsign
	uClip
	// The kernels below compute in float64 blocks (see unary.viaF64).
	uExp
	uLog
	uSqrt
	uFloor
	uCeil
	uErf
	uSigmoid
	uTanh
	uElu
	uSelu
	uCelu
	uSoftplus
	uGelu // a = 1: the tanh approximation
)

var unaryKinds = map[string]uKind{
	"Abs": uAbs, "Neg": uNeg, "Relu": uRelu, "Reciprocal": uReciprocal, "Sign": uSign,
	"LeakyRelu": uLeakyRelu, "HardSigmoid": uHardSigmoid, "HardSwish": uHardSwish, "Softsign": uSoftsign,
	"Clip": uClip, "Exp": uExp, "Log": uLog, "Sqrt": uSqrt, "Floor": uFloor, "Ceil": uCeil, "Erf": uErf,
	"Sigmoid": uSigmoid, "Tanh": uTanh, "Elu": uElu, "Selu": uSelu, "Celu": uCelu, "Softplus": uSoftplus,
	"Gelu": uGelu,
}

// unary is a float kernel of one input with its attributes: alpha and beta
// (HardSigmoid, HardSwish), alpha and gamma (Selu), alpha (LeakyRelu, Elu,
// Celu), the bounds (Clip).
type unary struct {
	k    uKind
	a, b float32
}

// unaryOf reads node n's kernel and attributes (Clip's bounds are set by
// its caller).
func unaryOf(n *node) unary {
	u := unary{k: unaryKinds[n.op]}
	switch u.k {
	case uLeakyRelu:
		u.a = attrFloat(n, "alpha", 0.01)
	case uHardSigmoid:
		u.a, u.b = attrFloat(n, "alpha", 0.2), attrFloat(n, "beta", 0.5)
	case uHardSwish:
		u.a, u.b = 1.0/6, 0.5
	case uElu, uCelu:
		u.a = attrFloat(n, "alpha", 1)
	case uGelu:
		if attrString(n, "approximate", "none") == "tanh" {
			u.a = 1
		}
	case uSelu:
		if n.opset < 6 { // Selu-1's defaults were rounded to 5 digits
			u.a, u.b = attrFloat(n, "alpha", 1.6732), attrFloat(n, "gamma", 1.0507)
		} else {
			u.a, u.b = attrFloat(n, "alpha", 1.67326319217681884765625), attrFloat(n, "gamma", 1.05070102214813232421875)
		}
	}
	return u
}

// costly says whether the kernel is worth threads on smaller outputs.
func (u *unary) costly() bool { return u.k >= uExp }

// apply computes d[i] = u(s[i]) for i < len(d); d and s may be the same
// slice.
func (u *unary) apply(d, s []float32) {
	s = s[:len(d)]
	switch u.k {
	case uAbs:
		for i, v := range s {
			d[i] = math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
		}
	case uNeg:
		for i, v := range s {
			d[i] = -v
		}
	case uRelu:
		for i, v := range s {
			d[i] = max(v, 0)
		}
	case uReciprocal:
		for i, v := range s {
			d[i] = 1 / v
		}
	case uSign:
		for i, v := range s {
			switch {
			case v > 0:
				v = 1
			case v < 0:
				v = -1
			}
			d[i] = v // 0 and NaN stay
		}
	case uLeakyRelu:
		a := u.a
		for i, v := range s {
			if v < 0 {
				v *= a
			}
			d[i] = v
		}
	case uHardSigmoid:
		a, b := u.a, u.b
		for i, v := range s {
			d[i] = max(0, min(1, float32(a*v)+b))
		}
	case uHardSwish:
		a, b := u.a, u.b
		for i, v := range s {
			d[i] = v * max(0, min(1, float32(a*v)+b))
		}
	case uSoftsign:
		for i, v := range s {
			d[i] = v / (1 + math.Float32frombits(math.Float32bits(v)&^(1<<31)))
		}
	case uClip:
		lo, hi := u.a, u.b
		for i, v := range s {
			d[i] = min(max(v, lo), hi)
		}
	default:
		u.viaF64(d, s)
	}
}

// viaF64 runs the kernels computed in float64: a block of values is
// converted first, then computed, then rounded back. Converting in the
// same loop as the computation would make each element wait for the
// previous one (CVTSS2SD writes half a register, a false dependency on the
// last result) and run two to three times slower.
func (u *unary) viaF64(d, s []float32) {
	var buf [256]float64
	for o := 0; o < len(d); o += len(buf) {
		b := buf[:min(len(buf), len(d)-o)]
		for i, v := range s[o : o+len(b)] {
			b[i] = float64(v)
		}
		switch u.k {
		case uExp:
			for i, v := range b {
				b[i] = exp64(v)
			}
		case uLog:
			for i, v := range b {
				b[i] = math.Log(v)
			}
		case uSqrt:
			for i, v := range b {
				b[i] = math.Sqrt(v)
			}
		case uFloor:
			for i, v := range b {
				b[i] = math.Floor(v)
			}
		case uCeil:
			for i, v := range b {
				b[i] = math.Ceil(v)
			}
		case uErf:
			for i, v := range b {
				b[i] = erf64(v)
			}
		case uSigmoid:
			for i, v := range b {
				b[i] = 1 / (1 + exp64(-v))
			}
		case uTanh:
			for i, v := range b {
				b[i] = tanh64(v)
			}
		case uElu:
			a := float64(u.a)
			for i, v := range b {
				if v < 0 {
					b[i] = a * expm1_64(v)
				}
			}
		case uSelu:
			g, ga := float64(u.b), float64(u.b)*float64(u.a)
			for i, v := range b {
				if v > 0 {
					b[i] = g * v
				} else {
					b[i] = ga * expm1_64(v)
				}
			}
		case uCelu:
			a := float64(u.a)
			for i, v := range b {
				if v < 0 {
					b[i] = a * expm1_64(v/a)
				}
			}
		case uSoftplus:
			for i, v := range b {
				b[i] = softplus64(v)
			}
		case uGelu:
			if u.a == 0 {
				for i, v := range b {
					b[i] = 0.5 * v * (1 + erf64(v*(1/math.Sqrt2)))
				}
				break
			}
			for i, v := range b {
				b[i] = 0.5 * v * (1 + tanh64(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
			}
		}
		dd := d[o : o+len(b)]
		for i, v := range b {
			dd[i] = float32(v)
		}
	}
}

func runUnary(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	if n.op == "Not" {
		return runNot(x, n, t)
	}
	u := unaryOf(n)
	if !t.IsFloat() {
		return x.unaryInts(n, u, t, math.MinInt64, math.MaxInt64)
	}
	out := x.outFloat(n, slices.Clone(t.Shape), in, 0)
	if x.dry {
		return one(out, nil)
	}
	x.unaryFloats(&u, out.Data, t.Data)
	return one(out, nil)
}

func (x *exec) unaryFloats(u *unary, d, s []float32) {
	grain := grainCheap
	if u.costly() {
		grain = grainCostly
	}
	x.split(len(d), grain, func(lo, hi int) { u.apply(d[lo:hi], s[lo:hi]) })
}

// intUnary lists the unary kernels defined on integers (Clip by its
// bounds), with whether unsigned types are allowed.
var intUnary = map[uKind]bool{uAbs: true, uNeg: false, uRelu: false, uSign: true, uClip: true}

// unaryInts runs a unary op on an integer tensor (lo and hi: Clip's
// bounds).
func (x *exec) unaryInts(n *node, u unary, t *tensor.Tensor, lo, hi int64) ([]*tensor.Tensor, error) {
	unsignedOK, ok := intUnary[u.k]
	switch {
	case t.DType == tensor.Bool:
		return nil, x.errf(n, "input %q is bool: %s takes numbers", n.in[0], n.op)
	case !ok && u.k == uErf:
		return nil, x.unsupported(n, "", "input %q is %s: Erf is implemented for float32 only", n.in[0], t.DType)
	case !ok:
		return nil, x.errf(n, "input %q is %s: %s takes floats", n.in[0], t.DType, n.op)
	case isUnsigned(t.DType) && !unsignedOK:
		return nil, x.errf(n, "input %q is %s: %s takes signed types", n.in[0], t.DType, n.op)
	case t.DType == tensor.Uint64 && u.k == uClip:
		return nil, x.unsupported(n, "", "input %q is uint64: Clip of uint64 is not supported", n.in[0])
	}
	out := &tensor.Tensor{Shape: slices.Clone(t.Shape), DType: t.DType}
	if !known(t) {
		return one(out, nil)
	}
	out.Ints = make([]int64, len(t.Ints))
	for i, v := range t.Ints {
		switch u.k {
		case uAbs:
			if v < 0 && t.DType != tensor.Uint64 {
				v = -v
			}
		case uNeg:
			v = -v
		case uRelu:
			v = max(v, 0)
		case uSign:
			switch {
			case t.DType == tensor.Uint64 && v != 0, v > 0:
				v = 1
			case v < 0:
				v = -1
			}
		case uClip:
			v = min(max(v, lo), hi)
		}
		out.Ints[i] = wrapInt(v, t.DType)
	}
	return one(out, nil)
}

func isUnsigned(dt tensor.DType) bool {
	return dt == tensor.Uint8 || dt == tensor.Uint16 || dt == tensor.Uint32 || dt == tensor.Uint64
}

func runNot(x *exec, n *node, t *tensor.Tensor) ([]*tensor.Tensor, error) {
	if t.DType != tensor.Bool {
		return nil, x.errf(n, "input %q is %s: Not takes bool", n.in[0], typeName(t))
	}
	out := &tensor.Tensor{Shape: slices.Clone(t.Shape), DType: tensor.Bool}
	if known(t) {
		out.Ints = make([]int64, len(t.Ints))
		for i, v := range t.Ints {
			out.Ints[i] = b2i(v == 0)
		}
	}
	return one(out, nil)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// ---- Clip ----

func checkClip(c *compiler, n *node) error {
	if n.opset < 11 && len(n.in) > 1 {
		return c.errf(n, "opset %d Clip takes one input (min and max are attributes until opset 10), has %d", n.opset, len(n.in))
	}
	return nil
}

// clipBounds are Clip's float bounds: the attributes before opset 11
// (absent: none before opset 6, ±FLT_MAX from 6 as the spec's defaults),
// the optional scalar inputs from 11. ok is false when an input bound is
// not known yet (the dry pass).
func (x *exec) clipBounds(n *node, in []*tensor.Tensor) (lo, hi float32, ok bool, err error) {
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if n.opset < 11 {
		if n.opset >= 6 {
			lo, hi = -math.MaxFloat32, math.MaxFloat32
		}
		return attrFloat(n, "min", lo), attrFloat(n, "max", hi), true, nil
	}
	ok = true
	for i, p := range []*float32{&lo, &hi} {
		if i+1 >= len(in) || in[i+1] == nil {
			continue
		}
		b := in[i+1]
		if !b.IsFloat() {
			return 0, 0, false, x.errf(n, "bound %q is %s, the input is float32", n.in[i+1], typeName(b))
		}
		f, known, err := x.scalar(n, b, "bound "+n.in[i+1])
		if err != nil {
			return 0, 0, false, err
		}
		if !known {
			ok = false
			continue
		}
		*p = float32(f)
	}
	return lo, hi, ok, nil
}

func runClip(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	if !t.IsFloat() {
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		for i, p := range []*int64{&lo, &hi} {
			if i+1 >= len(in) || in[i+1] == nil {
				continue
			}
			b := in[i+1]
			if !sameType(b, t) {
				return nil, x.errf(n, "bound %q is %s, the input is %s", n.in[i+1], typeName(b), typeName(t))
			}
			if numel(b.Shape) != 1 {
				return nil, x.errf(n, "bound %q must hold one value, has shape %v", n.in[i+1], b.Shape)
			}
			if !known(b) {
				return one(&tensor.Tensor{Shape: slices.Clone(t.Shape), DType: t.DType}, nil)
			}
			*p = b.Ints[0]
		}
		return x.unaryInts(n, unary{k: uClip}, t, lo, hi)
	}
	lo, hi, ok, err := x.clipBounds(n, in)
	if err != nil {
		return nil, err
	}
	out := x.outFloat(n, slices.Clone(t.Shape), in, 0)
	if x.dry || !ok {
		return one(out, nil)
	}
	x.unaryFloats(&unary{k: uClip, a: lo, b: hi}, out.Data, t.Data)
	return one(out, nil)
}

// ---- broadcasting ----

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
// and b from ib with steps sa and sb (each 0 or 1).
func broadcastRuns(out, as, bs []int, f func(o, ia, ib, sa, sb, n int)) {
	p := newBcast(out, as, bs)
	sa, sb := p.step(0), p.step(1)
	p.runs(0, p.total, func(o, n int, off []int) { f(o, off[0], off[1], sa, sb, n) })
}

// mergeable: an outer axis of stride outer followed by an inner axis of
// size d and stride inner read as one axis.
func mergeable(outer, inner, d int) bool {
	return outer == inner*d
}

// bcast walks an output shape for operands broadcast to it: the output's
// axes of size 1 dropped and neighbouring axes merged wherever every
// operand reads them as one, so that the innermost axis is a run along
// which each operand either advances by one or stays put.
type bcast struct {
	dims  []int   // merged axes, outermost first
	st    [][]int // st[k][axis]: operand k's stride (0: broadcast)
	total int
}

func newBcast(out []int, shapes ...[]int) *bcast {
	p := &bcast{total: numel(out), st: make([][]int, len(shapes))}
	full := make([][]int, len(shapes))
	for k, s := range shapes {
		full[k] = bstrides(s, out)
	}
	for i, d := range out {
		if d == 1 {
			continue
		}
		a := len(p.dims) - 1
		merge := a >= 0
		for k := range shapes {
			if merge && !mergeable(p.st[k][a], full[k][i], d) {
				merge = false
			}
		}
		if merge {
			p.dims[a] *= d
			for k := range shapes {
				p.st[k][a] = full[k][i]
			}
			continue
		}
		p.dims = append(p.dims, d)
		for k := range shapes {
			p.st[k] = append(p.st[k], full[k][i])
		}
	}
	if len(p.dims) == 0 && p.total > 0 { // one value
		p.dims = []int{1}
		for k := range shapes {
			p.st[k] = []int{0}
		}
	}
	return p
}

// step is operand k's step along a run: 1, or 0 when it is broadcast.
func (p *bcast) step(k int) int {
	if len(p.dims) == 0 {
		return 0
	}
	return p.st[k][len(p.dims)-1]
}

// runs calls f for each run of outputs within [lo, hi): outputs o..o+n-1,
// operand k read from off[k] on (stepping by step(k)).
func (p *bcast) runs(lo, hi int, f func(o, n int, off []int)) {
	if lo >= hi {
		return
	}
	nd, nk := len(p.dims), len(p.st)
	last := nd - 1
	idx := make([]int, nd)
	off := make([]int, nk)
	r := lo
	for d := last; d >= 0; d-- {
		idx[d] = r % p.dims[d]
		r /= p.dims[d]
		for k := range nk {
			off[k] += idx[d] * p.st[k][d]
		}
	}
	run := p.dims[last]
	for o := lo; o < hi; {
		m := min(run-idx[last], hi-o)
		f(o, m, off)
		o += m
		if o >= hi {
			return
		}
		// Next run: carry into the outer axes.
		for k := range nk {
			off[k] -= idx[last] * p.st[k][last]
		}
		idx[last] = 0
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			for k := range nk {
				off[k] += p.st[k][d]
			}
			if idx[d] < p.dims[d] {
				break
			}
			for k := range nk {
				off[k] -= p.dims[d] * p.st[k][d]
			}
			idx[d] = 0
		}
	}
}

// binaryShape is the output shape of a binary op and the shape b is read
// with: NumPy's broadcasting from opset 7, the legacy attributes before
// (broadcast=0: same shapes; broadcast=1: b's shape matches a's from axis,
// by default its trailing axes, and is stretched over the others).
func (x *exec) binaryShape(n *node, a, b *tensor.Tensor) (out, bs []int, err error) {
	if n.opset >= 1 && n.opset < 7 {
		if attrInt(n, "broadcast", 0) == 0 {
			if !slices.Equal(a.Shape, b.Shape) {
				return nil, nil, x.errf(n, "shapes %v (%q) and %v (%q) differ and broadcast is not set (opset %d)", a.Shape, n.in[0], b.Shape, n.in[1], n.opset)
			}
			return slices.Clone(a.Shape), b.Shape, nil
		}
		ra, rb := len(a.Shape), len(b.Shape)
		axis := attrInt(n, "axis", int64(ra-rb))
		if axis < 0 {
			axis += int64(ra)
		}
		if rb > ra || axis < 0 || axis+int64(rb) > int64(ra) {
			return nil, nil, x.errf(n, "broadcast: %q of shape %v does not fit %v from axis %d", n.in[1], b.Shape, a.Shape, attrInt(n, "axis", int64(ra-rb)))
		}
		bs = make([]int, ra)
		for i := range bs {
			bs[i] = 1
		}
		copy(bs[axis:], b.Shape)
		if s, ok := broadcastShape(a.Shape, bs); !ok || !slices.Equal(s, a.Shape) {
			return nil, nil, x.errf(n, "broadcast: %q of shape %v does not fit %v from axis %d", n.in[1], b.Shape, a.Shape, axis)
		}
		return slices.Clone(a.Shape), bs, nil
	}
	out, ok := broadcastShape(a.Shape, b.Shape)
	if !ok {
		return nil, nil, x.errf(n, "shapes %v (%q) and %v (%q) do not broadcast", a.Shape, n.in[0], b.Shape, n.in[1])
	}
	return out, b.Shape, nil
}

// ---- binary arithmetic ----

// bKind names a binary kernel.
type bKind uint8

const (
	bAdd bKind = iota
	bSub
	bMul
	bDiv
	bMax
	bMin
	bPRelu // a·b where a < 0, else a
	bPow
)

var binaryKinds = map[string]bKind{"Add": bAdd, "Sub": bSub, "Mul": bMul, "Div": bDiv, "Max": bMax, "Min": bMin, "PRelu": bPRelu, "Pow": bPow}

func runArith(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b := in[0], in[1]
	if !sameType(a, b) {
		return nil, x.errf(n, "inputs %q (%s) and %q (%s) have different element types", n.in[0], typeName(a), n.in[1], typeName(b))
	}
	if a.DType == tensor.Bool {
		return nil, x.errf(n, "inputs are bool: %s takes numbers", n.op)
	}
	k := binaryKinds[n.op]
	if k == bDiv && a.DType == tensor.Uint64 {
		return nil, x.unsupported(n, "", "inputs are uint64: Div of uint64 is not supported")
	}
	shape, bs, err := x.binaryShape(n, a, b)
	if err != nil {
		return nil, err
	}
	return x.binary(n, k, in, shape, bs, 0, 1)
}

// binary computes a two-input arithmetic op (a and b of one type) into a
// new output of the given shape, b read with shape bs. The output may take
// over either input's buffer (reuse lists which).
func (x *exec) binary(n *node, k bKind, in []*tensor.Tensor, shape, bs []int, reuse ...int) ([]*tensor.Tensor, error) {
	a, b := in[0], in[1]
	if a.IsFloat() {
		out := x.outFloat(n, shape, in, reuse...)
		if x.dry {
			return one(out, nil)
		}
		x.binaryFloats(k, out.Data, a.Data, b.Data, shape, a.Shape, bs)
		return one(out, nil)
	}
	out := &tensor.Tensor{Shape: shape, DType: a.DType}
	if !known(a) || !known(b) {
		return one(out, nil)
	}
	if k == bDiv && slices.Contains(b.Ints, 0) {
		return nil, x.errf(n, "integer division by zero")
	}
	out.Ints = make([]int64, numel(shape))
	p := newBcast(shape, a.Shape, bs)
	sa, sb := p.step(0), p.step(1)
	p.runs(0, p.total, func(o, m int, off []int) {
		arith2(k, out.Ints[o:o+m], a.Ints[off[0]:], b.Ints[off[1]:], sa, sb)
	})
	if a.DType != tensor.Int64 {
		for i, v := range out.Ints {
			out.Ints[i] = wrapInt(v, a.DType)
		}
	}
	return one(out, nil)
}

// binaryFloats computes d = a op b, a read with shape as and b with bs
// broadcast to shape, on threads for large outputs.
func (x *exec) binaryFloats(k bKind, d, a, b []float32, shape, as, bs []int) {
	grain := grainCheap
	if k == bPow {
		grain = grainCostly
	}
	if slices.Equal(as, shape) && slices.Equal(bs, shape) {
		x.split(len(d), grain, func(lo, hi int) { arithF(k, d[lo:hi], a[lo:], b[lo:], 1, 1) })
		return
	}
	p := newBcast(shape, as, bs)
	sa, sb := p.step(0), p.step(1)
	x.split(p.total, grain, func(lo, hi int) {
		p.runs(lo, hi, func(o, m int, off []int) { arithF(k, d[o:o+m], a[off[0]:], b[off[1]:], sa, sb) })
	})
}

// arithF is arith2 for floats, with Pow.
func arithF(k bKind, d, a, b []float32, sa, sb int) {
	if k == bPow {
		powF(d, a, b, sa, sb)
		return
	}
	arith2(k, d, a, b, sa, sb)
}

// arith2 computes d[i] = a[i·sa] op b[i·sb] for i < len(d), with sa and sb
// 0 or 1 (not Pow). d may be a or b.
func arith2[E float32 | int64](k bKind, d, a, b []E, sa, sb int) {
	n := len(d)
	switch {
	case sa == 0 && sb == 0:
		var v [1]E
		arith2(k, v[:], a, b, 1, 1)
		for i := range d {
			d[i] = v[0]
		}
	case sa == 1 && sb == 1:
		a, b := a[:n], b[:n]
		switch k {
		case bAdd:
			for i := range d {
				d[i] = a[i] + b[i]
			}
		case bSub:
			for i := range d {
				d[i] = a[i] - b[i]
			}
		case bMul:
			for i := range d {
				d[i] = a[i] * b[i]
			}
		case bDiv:
			for i := range d {
				d[i] = a[i] / b[i]
			}
		case bMax:
			for i := range d {
				d[i] = max(a[i], b[i])
			}
		case bMin:
			for i := range d {
				d[i] = min(a[i], b[i])
			}
		case bPRelu:
			for i := range d {
				v := a[i]
				if v < 0 {
					v *= b[i]
				}
				d[i] = v
			}
		}
	case sb == 0: // b is one value
		a, s := a[:n], b[0]
		switch k {
		case bAdd:
			for i := range d {
				d[i] = a[i] + s
			}
		case bSub:
			for i := range d {
				d[i] = a[i] - s
			}
		case bMul:
			for i := range d {
				d[i] = a[i] * s
			}
		case bDiv:
			for i := range d {
				d[i] = a[i] / s
			}
		case bMax:
			for i := range d {
				d[i] = max(a[i], s)
			}
		case bMin:
			for i := range d {
				d[i] = min(a[i], s)
			}
		case bPRelu:
			for i := range d {
				v := a[i]
				if v < 0 {
					v *= s
				}
				d[i] = v
			}
		}
	default: // a is one value
		s, b := a[0], b[:n]
		switch k {
		case bAdd:
			for i := range d {
				d[i] = s + b[i]
			}
		case bSub:
			for i := range d {
				d[i] = s - b[i]
			}
		case bMul:
			for i := range d {
				d[i] = s * b[i]
			}
		case bDiv:
			for i := range d {
				d[i] = s / b[i]
			}
		case bMax:
			for i := range d {
				d[i] = max(s, b[i])
			}
		case bMin:
			for i := range d {
				d[i] = min(s, b[i])
			}
		case bPRelu:
			v := s
			if v < 0 {
				for i := range d {
					d[i] = v * b[i]
				}
			} else {
				for i := range d {
					d[i] = v
				}
			}
		}
	}
}

// powF computes d[i] = a[i·sa]^b[i·sb] in float64 (NumPy's float32 pow is
// correctly rounded in practice; so is this), with the squares and square
// roots of an exponent that is one value done directly.
func powF(d, a, b []float32, sa, sb int) {
	n := len(d)
	if sb == 0 {
		e := b[0]
		switch {
		case sa == 0:
		case e == 1:
			copy(d, a[:n])
			return
		case e == 2:
			for i, v := range a[:n] {
				d[i] = v * v
			}
			return
		case e == 0.5:
			for i, v := range a[:n] {
				switch {
				case v == 0:
					d[i] = 0 // pow(-0, 0.5) is +0
				case math.IsInf(float64(v), -1):
					d[i] = float32(math.Inf(1))
				default:
					d[i] = float32(math.Sqrt(float64(v)))
				}
			}
			return
		}
	}
	for i := range d {
		d[i] = float32(math.Pow(float64(a[i*sa]), float64(b[i*sb])))
	}
}

// runPow: the base and the exponent may have different types (from opset
// 12); the result has the base's. As the reference (NumPy's promotion, then
// a cast to the base's type), a float base with an integer exponent is
// computed in float64, an integer base with a float exponent too and
// truncated, two integers exactly with wrap-around.
func runPow(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b := in[0], in[1]
	for i, t := range in {
		if t.DType == tensor.Bool {
			return nil, x.errf(n, "input %q is bool: Pow takes numbers", n.in[i])
		}
		if t.DType == tensor.Uint64 {
			return nil, x.unsupported(n, "", "input %q is uint64: Pow of uint64 is not supported", n.in[i])
		}
	}
	shape, bs, err := x.binaryShape(n, a, b)
	if err != nil {
		return nil, err
	}
	if a.IsFloat() && b.IsFloat() {
		return x.binary(n, bPow, in, shape, bs, 0, 1)
	}
	out := &tensor.Tensor{Shape: shape, DType: a.DType}
	if a.IsFloat() {
		out = x.outFloat(n, shape, in, 0)
		if x.dry {
			return one(out, nil)
		}
	}
	if !x.has(a, b) {
		return one(out, nil)
	}
	if !a.IsFloat() {
		out.Ints = make([]int64, numel(shape))
	}
	p := newBcast(shape, a.Shape, bs)
	sa, sb := p.step(0), p.step(1)
	var failed error
	p.runs(0, p.total, func(o, m int, off []int) {
		for i := 0; i < m; i++ {
			ia, ib := off[0]+i*sa, off[1]+i*sb
			switch {
			case a.IsFloat(): // float ^ integer
				out.Data[o+i] = float32(math.Pow(float64(a.Data[ia]), float64(b.Ints[ib])))
			case b.IsFloat(): // integer ^ float
				out.Ints[o+i] = wrapInt(int64(math.Pow(float64(a.Ints[ia]), float64(b.Data[ib]))), a.DType)
			default:
				v, ok := powInt(a.Ints[ia], b.Ints[ib])
				if !ok && failed == nil {
					failed = x.errf(n, "integer 0 to the negative power %d", b.Ints[ib])
				}
				out.Ints[o+i] = wrapInt(v, a.DType)
			}
		}
	})
	if failed != nil {
		return nil, failed
	}
	return one(out, nil)
}

// powInt is base^e with int64 wrap-around; a negative exponent gives the
// truncated quotient (0 unless |base| is 1), and is refused for base 0.
func powInt(base, e int64) (int64, bool) {
	if e < 0 {
		switch base {
		case 0:
			return 0, false
		case 1:
			return 1, true
		case -1:
			if e%2 == 0 {
				return 1, true
			}
			return -1, true
		}
		return 0, true
	}
	r := int64(1)
	for e > 0 {
		if e&1 != 0 {
			r *= base
		}
		base *= base
		e >>= 1
	}
	return r, true
}

// runPRelu: y = x where x >= 0, slope·x elsewhere, the slope broadcast to
// x's shape (never the other way).
func runPRelu(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, s := in[0], in[1]
	if !sameType(a, s) {
		return nil, x.errf(n, "input %q (%s) and slope %q (%s) have different element types", n.in[0], typeName(a), n.in[1], typeName(s))
	}
	if a.DType == tensor.Bool || isUnsigned(a.DType) && a.DType != tensor.Uint32 && a.DType != tensor.Uint64 {
		return nil, x.errf(n, "input %q is %s: PRelu takes float32, int32, int64, uint32 or uint64", n.in[0], typeName(a))
	}
	if shape, ok := broadcastShape(a.Shape, s.Shape); !ok || !slices.Equal(shape, a.Shape) {
		return nil, x.errf(n, "slope %q of shape %v does not broadcast to the input's shape %v", n.in[1], s.Shape, a.Shape)
	}
	return x.binary(n, bPRelu, in, slices.Clone(a.Shape), s.Shape, 0, 1)
}

// ---- Min, Max, Sum, Mean ----

func runVariadic(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a := in[0]
	shape := a.Shape
	for i, t := range in {
		if t == nil {
			return nil, x.errf(n, "input #%d is empty: %s takes no optional inputs", i, n.op)
		}
		if !sameType(t, a) {
			return nil, x.errf(n, "inputs %q (%s) and %q (%s) have different element types", n.in[0], typeName(a), n.in[i], typeName(t))
		}
		s, ok := broadcastShape(shape, t.Shape)
		if !ok {
			return nil, x.errf(n, "input %q of shape %v does not broadcast with %v", n.in[i], t.Shape, shape)
		}
		shape = s
	}
	k := binaryKinds[n.op]
	switch {
	case a.DType == tensor.Bool:
		return nil, x.errf(n, "inputs are bool: %s takes numbers", n.op)
	case !a.IsFloat() && (n.op == "Sum" || n.op == "Mean"):
		return nil, x.errf(n, "inputs are %s: %s takes floats", a.DType, n.op)
	case a.DType == tensor.Uint64:
		return nil, x.unsupported(n, "", "inputs are uint64: %s of uint64 is not supported", n.op)
	case n.op == "Sum" || n.op == "Mean":
		k = bAdd
	}
	if len(in) == 1 {
		return one(view(a, slices.Clone(shape)), nil)
	}
	// The first pair into the output (which may take over either one's
	// buffer unless a later input is the same value), then each further
	// input into it.
	var reuse []int
	for i := range 2 {
		if !slices.Contains(n.in[2:], n.in[i]) {
			reuse = append(reuse, i)
		}
	}
	outs, err := x.binary(n, k, in[:2], shape, in[1].Shape, reuse...)
	if err != nil {
		return nil, err
	}
	out := outs[0]
	if !x.has(out) {
		for _, t := range in[2:] {
			if !x.has(t) && !t.IsFloat() {
				out.Ints = nil
			}
		}
		return one(out, nil)
	}
	for _, t := range in[2:] {
		if !x.has(t) {
			out.Ints = nil
			return one(out, nil)
		}
		if out.IsFloat() {
			x.binaryFloats(k, out.Data, out.Data, t.Data, shape, shape, t.Shape)
			continue
		}
		p := newBcast(shape, shape, t.Shape)
		st := p.step(1)
		p.runs(0, p.total, func(o, m int, off []int) { arith2(k, out.Ints[o:o+m], out.Ints[o:o+m], t.Ints[off[1]:], 1, st) })
	}
	if n.op == "Mean" {
		c := float32(len(in))
		x.split(len(out.Data), grainCheap, func(lo, hi int) {
			d := out.Data[lo:hi]
			for i, v := range d {
				d[i] = v / c
			}
		})
	}
	return one(out, nil)
}

// ---- comparisons and logic ----

type cKind uint8

const (
	cEq cKind = iota
	cLt
	cGt
	cLe
	cGe
	cAnd
	cOr
	cXor
)

var compareKinds = map[string]cKind{"Equal": cEq, "Less": cLt, "Greater": cGt, "LessOrEqual": cLe, "GreaterOrEqual": cGe, "And": cAnd, "Or": cOr, "Xor": cXor}

func runCompare(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b := in[0], in[1]
	if !sameType(a, b) {
		return nil, x.errf(n, "inputs %q (%s) and %q (%s) have different element types", n.in[0], typeName(a), n.in[1], typeName(b))
	}
	k := compareKinds[n.op]
	if a.DType == tensor.Bool && k != cEq {
		return nil, x.errf(n, "inputs are bool: %s takes numbers", n.op)
	}
	if a.DType == tensor.Uint64 && k != cEq {
		return nil, x.unsupported(n, "", "inputs are uint64: %s of uint64 is not supported", n.op)
	}
	return x.boolBinary(n, k, a, b)
}

func runLogic(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	for i, t := range in {
		if t.DType != tensor.Bool {
			return nil, x.errf(n, "input %q is %s: %s takes bool", n.in[i], typeName(t), n.op)
		}
	}
	return x.boolBinary(n, compareKinds[n.op], in[0], in[1])
}

// boolBinary computes a comparison or logic op into a bool tensor.
func (x *exec) boolBinary(n *node, k cKind, a, b *tensor.Tensor) ([]*tensor.Tensor, error) {
	shape, bs, err := x.binaryShape(n, a, b)
	if err != nil {
		return nil, err
	}
	out := &tensor.Tensor{Shape: shape, DType: tensor.Bool}
	if !x.has(a, b) {
		return one(out, nil)
	}
	out.Ints = make([]int64, numel(shape))
	p := newBcast(shape, a.Shape, bs)
	sa, sb := p.step(0), p.step(1)
	p.runs(0, p.total, func(o, m int, off []int) {
		d := out.Ints[o : o+m]
		if a.IsFloat() {
			compare2(k, d, a.Data[off[0]:], b.Data[off[1]:], sa, sb)
		} else {
			compare2(k, d, a.Ints[off[0]:], b.Ints[off[1]:], sa, sb)
		}
	})
	return one(out, nil)
}

// compare2 computes d[i] = a[i·sa] op b[i·sb] as 0 or 1. NaN compares
// false (unequal) to everything.
func compare2[E float32 | int64](k cKind, d []int64, a, b []E, sa, sb int) {
	for i := range d {
		u, v := a[i*sa], b[i*sb]
		var r bool
		switch k {
		case cEq:
			r = u == v
		case cLt:
			r = u < v
		case cGt:
			r = u > v
		case cLe:
			r = u <= v
		case cGe:
			r = u >= v
		case cAnd:
			r = u != 0 && v != 0
		case cOr:
			r = u != 0 || v != 0
		case cXor:
			r = (u != 0) != (v != 0)
		}
		d[i] = b2i(r)
	}
}

// ---- Where ----

func runWhere(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	c, a, b := in[0], in[1], in[2]
	if c.DType != tensor.Bool {
		return nil, x.errf(n, "condition %q is %s, want bool", n.in[0], typeName(c))
	}
	if !sameType(a, b) {
		return nil, x.errf(n, "inputs %q (%s) and %q (%s) have different element types", n.in[1], typeName(a), n.in[2], typeName(b))
	}
	shape, ok := broadcastShape(c.Shape, a.Shape)
	if ok {
		shape, ok = broadcastShape(shape, b.Shape)
	}
	if !ok {
		return nil, x.errf(n, "shapes %v (%q), %v (%q) and %v (%q) do not broadcast", c.Shape, n.in[0], a.Shape, n.in[1], b.Shape, n.in[2])
	}
	var out *tensor.Tensor
	if a.IsFloat() {
		out = x.outFloat(n, shape, in, 1, 2)
	} else {
		out = &tensor.Tensor{Shape: shape, DType: a.DType}
	}
	if !x.has(c, a, b) {
		return one(out, nil)
	}
	if !a.IsFloat() {
		out.Ints = make([]int64, numel(shape))
	}
	p := newBcast(shape, c.Shape, a.Shape, b.Shape)
	sc, sa, sb := p.step(0), p.step(1), p.step(2)
	p.runs(0, p.total, func(o, m int, off []int) {
		cs := c.Ints[off[0]:]
		if a.IsFloat() {
			where2(out.Data[o:o+m], cs, a.Data[off[1]:], b.Data[off[2]:], sc, sa, sb)
		} else {
			where2(out.Ints[o:o+m], cs, a.Ints[off[1]:], b.Ints[off[2]:], sc, sa, sb)
		}
	})
	return one(out, nil)
}

func where2[E float32 | int64](d []E, c []int64, a, b []E, sc, sa, sb int) {
	for i := range d {
		if c[i*sc] != 0 {
			d[i] = a[i*sa]
		} else {
			d[i] = b[i*sb]
		}
	}
}
