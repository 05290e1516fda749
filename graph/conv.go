package graph

import (
	"slices"
	"sync"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// The Conv kernel: every Conv runs on engine.Conv2D, the convolution the
// native runtime's cells use too (direct offset GEMM, Winograd, or a gather
// for strided convolutions, chosen by the engine).

// convNode is a Conv node's compile-time state.
type convNode struct {
	kh, kw         int // kernel (from kernel_shape or the weight)
	sh, sw, dh, dw int // strides, dilations
	group          int
	autoPad        string
	pads           [4]int // NOTSET pads: top, left, bottom, right
	m, cg          int    // output channels, input channels per group
	// weightName and biasName are the initialisers read (for CellGates).
	weightName, biasName string
	// packed holds constant weights (nil when they are computed at run
	// time), padded by WithPads for each input size.
	packed *engine.Conv2D
	// parts: the inputs are a fused Concat's parts along the channels.
	parts bool
	// act, when set by a fusion pass, is applied to each output plane as
	// soon as it is written (a fused activation); actName says which
	// (node names and tests).
	act     func(plane []float32)
	actName string
	// w and b, when set by a fusion pass (a BatchNormalization folded in),
	// replace the weight and bias initialisers.
	w, b  []float32
	plans *planCache // shared by the nodes with the same packed weights

	// The other ops of the conv and norm families keep their compile-time
	// state here too (a node has one op): the transposed convolution, the
	// pooling attributes, Resize's attributes and tables.
	tr     *convTNode
	pool   *poolAttrs
	resize *resizeNode
}

// convAttrs reads a Conv node's attributes against the weight shape
// (M, C/group, kh, kw).
func (c *compiler) convAttrs(n *node, wshape []int) (*convNode, error) {
	if len(wshape) != 4 {
		return nil, c.unsupported(n, "", "weight has shape %v; only 2-D convolutions (weights of rank 4) are supported", wshape)
	}
	cn := &convNode{m: wshape[0], cg: wshape[1], kh: wshape[2], kw: wshape[3], weightName: n.in[1], group: int(attrInt(n, "group", 1))}
	if len(n.in) > 2 {
		cn.biasName = n.in[2]
	}
	if cn.m < 1 || cn.cg < 1 || cn.kh < 1 || cn.kw < 1 {
		return nil, c.errf(n, "weight %q has shape %v", n.in[1], wshape)
	}
	if cn.group < 1 || cn.m%cn.group != 0 {
		return nil, c.errAttr(n, "group", "group=%d must be positive and divide the %d output channels", cn.group, cn.m)
	}
	pair := func(name string, def int) (int, int, error) {
		v, ok := attrInts(n, name)
		if !ok {
			return def, def, nil
		}
		if len(v) != 2 {
			return 0, 0, c.unsupported(n, name, "%s=%v: only 2-D convolutions are supported", name, v)
		}
		for _, x := range v {
			if x < 1 || x > 1<<16 {
				return 0, 0, c.errAttr(n, name, "%s=%v: want values from 1 to 65536", name, v)
			}
		}
		return int(v[0]), int(v[1]), nil
	}
	var err error
	if cn.sh, cn.sw, err = pair("strides", 1); err != nil {
		return nil, err
	}
	if cn.dh, cn.dw, err = pair("dilations", 1); err != nil {
		return nil, err
	}
	if ks, ok := attrInts(n, "kernel_shape"); ok && (len(ks) != 2 || int(ks[0]) != cn.kh || int(ks[1]) != cn.kw) {
		return nil, c.errAttr(n, "kernel_shape", "kernel_shape=%v does not match the weight's %v", ks, wshape[2:])
	}
	cn.autoPad = attrString(n, "auto_pad", "NOTSET")
	if p, ok := attrInts(n, "pads"); ok {
		if cn.autoPad != "NOTSET" {
			return nil, c.errAttr(n, "pads", "pads=%v together with auto_pad=%s", p, cn.autoPad)
		}
		if len(p) != 4 {
			return nil, c.unsupported(n, "pads", "pads=%v: want 4 values for a 2-D convolution", p)
		}
		for _, x := range p {
			if x < 0 || x > 1<<16 {
				return nil, c.errAttr(n, "pads", "pads=%v: want values from 0 to 65536", p)
			}
		}
		// ONNX order: y_begin, x_begin, y_end, x_end.
		cn.pads = [4]int{int(p[0]), int(p[1]), int(p[2]), int(p[3])}
	}
	return cn, nil
}

// padsFor returns the padding for an h×w input: the pads attribute, or what
// auto_pad derives from the input size (SAME: output ⌈in/stride⌉, the odd
// pixel at the end for SAME_UPPER, at the start for SAME_LOWER).
func (cn *convNode) padsFor(h, w int) [4]int {
	switch cn.autoPad {
	case "VALID":
		return [4]int{}
	case "SAME_UPPER", "SAME_LOWER":
		th := max(0, ((h+cn.sh-1)/cn.sh-1)*cn.sh+(cn.kh-1)*cn.dh+1-h)
		tw := max(0, ((w+cn.sw-1)/cn.sw-1)*cn.sw+(cn.kw-1)*cn.dw+1-w)
		if cn.autoPad == "SAME_UPPER" {
			return [4]int{th / 2, tw / 2, th - th/2, tw - tw/2}
		}
		return [4]int{th - th/2, tw - tw/2, th / 2, tw / 2}
	}
	return cn.pads
}

func (cn *convNode) spec(pads [4]int) engine.ConvSpec {
	return engine.ConvSpec{M: cn.m, C: cn.cg * cn.group, KH: cn.kh, KW: cn.kw,
		PadT: pads[0], PadL: pads[1], PadB: pads[2], PadR: pads[3],
		StrideH: cn.sh, StrideW: cn.sw, DilH: cn.dh, DilW: cn.dw, Groups: cn.group}
}

// checkConv reads the attributes and, when the weight (and bias) are
// constants, packs them once (after the fusion passes, which may change
// them: see prepareConvs).
func checkConv(c *compiler, n *node) error {
	wName, w := c.prog.constThrough(n.in[1])
	if w == nil {
		// Computed weights: the attributes are checked against their
		// shape at run time.
		return nil
	}
	if !w.IsFloat() || w.Data == nil {
		return c.errf(n, "weight %q must be float data, is %s %v", n.in[1], typeName(w), w.Shape)
	}
	cn, err := c.convAttrs(n, w.Shape)
	if err != nil {
		return err
	}
	cn.weightName = wName
	if cn.biasName != "" {
		cn.biasName, _ = c.prog.constThrough(cn.biasName)
	}
	n.conv = cn
	return nil
}

// constThrough resolves a node input to the constant it holds: an
// initialiser or a Constant's output, or the output of Identity nodes of
// one (torch writes a weight that several calls share as Identity copies of
// one initialiser). It returns the constant's own name, or the name it was
// given and nil when the value is computed.
func (p *program) constThrough(name string) (string, *tensor.Tensor) {
	orig := name
	for hops := 0; hops < 16 && name != ""; hops++ {
		if t := p.constant(name); t != nil {
			return name, t
		}
		next := ""
		for q := p; q != nil && next == ""; q = q.parent {
			for i := len(q.nodes) - 1; i >= 0; i-- {
				if n := q.nodes[i]; n.op == "Identity" && len(n.out) == 1 && n.out[0] == name && len(n.in) == 1 {
					next = n.in[0]
					break
				}
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	return orig, nil
}

// prepareConvs packs the constant weights of every Conv of p, once the
// fusion passes are done, and puts the fused cells that are ConvLSTM steps
// on the engine's cell.
func (c *compiler) prepareConvs(p *program) error {
	for _, n := range p.nodes {
		cv := n
		if n.op == "LSTMCell" {
			cv = n.cell.conv
			if cv != nil && cv.conv != nil && n.cell.step == nil {
				if err := c.prepareCell(n, p); err != nil {
					return err
				}
			}
		}
		if cv != nil && cv.op == "ConvTranspose" && cv.conv != nil {
			if err := c.prepareConvTranspose(cv, p); err != nil {
				return err
			}
			continue
		}
		if cv == nil || cv.op != "Conv" || cv.conv == nil || cv.conv.packed != nil {
			continue
		}
		w, b := cv.conv.w, cv.conv.b // a BatchNormalization folded in
		if w == nil {
			w = p.constant(cv.conv.weightName).Data
			if cv.conv.biasName != "" {
				bt := p.constant(cv.conv.biasName)
				if bt == nil {
					continue // a computed bias: packed per run
				}
				if !bt.IsFloat() || len(bt.Data) != cv.conv.m {
					return c.errf(cv, "bias %q has shape %v, want (%d,)", cv.conv.biasName, bt.Shape, cv.conv.m)
				}
				b = bt.Data
			}
		}
		packed, plans, err := c.shared.conv(w, b, cv.conv.spec([4]int{}))
		if err != nil {
			return c.errf(cv, "%v", err)
		}
		cv.conv.packed, cv.conv.plans = packed, plans
	}
	return nil
}

// runConv runs a Conv node: x is (N, C, H, W), or the parts of a fused
// channel Concat, which are padded straight into the convolution's buffer.
func runConv(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	cn := n.conv
	var act func([]float32)
	if cn != nil {
		act = cn.act
	}
	xs := in[:1]
	if cn == nil || cn.packed == nil {
		// Weights (or bias) computed by the graph: check and pack per run.
		w := in[1]
		if !w.IsFloat() {
			return nil, x.errf(n, "weight %q must be float32, is %s %v", n.in[1], typeName(w), w.Shape)
		}
		var err error
		c := &compiler{file: x.g.File}
		if cn, err = c.convAttrs(n, w.Shape); err != nil {
			return nil, err
		}
	} else if cn.parts {
		xs = in
	}
	geo, err := x.convInput(n, cn, xs)
	if err != nil {
		return nil, err
	}
	pads := cn.padsFor(geo.h, geo.w)
	spec := cn.spec(pads)
	ho, wo := spec.OutSize(geo.h, geo.w)
	if ho < 1 || wo < 1 {
		return nil, x.errf(n, "input %d×%d with pads %v is smaller than the %d×%d kernel (dilations %d×%d)", geo.h, geo.w, pads, cn.kh, cn.kw, cn.dh, cn.dw)
	}
	if int64(geo.n)*int64(cn.m)*int64(ho)*int64(wo) > int64(maxValues) || int64(geo.n)*int64(spec.C)*int64(geo.h+pads[0]+pads[2]+1)*int64(geo.w+pads[1]+pads[3]+1) > int64(maxValues) {
		return nil, x.errf(n, "convolution of (%d, %d, %d, %d) into %d×%d is too large", geo.n, spec.C, geo.h, geo.w, ho, wo)
	}
	out := x.newFloat([]int{geo.n, cn.m, ho, wo})
	if x.dry {
		return one(out, nil)
	}
	conv := cn.packed
	if conv == nil {
		var b []float32
		if len(in) > 2 && in[2] != nil {
			if !in[2].IsFloat() || len(in[2].Data) != cn.m {
				return nil, x.errf(n, "bias %q has shape %v, want (%d,)", n.in[2], in[2].Shape, cn.m)
			}
			b = in[2].Data
		}
		// No Winograd for weights that change per run: its transform
		// would cost more than it saves.
		if conv, err = engine.NewConv2D(in[1].Data, b, spec, engine.ConvOptions{Direct: true}); err != nil {
			return nil, x.errf(n, "%v", err)
		}
	} else if conv, err = conv.WithPads(pads[0], pads[1], pads[2], pads[3]); err != nil {
		return nil, x.errf(n, "%v", err)
	}
	key := planKey{geo.n, geo.h, geo.w, pads}
	plan, err := cn.plans.get(key, conv, x.g.threads, cn.packed == nil, x.worker)
	if err != nil {
		return nil, x.errf(n, "%v", err)
	}
	defer cn.plans.put(key, plan, cn.packed == nil, x.worker)
	parts := make([]engine.Part, len(xs))
	for i, t := range xs {
		parts[i] = engine.Part{Data: t.Data, Channels: t.Shape[1]}
	}
	var epi func([]float32, int)
	if act != nil {
		epi = func(plane []float32, _ int) { act(plane) }
	}
	plan.Apply(poolFor(x.g.threads), out.Data, epi, parts...)
	return one(out, nil)
}

// convGeo is a Conv's input geometry: batch, channels over all parts, size.
type convGeo struct{ n, c, h, w int }

// convInput checks the data inputs: one float (N, C, H, W) tensor, or the
// parts of a fused channel Concat, which must agree on N, H and W; their
// channels must be what the weight takes.
func (x *exec) convInput(n *node, cn *convNode, xs []*tensor.Tensor) (convGeo, error) {
	var g convGeo
	for i, t := range xs {
		if t == nil || !t.IsFloat() || len(t.Shape) != 4 {
			var shape []int
			if t != nil {
				shape = t.Shape
			}
			return g, x.errf(n, "input %q has shape %v, want a float (N, C, H, W) tensor", n.in[i], shape)
		}
		if i > 0 && (t.Shape[0] != g.n || t.Shape[2] != g.h || t.Shape[3] != g.w) {
			return g, x.errf(n, "concatenated inputs %q %v and %q %v differ in batch or image size", n.in[0], xs[0].Shape, n.in[i], t.Shape)
		}
		g.n, g.h, g.w = t.Shape[0], t.Shape[2], t.Shape[3]
		g.c += t.Shape[1]
	}
	if g.c != cn.cg*cn.group {
		return g, x.errf(n, "input has %d channels, weight %q wants %d (%d groups of %d)", g.c, cn.weightName, cn.cg*cn.group, cn.group, cn.cg)
	}
	if g.n < 1 || g.h < 1 || g.w < 1 {
		return g, x.errf(n, "input of shape (%d, %d, %d, %d) is empty", g.n, g.c, g.h, g.w)
	}
	return g, nil
}

// planKey is the input geometry a convolution plan serves.
type planKey struct {
	n, h, w int
	pads    [4]int
}

// planCache keeps the plans (offsets and scratch) of a node's convolution
// per input geometry; concurrent runs of the graph each take their own,
// and a worker takes back the plan it used last (workerCache).
type planCache struct {
	c workerCache[planKey, *engine.ConvPlan]
}

// maxCachedGeometries bounds how many input geometries a node keeps plans
// for (a server fed images of many sizes).
const maxCachedGeometries = 8

func (pc *planCache) get(k planKey, conv *engine.Conv2D, threads int, transient bool, worker int) (*engine.ConvPlan, error) {
	if !transient {
		if p, ok := pc.c.take(k, worker); ok {
			return p, nil
		}
	}
	return conv.NewDensePlan(k.n, k.h, k.w, threads)
}

func (pc *planCache) put(k planKey, p *engine.ConvPlan, transient bool, worker int) {
	if !transient { // else made for weights of one run
		pc.c.put(k, p, worker)
	}
}

// workerCache keeps per-key free lists of scratch objects (plans with
// their buffers). An object goes back with the worker of a concurrent run
// that used it, and take prefers one the asking worker used last: its
// buffers are then likely in that core's cache, not the other's (a
// 48-channel 64×64 padded input is 13,000 lines, ~13 ns each to take over
// from the other core here). At most maxCachedGeometries keys are kept.
type workerCache[K comparable, V any] struct {
	mu   sync.Mutex
	free map[K][]cached[V]
}

type cached[V any] struct {
	v      V
	worker int
}

func (c *workerCache[K, V]) take(k K, worker int) (v V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.free[k]
	if len(l) == 0 {
		return v, false
	}
	i := len(l) - 1
	for j := i; j >= 0; j-- {
		if l[j].worker == worker {
			i = j
			break
		}
	}
	v = l[i].v
	c.free[k] = slices.Delete(l, i, i+1)
	return v, true
}

func (c *workerCache[K, V]) put(k K, v V, worker int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.free == nil || len(c.free) >= maxCachedGeometries && c.free[k] == nil {
		c.free = map[K][]cached[V]{}
	}
	c.free[k] = append(c.free[k], cached[V]{v, worker})
}

// pools are the worker pools of the graphs, one per thread count, shared by
// every graph of that count: workers live as long as the process, like the
// runtime's own.
var (
	poolsMu sync.Mutex
	pools   = map[int]*engine.Pool{}
)

func poolFor(threads int) *engine.Pool {
	poolsMu.Lock()
	defer poolsMu.Unlock()
	p := pools[threads]
	if p == nil {
		p = engine.NewPool(threads)
		pools[threads] = p
	}
	return p
}

// ---- ConvTranspose ----

// convTNode is a ConvTranspose node's attributes for its weight (C,
// M/group, k...) of spatial rank r, and its packed weights when constant.
type convTNode struct {
	r                    int
	c, mg, group         int
	kernel               []int
	strides, dils        []int
	pads                 []int // begins, then ends
	outPad, outShape     []int // outShape nil: not given
	autoPad              string
	weightName, biasName string
	// packed (2-D, or 1-D as 2-D of height 1) holds constant weights;
	// plans its scratch per input geometry.
	packed *engine.ConvTranspose2D
	plans  workerCache[[3]int, *engine.ConvTransposePlan]
}

// convTAttrs reads a ConvTranspose node's attributes against its weight
// shape.
func (c *compiler) convTAttrs(n *node, wshape []int) (*convTNode, error) {
	r := len(wshape) - 2
	if r < 1 {
		return nil, c.errf(n, "weight %q has shape %v; want (C, M/group, k...)", n.in[1], wshape)
	}
	t := &convTNode{r: r, c: wshape[0], mg: wshape[1], kernel: slices.Clone(wshape[2:]), group: int(attrInt(n, "group", 1)),
		autoPad: attrString(n, "auto_pad", "NOTSET"), weightName: n.in[1]}
	if len(n.in) > 2 {
		t.biasName = n.in[2]
	}
	if t.c < 1 || t.mg < 1 || slices.Contains(t.kernel, 0) {
		return nil, c.errf(n, "weight %q has shape %v", n.in[1], wshape)
	}
	if t.group < 1 || t.c%t.group != 0 {
		return nil, c.errAttr(n, "group", "group=%d must be positive and divide the %d input channels", t.group, t.c)
	}
	list := func(name string, def, lo int, count int) ([]int, error) {
		v, ok := attrInts(n, name)
		out := make([]int, count)
		if !ok {
			for i := range out {
				out[i] = def
			}
			return out, nil
		}
		if len(v) != count {
			return nil, c.errAttr(n, name, "%s=%v: want %d values for a %d-D transposed convolution", name, v, count, r)
		}
		for i, x := range v {
			if x < int64(lo) || x > 1<<16 {
				return nil, c.errAttr(n, name, "%s=%v: want values from %d to 65536", name, v, lo)
			}
			out[i] = int(x)
		}
		return out, nil
	}
	var err error
	if t.strides, err = list("strides", 1, 1, r); err != nil {
		return nil, err
	}
	if t.dils, err = list("dilations", 1, 1, r); err != nil {
		return nil, err
	}
	if t.pads, err = list("pads", 0, 0, 2*r); err != nil {
		return nil, err
	}
	if t.outPad, err = list("output_padding", 0, 0, r); err != nil {
		return nil, err
	}
	if ks, ok := attrInts(n, "kernel_shape"); ok && !slices.Equal(ks, toInt64s(t.kernel)) {
		return nil, c.errAttr(n, "kernel_shape", "kernel_shape=%v does not match the weight's %v", ks, wshape[2:])
	}
	if os, ok := attrInts(n, "output_shape"); ok {
		if len(os) != r && len(os) != r+2 {
			return nil, c.errAttr(n, "output_shape", "output_shape=%v: want %d spatial sizes", os, r)
		}
		for _, v := range os[len(os)-r:] {
			if v < 1 || v > int64(maxValues) {
				return nil, c.errAttr(n, "output_shape", "output_shape=%v: want positive sizes", os)
			}
			t.outShape = append(t.outShape, int(v))
		}
	}
	if t.autoPad != "NOTSET" && slices.ContainsFunc(t.pads, func(p int) bool { return p != 0 }) {
		return nil, c.errAttr(n, "pads", "pads=%v together with auto_pad=%s", t.pads, t.autoPad)
	}
	return t, nil
}

func toInt64s(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// floorDiv2 is ⌊v/2⌋ for any sign (the ONNX reference computes the split of
// a negative total padding with Python's floor division).
func floorDiv2(v int) int {
	if v < 0 {
		return -((-v + 1) / 2)
	}
	return v / 2
}

// geometry returns, for the spatial input sizes, each axis's begin padding
// and output size: from output_shape (pads derived, the larger half at the
// start unless SAME_UPPER), auto_pad SAME (output in·stride), VALID, or
// the pads.
func (t *convTNode) geometry(spatial []int) (begin, out []int) {
	begin, out = make([]int, t.r), make([]int, t.r)
	for i, in := range spatial {
		s, kd := t.strides[i], (t.kernel[i]-1)*t.dils[i]+1
		full := s*(in-1) + t.outPad[i] + kd // the output before padding
		switch {
		case t.outShape != nil || t.autoPad == "SAME_UPPER" || t.autoPad == "SAME_LOWER":
			o := in * s
			if t.outShape != nil {
				o = t.outShape[i]
			}
			total := full - o
			if t.autoPad == "SAME_UPPER" {
				begin[i] = floorDiv2(total)
			} else {
				begin[i] = total - floorDiv2(total)
			}
			out[i] = o
		case t.autoPad == "VALID":
			out[i] = full
		default:
			begin[i] = t.pads[i]
			out[i] = full - t.pads[i] - t.pads[t.r+i]
		}
	}
	return begin, out
}

func checkConvTranspose(c *compiler, n *node) error {
	wName, w := c.prog.constThrough(n.in[1])
	if w == nil {
		return nil // computed weights: checked at run time
	}
	if !w.IsFloat() || w.Data == nil {
		return c.errf(n, "weight %q must be float data, is %s %v", n.in[1], typeName(w), w.Shape)
	}
	t, err := c.convTAttrs(n, w.Shape)
	if err != nil {
		return err
	}
	t.weightName = wName
	if t.biasName != "" {
		t.biasName, _ = c.prog.constThrough(t.biasName)
	}
	n.conv = &convNode{tr: t, weightName: t.weightName, biasName: t.biasName}
	return nil
}

// spec2D is the engine's spec of a 1-D or 2-D transposed convolution (1-D
// as 2-D of height 1), its geometry left for WithGeometry.
func (t *convTNode) spec2D() engine.ConvTransposeSpec {
	s := engine.ConvTransposeSpec{C: t.c, M: t.mg * t.group, KH: 1, KW: t.kernel[t.r-1], StrideH: 1, StrideW: t.strides[t.r-1],
		DilH: 1, DilW: t.dils[t.r-1], Groups: t.group, HO: 1, WO: 1}
	if t.r == 2 {
		s.KH, s.StrideH, s.DilH = t.kernel[0], t.strides[0], t.dils[0]
	}
	return s
}

// prepareConvTranspose packs the constant weights of a 1-D or 2-D
// ConvTranspose once the fusion passes are done.
func (c *compiler) prepareConvTranspose(n *node, p *program) error {
	t := n.conv.tr
	if t == nil || t.packed != nil || t.r > 2 {
		return nil
	}
	w, b := n.conv.w, n.conv.b
	if w == nil {
		w = p.constant(t.weightName).Data
		if t.biasName != "" {
			bt := p.constant(t.biasName)
			if bt == nil {
				return nil // a computed bias: packed per run
			}
			if !bt.IsFloat() || len(bt.Data) != t.mg*t.group {
				return c.errf(n, "bias %q has shape %v, want (%d,)", t.biasName, bt.Shape, t.mg*t.group)
			}
			b = bt.Data
		}
	}
	packed, err := engine.NewConvTranspose2D(w, b, t.spec2D())
	if err != nil {
		return c.errf(n, "%v", err)
	}
	t.packed = packed
	return nil
}

func runConvTranspose(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	var t *convTNode
	var act func([]float32)
	if n.conv != nil {
		t, act = n.conv.tr, n.conv.act
	}
	w := in[1]
	if t == nil {
		if !w.IsFloat() {
			return nil, x.errf(n, "weight %q must be float32, is %s %v", n.in[1], typeName(w), w.Shape)
		}
		var err error
		if t, err = (&compiler{file: x.g.File}).convTAttrs(n, w.Shape); err != nil {
			return nil, err
		}
	}
	xt := in[0]
	if !xt.IsFloat() || len(xt.Shape) != t.r+2 || xt.Shape[1] != t.c {
		return nil, x.errf(n, "input %q is %s %v; the weight %q wants a float (N, %d, %d spatial) tensor", n.in[0], typeName(xt), xt.Shape, t.weightName, t.c, t.r)
	}
	m := t.mg * t.group
	begin, outSp := t.geometry(xt.Shape[2:])
	shape := append([]int{xt.Shape[0], m}, outSp...)
	for _, o := range outSp {
		if o < 1 {
			return nil, x.errf(n, "input %v with pads %v gives output %v", xt.Shape, t.pads, shape)
		}
	}
	if err := checkShape(shape); err != nil {
		return nil, x.errf(n, "%v", err)
	}
	if numel(xt.Shape[2:]) == 0 {
		return nil, x.errf(n, "input %q of shape %v is empty", n.in[0], xt.Shape)
	}
	out := x.newFloat(shape)
	if x.dry || numel(shape) == 0 {
		return one(out, nil)
	}
	var bias []float32
	if len(in) > 2 && in[2] != nil {
		if !in[2].IsFloat() || len(in[2].Data) != m {
			return nil, x.errf(n, "bias %q has shape %v, want (%d,)", n.in[2], in[2].Shape, m)
		}
		bias = in[2].Data
	}
	wd := w.Data
	if n.conv != nil && n.conv.w != nil {
		wd, bias = n.conv.w, n.conv.b // a BatchNormalization folded in
	}
	if t.r > 2 {
		convTransposeND(out.Data, xt.Data, xt.Shape, wd, bias, t, begin, outSp)
		if act != nil {
			act(out.Data)
		}
		return one(out, nil)
	}
	packed := t.packed
	if packed == nil {
		var err error
		if packed, err = engine.NewConvTranspose2D(wd, bias, t.spec2D()); err != nil {
			return nil, x.errf(n, "%v", err)
		}
	}
	h, iw, padT, padL, ho, wo := 1, xt.Shape[2], 0, begin[0], 1, outSp[0]
	if t.r == 2 {
		h, iw, padT, padL, ho, wo = xt.Shape[2], xt.Shape[3], begin[0], begin[1], outSp[0], outSp[1]
	}
	key := [3]int{xt.Shape[0], h, iw}
	var plan *engine.ConvTransposePlan
	if t.packed != nil {
		plan, _ = t.plans.take(key, x.worker)
	}
	if plan == nil {
		var err error
		if plan, err = packed.WithGeometry(padT, padL, ho, wo).NewPlan(xt.Shape[0], h, iw); err != nil {
			return nil, x.errf(n, "%v", err)
		}
	}
	var epi func([]float32, int)
	if act != nil {
		epi = func(plane []float32, _ int) { act(plane) }
	}
	plan.ApplyEpilogue(poolFor(x.g.threads), xt.Data, out.Data, epi)
	if t.packed != nil {
		t.plans.put(key, plan, x.worker)
	}
	return one(out, nil)
}

// convTransposeND is ConvTranspose of any spatial rank straight from the
// definition (3-D and up: no model here needs them fast): every input value
// times every kernel tap, added at its output position.
func convTransposeND(out, xd []float32, xs []int, w, bias []float32, t *convTNode, begin, outSp []int) {
	r := t.r
	n, m := xs[0], t.mg*t.group
	cg := t.c / t.group
	inSp := xs[2:]
	inN, outN, kN := numel(inSp), numel(outSp), numel(t.kernel)
	for b := 0; b < n; b++ {
		for o := 0; o < m; o++ {
			plane := out[(b*m+o)*outN : (b*m+o+1)*outN]
			var bv float32
			if bias != nil {
				bv = bias[o]
			}
			for i := range plane {
				plane[i] = bv
			}
		}
	}
	ip := make([]int, r)
	kp := make([]int, r)
	for b := 0; b < n; b++ {
		for ci := 0; ci < t.c; ci++ {
			g := ci / cg
			src := xd[(b*t.c+ci)*inN : (b*t.c+ci+1)*inN]
			for j := 0; j < t.mg; j++ {
				o := g*t.mg + j
				plane := out[(b*m+o)*outN : (b*m+o+1)*outN]
				wk := w[(ci*t.mg+j)*kN : (ci*t.mg+j+1)*kN]
				clear(ip)
				for ii := 0; ii < inN; ii++ {
					v := src[ii]
					clear(kp)
					for kk := 0; kk < kN; kk++ {
						off, inside := 0, true
						for a := 0; a < r; a++ {
							pos := ip[a]*t.strides[a] - begin[a] + kp[a]*t.dils[a]
							if pos < 0 || pos >= outSp[a] {
								inside = false
								break
							}
							off = off*outSp[a] + pos
						}
						if inside {
							plane[off] += v * wk[kk]
						}
						for a := r - 1; a >= 0; a-- {
							if kp[a]++; kp[a] < t.kernel[a] {
								break
							}
							kp[a] = 0
						}
					}
					for a := r - 1; a >= 0; a-- {
						if ip[a]++; ip[a] < inSp[a] {
							break
						}
						ip[a] = 0
					}
				}
			}
		}
	}
}
