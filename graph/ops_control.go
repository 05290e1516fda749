package graph

import (
	"math"
	"slices"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// Control flow: ops whose attributes are graphs (compiled with the node,
// in n.sub) run by the same runner in a scope whose parent is the node's,
// so bodies read outer values by name.

func init() {
	register(
		&opDef{name: "Scan", since: v(8, 9, 11, 16, 19, 21), in: io(1, many), out: io(1, many), optIn: true,
			attrs: []attrSpec{aGraph("body"), aInt("num_scan_inputs"), aInts("directions").upTo(8),
				aInts("scan_input_axes").sinceV(9), aInts("scan_input_directions").sinceV(9), aInts("scan_output_axes").sinceV(9), aInts("scan_output_directions").sinceV(9)},
			check: checkScan, run: runScan},
		&opDef{name: "Loop", since: v(1, 11, 13, 16, 19, 21), in: io(2, many), out: io(1, many), optIn: true, seqIn: true,
			attrs: []attrSpec{aGraph("body")}, check: checkLoop, run: runLoop},
		&opDef{name: "If", since: v(1, 11, 13, 16, 19, 21), in: io(1, 1), out: io(1, many),
			attrs: []attrSpec{aGraph("then_branch"), aGraph("else_branch")}, check: checkIf, run: runIf},
	)
}

// maxIterations bounds a Loop (a variable so that the fuzz test can lower
// it): a loop with no trip count whose condition never turns false would
// otherwise run forever.
var maxIterations int64 = 1 << 31

// dryIterations is how many iterations of a Loop the dry pass follows;
// beyond, it stops there and the run checks the rest.
const dryIterations = 1 << 12

// bind puts a value into a body's scope as one of its inputs, under a
// header of its own: the body may drop its input when done with it, but
// the value itself lives on outside (a state, an earlier step's output).
func bind(s *scope, name string, t *tensor.Tensor) {
	s.vals[name] = view(t, t.Shape)
}

func checkScan(c *compiler, n *node) error {
	if n.attrs["body"] == nil {
		return c.errAttr(n, "body", "missing graph attribute body")
	}
	if !hasAttr(n, "num_scan_inputs") {
		return c.errAttr(n, "num_scan_inputs", "missing attribute num_scan_inputs")
	}
	for i, in := range n.in {
		if in == "" && (n.opset >= 9 || i > 0) {
			return c.errf(n, "input #%d is empty (only Scan-8's sequence_lens may be)", i)
		}
	}
	for _, name := range []string{"directions", "scan_input_directions", "scan_output_directions"} {
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
	if n.opset < 9 {
		return runScan8(x, n, in)
	}
	body := n.sub["body"]
	m, ns, k, err := x.scanCounts(n, body, len(in))
	if err != nil {
		return nil, err
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
	for i := 0; i < m; i++ {
		t := in[ns+i]
		ax, ok := normAxis(inAxesAttr[i], len(t.Shape))
		if !ok {
			return nil, x.errf(n, "scan_input_axes %v: axis %d is out of range for input %q %v", inAxesAttr, inAxesAttr[i], n.in[ns+i], t.Shape)
		}
		inAxes[i] = ax
	}
	states, perStep, steps, err := x.scanSteps(n, body, in[:ns], in[ns:], inAxes, inDirs)
	if err != nil {
		return nil, err
	}
	outs := states
	for j := 0; j < k; j++ {
		parts := perStep[j]
		if outDirs[j] == 1 {
			slices.Reverse(parts)
		}
		o, err := x.stack(n, parts, outAxes[j], steps)
		if err != nil {
			return nil, err
		}
		x.releaseAll(parts)
		outs = append(outs, o)
	}
	x.deferred = append(x.deferred, states...)
	return outs, nil
}

// scanCounts checks a Scan's inputs against its body: M scan inputs, N
// states and K scan outputs.
func (x *exec) scanCounts(n *node, body *program, inputs int) (m, ns, k int, err error) {
	m = int(attrInt(n, "num_scan_inputs", -1))
	if m < 1 || m > inputs {
		return 0, 0, 0, x.errf(n, "num_scan_inputs %d: want 1 to %d", m, inputs)
	}
	ns = inputs - m
	if len(body.inputs) != inputs {
		return 0, 0, 0, x.errf(n, "body takes %d inputs, the node passes %d", len(body.inputs), inputs)
	}
	k = len(body.outputs) - ns
	if k < 0 || len(n.out) != len(body.outputs) {
		return 0, 0, 0, x.errf(n, "body has %d outputs, the node %d (with %d states)", len(body.outputs), len(n.out), ns)
	}
	return m, ns, k, nil
}

// scanSteps runs body over the scan inputs (sliced along inAxes, reversed
// where inDirs is 1) from the initial states: the final states, each scan
// output's per-step values (one step in the dry pass), and the step count.
func (x *exec) scanSteps(n *node, body *program, init, scans []*tensor.Tensor, inAxes []int, inDirs []int64) (states []*tensor.Tensor, perStep [][]*tensor.Tensor, steps int, err error) {
	ns, m := len(init), len(scans)
	steps = -1
	for i, t := range scans {
		if len(t.Shape) == 0 {
			return nil, nil, 0, x.errf(n, "scan input %q must have rank ≥ 1", n.in[len(n.in)-m+i])
		}
		if s := t.Shape[inAxes[i]]; steps >= 0 && s != steps {
			return nil, nil, 0, x.errf(n, "scan inputs have %d and %d steps", steps, s)
		} else {
			steps = s
		}
	}
	if steps == 0 {
		return nil, nil, 0, x.unsupported(n, "", "zero-length scans are not supported (output shapes unknown)")
	}
	states = slices.Clone(init)
	iters := steps
	if x.dry {
		iters = 1 // shapes only: one pass through the body gives them
	}
	k := len(body.outputs) - ns
	perStep = make([][]*tensor.Tensor, k)
	parent := x.s
	for t := 0; t < iters; t++ {
		bs := &scope{vals: map[string]*tensor.Tensor{}, parent: parent}
		for i := 0; i < ns; i++ {
			bind(bs, body.inputs[i], states[i])
		}
		for i := 0; i < m; i++ {
			step := t
			if inDirs[i] == 1 {
				step = steps - 1 - t
			}
			bs.vals[body.inputs[ns+i]] = x.index(scans[i], inAxes[i], step)
		}
		res, err := x.run(body, bs)
		if err != nil {
			return nil, nil, 0, err
		}
		for i := 0; i < ns; i++ {
			if !slices.Equal(res[i].Shape, states[i].Shape) || !sameType(res[i], states[i]) {
				return nil, nil, 0, x.errf(n, "body changes state %q from %s %v to %s %v", body.inputs[i], typeName(states[i]), states[i].Shape, typeName(res[i]), res[i].Shape)
			}
		}
		for j := 0; j < k; j++ {
			r := res[ns+j]
			if t > 0 && (!slices.Equal(r.Shape, perStep[j][0].Shape) || !sameType(r, perStep[j][0])) {
				return nil, nil, 0, x.errf(n, "scan output %q changes shape or type between steps", body.outputs[ns+j])
			}
		}
		// Held here: the states for the next step, the step's outputs
		// until they are stacked; the rest of the step's buffers go back.
		for _, r := range res {
			x.hold(r)
		}
		x.releaseScope(body, bs)
		if t > 0 {
			for _, st := range states {
				x.release(st)
			}
		}
		copy(states, res[:ns])
		for j := 0; j < k; j++ {
			perStep[j] = append(perStep[j], res[ns+j])
		}
	}
	if iters == 0 {
		// The initial states, not held by the scan: hold them like the
		// steps' so that the callers release them alike.
		for _, st := range states {
			x.hold(st)
		}
	}
	return states, perStep, steps, nil
}

// releaseAll undoes one hold of each tensor.
func (x *exec) releaseAll(ts []*tensor.Tensor) {
	for _, t := range ts {
		x.release(t)
	}
}

// runScan8 runs the opset-8 Scan: an optional sequence_lens input, then
// states and scan inputs that all have a batch axis 0 (the scan axis is
// 1); each batch entry is scanned on its own.
func runScan8(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	body := n.sub["body"]
	m, ns, k, err := x.scanCounts(n, body, len(in)-1)
	if err != nil {
		return nil, err
	}
	vals := in[1:]
	dirs, ok := attrInts(n, "directions")
	if !ok {
		dirs = make([]int64, m)
	}
	if len(dirs) != m {
		return nil, x.errf(n, "directions %v: want %d values", dirs, m)
	}
	batch := -1
	for i, t := range vals {
		if len(t.Shape) < 1 || (i >= ns && len(t.Shape) < 2) {
			return nil, x.errf(n, "input %q has shape %v: want a batch axis (and a scan axis for scan inputs)", n.in[1+i], t.Shape)
		}
		if batch >= 0 && t.Shape[0] != batch {
			return nil, x.errf(n, "inputs have batch sizes %d and %d", batch, t.Shape[0])
		}
		batch = t.Shape[0]
	}
	if in[0] != nil {
		lens, err := x.ints(n, in[0], "sequence_lens")
		if err != nil {
			return nil, err
		}
		for _, l := range lens {
			if l != int64(vals[ns].Shape[1]) {
				return nil, x.unsupported(n, "", "sequence_lens %v: sequences shorter than the scan axis are not supported", lens)
			}
		}
	}
	axes := make([]int, m) // axis 1 of the input is axis 0 of a batch entry
	perBatch := make([][]*tensor.Tensor, ns+k)
	entries := batch
	if x.dry {
		entries = min(batch, 1)
	}
	for b := 0; b < entries; b++ {
		init := make([]*tensor.Tensor, ns)
		for i := range init {
			init[i] = x.index(vals[i], 0, b)
		}
		scans := make([]*tensor.Tensor, m)
		for i := range scans {
			scans[i] = x.index(vals[ns+i], 0, b)
		}
		states, perStep, steps, err := x.scanSteps(n, body, init, scans, axes, dirs)
		if err != nil {
			return nil, err
		}
		for i, s := range states {
			perBatch[i] = append(perBatch[i], s)
		}
		for j := 0; j < k; j++ {
			o, err := x.stack(n, perStep[j], 0, steps)
			if err != nil {
				return nil, err
			}
			x.releaseAll(perStep[j])
			x.hold(o)
			perBatch[ns+j] = append(perBatch[ns+j], o)
		}
	}
	outs := make([]*tensor.Tensor, ns+k)
	for i, parts := range perBatch {
		if len(parts) == 0 {
			return nil, x.unsupported(n, "", "an empty batch is not supported (output shapes unknown)")
		}
		o, err := x.stack(n, parts, 0, batch)
		if err != nil {
			return nil, err
		}
		x.releaseAll(parts)
		outs[i] = o
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

func checkLoop(c *compiler, n *node) error {
	if n.attrs["body"] == nil {
		return c.errAttr(n, "body", "missing graph attribute body")
	}
	return nil
}

// runLoop runs a Loop node: inputs M (trip count, optional), cond
// (optional) and N loop-carried values; the body maps (iteration, cond,
// carried) to (cond, carried, K scan outputs). The node's outputs are the
// final carried values and the scan outputs stacked along a new axis 0.
func runLoop(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	body := n.sub["body"]
	nc := len(in) - 2
	if len(body.inputs) != 2+nc {
		return nil, x.errf(n, "body takes %d inputs, want 2 + %d loop-carried values", len(body.inputs), nc)
	}
	k := len(body.outputs) - 1 - nc
	if k < 0 || len(n.out) != nc+k {
		return nil, x.errf(n, "body has %d outputs and the node %d, with %d loop-carried values: want 1 + N + K and N + K", len(body.outputs), len(n.out), nc)
	}
	trip := int64(math.MaxInt64)
	if in[0] != nil {
		if in[0].IsFloat() || in[0].DType == tensor.Bool {
			return nil, x.errf(n, "trip count %q must be an integer, is %s", n.in[0], typeName(in[0]))
		}
		v, ok, err := x.scalar(n, in[0], "trip count M")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errUnknown
		}
		trip = int64(v)
		if in[0].Ints != nil {
			trip = in[0].Ints[0] // exactly (the float64 above rounds)
		}
	}
	cond := true
	if in[1] != nil {
		c, err := x.cond(n, in[1], "cond")
		if err != nil {
			return nil, err
		}
		cond = c
	}
	carried := slices.Clone(in[2:])
	for i, t := range carried {
		if t == nil {
			return nil, x.errf(n, "loop-carried input #%d is empty", i)
		}
	}
	scans := make([][]*tensor.Tensor, k)
	parent := x.s
	iters := int64(0)
	for ; iters < trip && cond; iters++ {
		if iters >= maxIterations {
			return nil, x.errf(n, "more than %d iterations", maxIterations)
		}
		if x.dry && iters >= dryIterations {
			return nil, errUnknown
		}
		bs := &scope{vals: map[string]*tensor.Tensor{}, parent: parent}
		bs.vals[body.inputs[0]] = tensor.FromInts(tensor.Int64, []int64{iters})
		bs.vals[body.inputs[1]] = tensor.FromInts(tensor.Bool, []int64{1})
		for j, t := range carried {
			bind(bs, body.inputs[2+j], t)
		}
		res, err := x.run(body, bs)
		if err != nil {
			return nil, err
		}
		if cond, err = x.cond(n, res[0], "the body's condition"); err != nil {
			return nil, err
		}
		for j := range carried {
			if !sameType(res[1+j], carried[j]) {
				return nil, x.errf(n, "body changes loop-carried %q from %s to %s", body.inputs[2+j], typeName(carried[j]), typeName(res[1+j]))
			}
		}
		for j := 0; j < k; j++ {
			r := res[1+nc+j]
			if iters > 0 && (!slices.Equal(r.Shape, scans[j][0].Shape) || !sameType(r, scans[j][0])) {
				return nil, x.errf(n, "scan output %q changes from %s %v to %s %v between iterations", body.outputs[1+nc+j], typeName(scans[j][0]), scans[j][0].Shape, typeName(r), r.Shape)
			}
		}
		// The loop holds what the next iteration and its outputs need;
		// the rest of the iteration's buffers, and the carried values it
		// replaced, go back to the arena for the next iteration.
		for j := range carried {
			x.hold(res[1+j])
		}
		for j := 0; j < k; j++ {
			x.hold(res[1+nc+j])
			scans[j] = append(scans[j], res[1+nc+j])
		}
		x.releaseScope(body, bs)
		if iters > 0 {
			for _, t := range carried {
				x.release(t)
			}
		}
		copy(carried, res[1:1+nc])
	}
	outs := carried
	for j := 0; j < k; j++ {
		if iters == 0 {
			// No iteration: an empty stack, of the body output's declared
			// type and trailing dimensions when they are fixed.
			outs = append(outs, emptyStack(body.outInfo[1+nc+j]))
			continue
		}
		o, err := x.stack(n, scans[j], 0, int(iters))
		if err != nil {
			return nil, err
		}
		for _, t := range scans[j] {
			x.release(t)
		}
		outs = append(outs, o)
	}
	if iters > 0 {
		x.deferred = append(x.deferred, carried...)
	}
	return outs, nil
}

func emptyStack(info ValueInfo) *tensor.Tensor {
	shape := []int{0}
	fixed := info.Dims != nil && !slices.Contains(info.fixed, -1)
	if fixed {
		shape = append(shape, info.fixed...)
	}
	dt := tensor.DType(info.Type)
	if !dt.Known() || dt.IsFloat() {
		return &tensor.Tensor{Shape: shape, DType: tensor.Float32, Data: []float32{}}
	}
	return &tensor.Tensor{Shape: shape, DType: dt, Ints: []int64{}}
}

// cond reads a boolean scalar; errUnknown when it was computed from floats
// in the dry pass.
func (x *exec) cond(n *node, t *tensor.Tensor, what string) (bool, error) {
	if t.DType != tensor.Bool && t.IsFloat() {
		return false, x.errf(n, "%s must be bool, is %s", what, typeName(t))
	}
	if numel(t.Shape) != 1 {
		return false, x.errf(n, "%s must hold one value, has shape %v", what, t.Shape)
	}
	if t.Ints == nil {
		return false, errUnknown
	}
	return t.Ints[0] != 0, nil
}

func checkIf(c *compiler, n *node) error {
	for _, b := range []string{"then_branch", "else_branch"} {
		if n.attrs[b] == nil {
			return c.errAttr(n, b, "missing graph attribute %s", b)
		}
		if len(n.attrs[b].G.GetOutput()) != len(n.out) {
			return c.errAttr(n, b, "%s has %d outputs, the node %d", b, len(n.attrs[b].G.GetOutput()), len(n.out))
		}
	}
	return nil
}

// runIf runs the branch cond selects. When cond is unknown in the dry
// pass, both branches run (dry) and must agree on every output's shape
// and type, else the dry pass stops here.
func runIf(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	branch := func(name string) ([]*tensor.Tensor, error) {
		b := n.sub[name]
		bs := &scope{vals: map[string]*tensor.Tensor{}, parent: x.s}
		res, err := x.run(b, bs)
		if err != nil {
			return nil, err
		}
		x.deferScope(b, bs) // the outputs live on as the node's
		if len(res) != len(n.out) {
			return nil, x.errf(n, "%s has %d outputs, the node %d", name, len(res), len(n.out))
		}
		return res, nil
	}
	c, err := x.cond(n, in[0], "cond")
	if err == errUnknown {
		a, err := branch("then_branch")
		if err != nil {
			return nil, err
		}
		b, err := branch("else_branch")
		if err != nil {
			return nil, err
		}
		for i := range a {
			if !slices.Equal(a[i].Shape, b[i].Shape) || !sameType(a[i], b[i]) || a[i].DType == seqDType {
				return nil, errUnknown
			}
			if !a[i].IsFloat() && !slices.Equal(a[i].Ints, b[i].Ints) {
				a[i] = &tensor.Tensor{Shape: a[i].Shape, DType: a[i].DType} // values differ: unknown
			}
		}
		return a, nil
	}
	if err != nil {
		return nil, err
	}
	if c {
		return branch("then_branch")
	}
	return branch("else_branch")
}
