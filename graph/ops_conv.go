package graph

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Convolution, pooling, resizing and padding. The Conv and ConvTranspose
// kernels are in conv.go, on the engine's convolutions; pooling and
// resizing run on the engine's separable kernels (engine/window.go,
// engine/resize.go): one pass per spatial axis with a table of taps per
// output position, computed once per shape.

var autoPads = []string{"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"}

func init() {
	poolAttrSpecs := func(extra ...attrSpec) []attrSpec {
		return append([]attrSpec{aString("auto_pad", autoPads...), aInts("kernel_shape"), aInts("pads"), aInts("strides")}, extra...)
	}
	register(
		&opDef{name: "Conv", since: v(1, 11), in: io(2, 3), out: io(1, 1),
			attrs: []attrSpec{aString("auto_pad", autoPads...), aInts("dilations"), aInt("group"), aInts("kernel_shape"), aInts("pads"), aInts("strides")},
			check: checkConv, run: runConv},
		&opDef{name: "ConvTranspose", since: v(1, 11), in: io(2, 3), out: io(1, 1),
			attrs: []attrSpec{aString("auto_pad", autoPads...), aInts("dilations"), aInt("group"), aInts("kernel_shape"),
				aInts("output_padding"), aInts("output_shape"), aInts("pads"), aInts("strides")},
			check: checkConvTranspose, run: runConvTranspose},
		&opDef{name: "MaxPool", since: v(1, 8, 10, 11, 12), in: io(1, 1), out: io(1, 2),
			attrs: poolAttrSpecs(aInt("storage_order").sinceV(8), aInt("ceil_mode").sinceV(10), aInts("dilations").sinceV(10)),
			check: checkPool, run: runPool},
		&opDef{name: "AveragePool", since: v(1, 7, 10, 11, 19), in: io(1, 1), out: io(1, 1),
			attrs: poolAttrSpecs(aInt("count_include_pad").sinceV(7), aInt("ceil_mode").sinceV(10), aInts("dilations").sinceV(19)),
			check: checkPool, run: runPool},
		&opDef{name: "GlobalAveragePool", since: v(1), in: io(1, 1), out: io(1, 1), run: runGlobalPool},
		&opDef{name: "GlobalMaxPool", since: v(1), in: io(1, 1), out: io(1, 1), run: runGlobalPool},
		&opDef{name: "Resize", since: v(10, 11, 13, 18, 19), in: io(1, 4), out: io(1, 1),
			attrs: []attrSpec{
				aString("mode", "nearest", "linear", "cubic"),
				aString("coordinate_transformation_mode", "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
					"asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize").sinceV(11),
				aFloat("cubic_coeff_a").sinceV(11), aInt("exclude_outside").sinceV(11), aFloat("extrapolation_value").sinceV(11),
				aString("nearest_mode", "round_prefer_floor", "round_prefer_ceil", "floor", "ceil").sinceV(11),
				aInt("antialias").sinceV(18), aInts("axes").sinceV(18), aString("keep_aspect_ratio_policy", "stretch", "not_larger", "not_smaller").sinceV(18),
			},
			check: checkResize, run: runResize},
		// Upsample is deprecated since opset 10 (Resize replaced it); older
		// exports still write it.
		&opDef{name: "Upsample", since: v(7, 9), until: 9, in: io(1, 2), out: io(1, 1),
			attrs: []attrSpec{aString("mode", "nearest", "linear", "bilinear"), aFloats("scales").upTo(8)},
			check: checkResize, run: runResize},
		&opDef{name: "Pad", since: v(1, 2, 11, 13, 18, 19, 21), in: io(1, 4), out: io(1, 1),
			attrs: []attrSpec{aString("mode", "constant", "reflect", "edge", "wrap"), aInts("paddings").upTo(1), aInts("pads").upTo(10), aFloat("value").upTo(10)},
			check: checkPad, run: runPad},
		&opDef{name: "DepthToSpace", since: v(1, 11, 13), in: io(1, 1), out: io(1, 1),
			attrs: []attrSpec{aInt("blocksize"), aString("mode", "DCR", "CRD").sinceV(11)}, check: needAttr("blocksize"), run: runDepthToSpace},
		&opDef{name: "SpaceToDepth", since: v(1, 13), in: io(1, 1), out: io(1, 1),
			attrs: []attrSpec{aInt("blocksize")}, check: needAttr("blocksize"), run: runDepthToSpace},
	)
}

// ---- pooling ----

// poolAttrs are a MaxPool or AveragePool node's attributes.
type poolAttrs struct {
	max            bool
	kernel         []int
	strides, dils  []int
	pads           []int // begins, then ends
	autoPad        string
	ceil, countPad bool
	storageOrder   int
}

func checkPool(c *compiler, n *node) error {
	pa := &poolAttrs{max: n.op == "MaxPool", autoPad: attrString(n, "auto_pad", "NOTSET")}
	ks, ok := attrInts(n, "kernel_shape")
	if !ok || len(ks) == 0 {
		return c.errAttr(n, "kernel_shape", "missing attribute kernel_shape")
	}
	r := len(ks)
	ints := func(name string, vals []int64, min int64, def int, count int) ([]int, error) {
		if vals == nil {
			out := make([]int, count)
			for i := range out {
				out[i] = def
			}
			return out, nil
		}
		if len(vals) != count {
			return nil, c.errAttr(n, name, "%s=%v: want %d values for kernel_shape %v", name, vals, count, ks)
		}
		out := make([]int, count)
		for i, v := range vals {
			if v < min || v > 1<<16 {
				return nil, c.errAttr(n, name, "%s=%v: want values from %d to 65536", name, vals, min)
			}
			out[i] = int(v)
		}
		return out, nil
	}
	var err error
	if pa.kernel, err = ints("kernel_shape", ks, 1, 1, r); err != nil {
		return err
	}
	get := func(name string) []int64 {
		v, ok := attrInts(n, name)
		if !ok {
			return nil
		}
		return v
	}
	if pa.strides, err = ints("strides", get("strides"), 1, 1, r); err != nil {
		return err
	}
	if pa.dils, err = ints("dilations", get("dilations"), 1, 1, r); err != nil {
		return err
	}
	if pa.pads, err = ints("pads", get("pads"), 0, 0, 2*r); err != nil {
		return err
	}
	if pa.autoPad != "NOTSET" && slices.ContainsFunc(pa.pads, func(p int) bool { return p != 0 }) {
		return c.errAttr(n, "pads", "pads=%v together with auto_pad=%s", pa.pads, pa.autoPad)
	}
	flag := func(name string) (bool, error) {
		switch v := attrInt(n, name, 0); v {
		case 0, 1:
			return v == 1, nil
		default:
			return false, c.errAttr(n, name, "%s=%d: want 0 or 1", name, v)
		}
	}
	if pa.ceil, err = flag("ceil_mode"); err != nil {
		return err
	}
	if pa.countPad, err = flag("count_include_pad"); err != nil {
		return err
	}
	so, err := flag("storage_order")
	if err != nil {
		return err
	}
	if so {
		pa.storageOrder = 1
	}
	n.conv = &convNode{pool: pa}
	return nil
}

// geoms are the pooling's axes for the spatial input sizes: explicit pads,
// or what auto_pad derives (SAME: output ⌈in/stride⌉, the odd padding at
// the end for SAME_UPPER, at the start for SAME_LOWER).
func (pa *poolAttrs) geoms(spatial []int) []engine.PoolGeom {
	r := len(pa.kernel)
	gs := make([]engine.PoolGeom, r)
	for i := range gs {
		g := engine.PoolGeom{In: spatial[i], Kernel: pa.kernel[i], Stride: pa.strides[i], Dilation: pa.dils[i], Ceil: pa.ceil}
		switch pa.autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			out := (g.In + g.Stride - 1) / g.Stride
			total := max(0, (out-1)*g.Stride+(g.Kernel-1)*g.Dilation+1-g.In)
			g.PadBegin, g.PadEnd = total/2, total-total/2
			if pa.autoPad == "SAME_LOWER" {
				g.PadBegin, g.PadEnd = g.PadEnd, g.PadBegin
			}
			g.Ceil = false
		case "VALID":
		default:
			g.PadBegin, g.PadEnd = pa.pads[i], pa.pads[r+i]
		}
		gs[i] = g
	}
	return gs
}

func runPool(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	pa := n.conv.pool
	r := len(pa.kernel)
	if !t.IsFloat() || len(t.Shape) != r+2 {
		return nil, x.errf(n, "input %q is %s %v; kernel_shape %v wants a float (N, C, %d spatial) tensor", n.in[0], typeName(t), t.Shape, pa.kernel, r)
	}
	gs := pa.geoms(t.Shape[2:])
	shape := slices.Clone(t.Shape)
	for i, g := range gs {
		if g.In < 1 {
			return nil, x.errf(n, "input %q has shape %v: spatial axis %d is empty", n.in[0], t.Shape, i)
		}
		shape[i+2] = g.OutSize()
		if shape[i+2] < 1 {
			return nil, x.errf(n, "spatial axis %d of size %d with pads %d, %d is smaller than the kernel %d (dilation %d)", i, g.In, g.PadBegin, g.PadEnd, g.Kernel, g.Dilation)
		}
	}
	if err := checkShape(shape); err != nil {
		return nil, x.errf(n, "%v", err)
	}
	out := x.newFloat(shape)
	indices := len(n.out) > 1 && n.out[1] != ""
	var idx *tensor.Tensor
	if indices {
		idx = &tensor.Tensor{Shape: slices.Clone(shape), DType: tensor.Int64}
	}
	if x.dry || numel(shape) == 0 {
		if indices && !x.dry {
			idx.Ints = []int64{}
		}
		return []*tensor.Tensor{out, idx}, nil
	}
	if indices {
		idx.Ints = make([]int64, numel(shape))
		maxPoolIndices(out.Data, idx.Ints, t.Data, t.Shape, shape, gs, pa.storageOrder == 1)
		return []*tensor.Tensor{out, idx}, nil
	}
	x.poolSeparable(out.Data, t.Data, t.Shape, gs, pa.max, pa.countPad)
	return []*tensor.Tensor{out, nil}, nil
}

// poolSeparable pools the spatial axes of src (shape in) one at a time, the
// last first, through scratch buffers from the arena.
func (x *exec) poolSeparable(dst, src []float32, in []int, gs []engine.PoolGeom, isMax, countPad bool) {
	pool := poolFor(x.g.threads)
	var axes []int
	for i, g := range gs {
		if g.Kernel != 1 || g.Stride != 1 || g.PadBegin != 0 || g.PadEnd != 0 {
			axes = append(axes, i)
		}
	}
	if len(axes) == 0 {
		copy(dst, src)
		return
	}
	cur, shape := src, slices.Clone(in)
	var scratch []float32
	for k := len(axes) - 1; k >= 0; k-- {
		a := axes[k] + 2
		w, err := engine.NewWindow(gs[axes[k]], countPad)
		if err != nil {
			panic(err) // runPool checked every axis's output size
		}
		outer, inner := numel(shape[:a]), numel(shape[a+1:])
		shape[a] = w.Out
		next := dst
		if k > 0 {
			next = x.g.arena.get(numel(shape))
		}
		engine.PoolAxis(pool, next, cur, outer, inner, w, isMax)
		if scratch != nil {
			x.g.arena.put(scratch)
		}
		cur, scratch = next, next
	}
}

// maxPoolIndices is MaxPool with its Indices output, straight from the
// definition: for each output, the first largest value of its window and
// its flat index in the input (row-major, or with the spatial axes
// column-major for storage_order 1).
func maxPoolIndices(dst []float32, idx []int64, src []float32, in, out []int, gs []engine.PoolGeom, colMajor bool) {
	r := len(gs)
	planes := in[0] * in[1]
	spatialIn, spatialOut := numel(in[2:]), numel(out[2:])
	// Strides of the spatial axes in the input, and in the index's order.
	stride := make([]int, r)
	istride := make([]int, r)
	acc := 1
	for i := r - 1; i >= 0; i-- {
		stride[i] = acc
		acc *= in[2+i]
	}
	acc = 1
	for i := 0; i < r; i++ {
		if colMajor {
			istride[i] = acc
			acc *= in[2+i]
		} else {
			istride[i] = stride[i]
		}
	}
	o := make([]int, r) // output position
	k := make([]int, r) // kernel tap
	for p := 0; p < planes; p++ {
		plane := src[p*spatialIn : (p+1)*spatialIn]
		clear(o)
		for j := 0; j < spatialOut; j++ {
			best, bestAt := float32(math.Inf(-1)), -1
			bestIdx := 0
			clear(k)
			for {
				off, ioff, inside := 0, 0, true
				for i, g := range gs {
					pos := o[i]*g.Stride - g.PadBegin + k[i]*g.Dilation
					if pos < 0 || pos >= g.In {
						inside = false
						break
					}
					off += pos * stride[i]
					ioff += pos * istride[i]
				}
				if inside && (bestAt < 0 || plane[off] > best) {
					best, bestAt, bestIdx = plane[off], off, ioff
				}
				i := r - 1
				for ; i >= 0; i-- {
					if k[i]++; k[i] < gs[i].Kernel {
						break
					}
					k[i] = 0
				}
				if i < 0 {
					break
				}
			}
			if bestAt < 0 {
				best, bestIdx = -math.MaxFloat32, 0
			}
			dst[p*spatialOut+j] = best
			idx[p*spatialOut+j] = int64(p*spatialIn + bestIdx)
			for i := r - 1; i >= 0; i-- {
				if o[i]++; o[i] < out[2+i] {
					break
				}
				o[i] = 0
			}
		}
	}
}

func runGlobalPool(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	if !t.IsFloat() || len(t.Shape) < 2 {
		return nil, x.errf(n, "input %q is %s %v; want a float (N, C, ...) tensor", n.in[0], typeName(t), t.Shape)
	}
	shape := slices.Clone(t.Shape)
	for i := 2; i < len(shape); i++ {
		shape[i] = 1
	}
	out := x.newFloat(shape)
	planes, m := t.Shape[0]*t.Shape[1], numel(t.Shape[2:])
	if x.dry || planes == 0 {
		return one(out, nil)
	}
	if m == 0 {
		return nil, x.errf(n, "input %q has shape %v: no values to pool", n.in[0], t.Shape)
	}
	isMax := n.op == "GlobalMaxPool"
	pool := poolFor(x.g.threads)
	parts := pool.PartsFor(planes * m)
	pool.Do(funcTask(func(part int) {
		p0, p1 := engine.Split(planes, part, parts, 1)
		for p := p0; p < p1; p++ {
			row := t.Data[p*m : (p+1)*m]
			if isMax {
				best := row[0]
				for _, v := range row[1:] {
					if v > best {
						best = v
					}
				}
				out.Data[p] = best
				continue
			}
			var s0, s1, s2, s3 float64
			i := 0
			for ; i+4 <= len(row); i += 4 {
				s0 += float64(row[i])
				s1 += float64(row[i+1])
				s2 += float64(row[i+2])
				s3 += float64(row[i+3])
			}
			for ; i < len(row); i++ {
				s0 += float64(row[i])
			}
			out.Data[p] = float32((s0 + s1 + s2 + s3) / float64(m))
		}
	}), parts)
	return one(out, nil)
}

// ---- Resize and Upsample ----

// resizeNode is a Resize or Upsample node's attributes and its tables per
// shape.
type resizeNode struct {
	spec       engine.ResizeSpec
	antialias  bool
	axes       []int64 // opset 18: the axes roi, scales and sizes cover
	keepAspect string
	upsample   bool // Upsample: scales must be ≥ 1
	attrScales []float32

	mu   sync.Mutex
	tabs map[string][]*engine.Resample
}

func checkResize(c *compiler, n *node) error {
	rn := &resizeNode{upsample: n.op == "Upsample"}
	mode := attrString(n, "mode", "nearest")
	if mode == "bilinear" { // Upsample-7's other name for linear
		mode = "linear"
	}
	if rn.upsample && mode == "cubic" {
		return c.unsupported(n, "mode", "mode=cubic: Upsample interpolates nearest or linear")
	}
	rn.spec = engine.ResizeSpec{Mode: mode, Coord: "asymmetric", Nearest: "simple"}
	if !rn.upsample && n.opset >= 11 {
		rn.spec.Coord = attrString(n, "coordinate_transformation_mode", "half_pixel")
		rn.spec.Nearest = attrString(n, "nearest_mode", "round_prefer_floor")
		rn.spec.CubicA = float64(attrFloat(n, "cubic_coeff_a", -0.75))
		rn.spec.Extrapolation = attrFloat(n, "extrapolation_value", 0)
		switch v := attrInt(n, "exclude_outside", 0); v {
		case 0, 1:
			rn.spec.ExcludeOutside = v == 1
		default:
			return c.errAttr(n, "exclude_outside", "exclude_outside=%d: want 0 or 1", v)
		}
		switch coord := rn.spec.Coord; {
		case coord == "tf_half_pixel_for_nn" && n.opset >= 13:
			return c.errAttr(n, "coordinate_transformation_mode", "coordinate_transformation_mode=tf_half_pixel_for_nn exists at opsets 11 and 12 only, the model uses %d", n.opset)
		case coord == "half_pixel_symmetric" && n.opset < 19:
			return c.errAttr(n, "coordinate_transformation_mode", "coordinate_transformation_mode=half_pixel_symmetric exists from opset 19, the model uses %d", n.opset)
		}
		switch v := attrInt(n, "antialias", 0); v {
		case 0, 1:
			rn.antialias = v == 1 && mode != "nearest" // no effect on nearest
		default:
			return c.errAttr(n, "antialias", "antialias=%d: want 0 or 1", v)
		}
		if a, ok := attrInts(n, "axes"); ok {
			rn.axes = a
		}
		rn.keepAspect = attrString(n, "keep_aspect_ratio_policy", "stretch")
	}
	switch {
	case rn.upsample && n.opset < 9:
		s, ok := n.attrs["scales"]
		if !ok || len(s.Floats) == 0 {
			return c.errAttr(n, "scales", "missing attribute scales")
		}
		if len(n.in) != 1 {
			return c.errf(n, "%d inputs: Upsample-7 takes one (scales is an attribute)", len(n.in))
		}
		rn.attrScales = s.Floats
	case rn.upsample || n.opset < 11:
		if len(n.in) != 2 || n.in[1] == "" {
			return c.errf(n, "%d inputs: %s-%d takes X and scales", len(n.in), n.op, n.opset)
		}
	case n.opset < 13:
		if len(n.in) < 3 || n.in[2] == "" {
			return c.errf(n, "Resize-11 needs its scales input (it may be an empty tensor when sizes is given)")
		}
	}
	n.conv = &convNode{resize: rn}
	return nil
}

// resizeAxis is one axis's geometry: what the tables are made for.
type resizeAxis struct {
	g   engine.ResampleGeom
	set bool // covered by scales/sizes (opset 18 axes), else unchanged
}

func runResize(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	rn := n.conv.resize
	rank := len(t.Shape)
	if !t.IsFloat() {
		return nil, x.unsupported(n, "", "input %q is %s: Resize of integer tensors is not supported", n.in[0], typeName(t))
	}
	if rank == 0 {
		return nil, x.errf(n, "input %q is a scalar", n.in[0])
	}
	// Which axes scales, sizes and roi cover.
	axes := make([]int, rank)
	for i := range axes {
		axes[i] = i
	}
	if rn.axes != nil {
		axes = axes[:0]
		for _, a := range rn.axes {
			ax, ok := normAxis(a, rank)
			if !ok || slices.Contains(axes, ax) {
				return nil, x.errf(n, "axes=%v: out of range or repeated for rank %d", rn.axes, rank)
			}
			axes = append(axes, ax)
		}
	}
	var scales []float64
	var sizes []int
	var roi []float64
	input := func(i int) *tensor.Tensor {
		if i < len(in) && in[i] != nil && numel(in[i].Shape) > 0 {
			return in[i]
		}
		return nil
	}
	floats := func(v *tensor.Tensor, what string) ([]float64, error) {
		if !v.IsFloat() || len(v.Shape) != 1 {
			return nil, x.errf(n, "%s must be a 1-D float tensor, is %s %v", what, typeName(v), v.Shape)
		}
		if v.Data == nil {
			return nil, errUnknown
		}
		f := make([]float64, len(v.Data))
		for i, s := range v.Data {
			f[i] = float64(s)
		}
		return f, nil
	}
	var err error
	switch {
	case rn.attrScales != nil:
		for _, s := range rn.attrScales {
			scales = append(scales, float64(s))
		}
	case rn.upsample || n.opset < 11:
		s := input(1)
		if s == nil {
			return nil, x.errf(n, "scales %q is empty", n.in[1])
		}
		if scales, err = floats(s, "scales"); err != nil {
			return nil, err
		}
	default:
		if s := input(2); s != nil {
			if scales, err = floats(s, "scales"); err != nil {
				return nil, err
			}
		}
		if s := input(3); s != nil {
			if s.IsFloat() || s.DType != tensor.Int64 {
				return nil, x.errf(n, "sizes must be int64, is %s", typeName(s))
			}
			if sizes, err = x.shapeInput(n, s, "sizes"); err != nil {
				return nil, err
			}
		}
		if (scales == nil) == (sizes == nil) {
			return nil, x.errf(n, "exactly one of scales and sizes must be given (non-empty)")
		}
		if rn.spec.Coord == "tf_crop_and_resize" {
			r := input(1)
			if r == nil {
				return nil, x.errf(n, "coordinate_transformation_mode=tf_crop_and_resize needs roi")
			}
			if roi, err = floats(r, "roi"); err != nil {
				return nil, err
			}
			if len(roi) != 2*len(axes) {
				return nil, x.errf(n, "roi has %d values, want %d (start and end for %d axes)", len(roi), 2*len(axes), len(axes))
			}
		}
	}
	if scales != nil && len(scales) != len(axes) {
		return nil, x.errf(n, "scales has %d values for %d axes of input %v", len(scales), len(axes), t.Shape)
	}
	if sizes != nil && len(sizes) != len(axes) {
		return nil, x.errf(n, "sizes has %d values for %d axes of input %v", len(sizes), len(axes), t.Shape)
	}
	geo := make([]resizeAxis, rank)
	for i := range geo {
		geo[i].g = engine.ResampleGeom{In: t.Shape[i], Out: t.Shape[i], Scale: 1, Exact: true, RoiEnd: 1}
	}
	if sizes != nil && rn.keepAspect != "stretch" {
		// One scale for every axis given: the largest that fits (not_larger)
		// or the smallest that covers (not_smaller); sizes rounded from it.
		common := math.Inf(1)
		if rn.keepAspect == "not_smaller" {
			common = 0
		}
		for k, a := range axes {
			s := float64(sizes[k]) / float64(t.Shape[a])
			if rn.keepAspect == "not_larger" {
				common = math.Min(common, s)
			} else {
				common = math.Max(common, s)
			}
		}
		scales, sizes = make([]float64, len(axes)), make([]int, len(axes))
		for k, a := range axes {
			scales[k] = common
			sizes[k] = int(math.Round(common * float64(t.Shape[a])))
		}
	}
	for k, a := range axes {
		g := &geo[a].g
		geo[a].set = true
		if roi != nil {
			g.RoiStart, g.RoiEnd = roi[k], roi[len(axes)+k]
		}
		if sizes != nil {
			g.Out, g.Exact = sizes[k], scales == nil
			if g.In > 0 {
				g.Scale = float64(g.Out) / float64(g.In)
			}
			if scales != nil {
				g.Scale = scales[k] // keep_aspect_ratio_policy's common scale
			}
			continue
		}
		s := scales[k]
		if !(s > 0) || math.IsInf(s, 0) {
			return nil, x.errf(n, "scales %v: each must be positive", scales)
		}
		if rn.upsample && s < 1 {
			return nil, x.errf(n, "scales %v: Upsample's scales must be at least 1", scales)
		}
		// floor(in·scale), for tf_crop_and_resize too: the spec's text
		// scales by the roi's extent as well, but its reference
		// implementation and ONNX Runtime do not.
		g.Scale, g.Exact = s, false
		out := math.Floor(float64(g.In) * s)
		if out > float64(maxValues) || out < 0 {
			return nil, x.errf(n, "scale %g of axis %d (size %d) gives %g values", s, a, g.In, out)
		}
		g.Out = int(out)
	}
	shape := make([]int, rank)
	for i, a := range geo {
		shape[i] = a.g.Out
	}
	if err := checkShape(shape); err != nil {
		return nil, x.errf(n, "%v", err)
	}
	if rn.antialias {
		for _, a := range geo {
			if a.g.Out < a.g.In || a.g.Scale < 1 {
				return nil, x.unsupported(n, "antialias", "antialias=1 when shrinking (axis %d → %d, scale %g) is not supported", a.g.In, a.g.Out, a.g.Scale)
			}
		}
	}
	out := x.newFloat(shape)
	if x.dry || numel(shape) == 0 {
		return one(out, nil)
	}
	if numel(t.Shape) == 0 {
		return nil, x.errf(n, "input %q of shape %v is empty; the output %v is not", n.in[0], t.Shape, shape)
	}
	tabs, err := rn.tables(geo)
	if err != nil {
		return nil, x.errf(n, "%v", err)
	}
	x.resizeSeparable(out.Data, t.Data, t.Shape, tabs)
	return one(out, nil)
}

// tables returns the tables of each axis for these geometries (nil for an
// axis left unchanged), made once per geometry.
func (rn *resizeNode) tables(geo []resizeAxis) ([]*engine.Resample, error) {
	var key strings.Builder
	for _, a := range geo {
		fmt.Fprintf(&key, "%d>%d*%v/%v,%v,%v;", a.g.In, a.g.Out, a.g.Scale, a.g.Exact, a.g.RoiStart, a.g.RoiEnd)
	}
	k := key.String()
	rn.mu.Lock()
	tabs, ok := rn.tabs[k]
	rn.mu.Unlock()
	if ok {
		return tabs, nil
	}
	tabs = make([]*engine.Resample, len(geo))
	for i, a := range geo {
		if !a.set {
			continue
		}
		r, err := engine.NewResample(a.g, rn.spec)
		if err != nil {
			return nil, err
		}
		if !r.Identity() {
			tabs[i] = r
		}
	}
	rn.mu.Lock()
	if rn.tabs == nil || len(rn.tabs) >= maxCachedGeometries {
		rn.tabs = map[string][]*engine.Resample{}
	}
	rn.tabs[k] = tabs
	rn.mu.Unlock()
	return tabs, nil
}

// resizeSeparable resizes src (shape in) along every axis with a table, the
// last first, through scratch buffers from the arena; then fills the
// positions tf_crop_and_resize maps outside the input.
func (x *exec) resizeSeparable(dst, src []float32, in []int, tabs []*engine.Resample) {
	pool := poolFor(x.g.threads)
	var axes []int
	for i, r := range tabs {
		if r != nil {
			axes = append(axes, i)
		}
	}
	if len(axes) == 0 {
		copy(dst, src)
		return
	}
	cur, shape := src, slices.Clone(in)
	var scratch []float32
	for k := len(axes) - 1; k >= 0; k-- {
		a := axes[k]
		r := tabs[a]
		outer, inner := numel(shape[:a]), numel(shape[a+1:])
		shape[a] = r.Out
		next := dst
		if k > 0 {
			next = x.g.arena.get(numel(shape))
		}
		engine.ResampleAxis(pool, next, cur, outer, inner, r)
		if scratch != nil {
			x.g.arena.put(scratch)
		}
		cur, scratch = next, next
	}
	for _, a := range axes {
		engine.FillOutside(dst, numel(shape[:a]), numel(shape[a+1:]), tabs[a])
	}
}

// ---- Pad ----

func checkPad(c *compiler, n *node) error {
	mode := attrString(n, "mode", "constant")
	if mode == "wrap" && n.opset < 19 {
		return c.errAttr(n, "mode", "mode=wrap exists from opset 19, the model uses %d", n.opset)
	}
	switch {
	case n.opset < 2:
		if !hasAttr(n, "paddings") {
			return c.errAttr(n, "paddings", "missing attribute paddings")
		}
	case n.opset < 11:
		if !hasAttr(n, "pads") {
			return c.errAttr(n, "pads", "missing attribute pads")
		}
	}
	if n.opset < 11 && len(n.in) != 1 {
		return c.errf(n, "%d inputs: Pad-%d takes one (pads is an attribute)", len(n.in), n.opset)
	}
	if n.opset >= 11 && (len(n.in) < 2 || n.in[1] == "") {
		return c.errf(n, "missing input pads")
	}
	if n.opset < 18 && len(n.in) > 3 {
		return c.errf(n, "%d inputs: axes is an input from opset 18", len(n.in))
	}
	return nil
}

func runPad(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	rank := len(t.Shape)
	mode := attrString(n, "mode", "constant")
	var pads []int64
	switch {
	case n.opset < 2:
		pads, _ = attrInts(n, "paddings")
	case n.opset < 11:
		pads, _ = attrInts(n, "pads")
	default:
		var err error
		if pads, err = x.ints(n, in[1], "pads"); err != nil {
			return nil, err
		}
	}
	axes := make([]int, rank)
	for i := range axes {
		axes[i] = i
	}
	if len(in) > 3 && in[3] != nil {
		a, err := x.ints(n, in[3], "axes")
		if err != nil {
			return nil, err
		}
		axes = axes[:0]
		for _, v := range a {
			ax, ok := normAxis(v, rank)
			if !ok || slices.Contains(axes, ax) {
				return nil, x.errf(n, "axes %v: out of range or repeated for rank %d", a, rank)
			}
			axes = append(axes, ax)
		}
	}
	if len(pads) != 2*len(axes) {
		return nil, x.errf(n, "pads %v: want %d values (begin and end for %d axes of input %v)", pads, 2*len(axes), len(axes), t.Shape)
	}
	begin, end := make([]int, rank), make([]int, rank)
	shape := make([]int, rank)
	for k, a := range axes {
		b, e := pads[k], pads[len(axes)+k]
		if b < -int64(maxValues) || b > int64(maxValues) || e < -int64(maxValues) || e > int64(maxValues) {
			return nil, x.errf(n, "pads %v out of range", pads)
		}
		begin[a], end[a] = int(b), int(e)
	}
	for i := range shape {
		shape[i] = t.Shape[i] + begin[i] + end[i]
		if shape[i] < 0 {
			return nil, x.errf(n, "pads %v remove more than the %d values of axis %d", pads, t.Shape[i], i)
		}
		// Edge, reflect and wrap read the (cropped) input: it must not be
		// empty where something is padded.
		if kept := t.Shape[i] - max(0, -begin[i]) - max(0, -end[i]); mode != "constant" && kept <= 0 && (begin[i] > 0 || end[i] > 0) {
			return nil, x.errf(n, "mode=%s pads axis %d, which has no values left to read", mode, i)
		}
	}
	if err := checkShape(shape); err != nil {
		return nil, x.errf(n, "%v", err)
	}
	out := x.like(t, shape)
	if !x.has(t) {
		out.Ints = nil
		return one(out, nil)
	}
	// The fill value: the constant_value input (opset 11+), else the value
	// attribute.
	var fill float64 = float64(attrFloat(n, "value", 0))
	if len(in) > 2 && in[2] != nil {
		f, ok, err := x.scalar(n, in[2], "constant_value")
		if err != nil {
			return nil, err
		}
		if !ok {
			out.Ints = nil
			return one(out, nil)
		}
		fill = f
	}
	maps := make([][]int, rank) // per axis: the input index of each output index, -1 for the fill
	for i := range maps {
		maps[i] = padMap(t.Shape[i], begin[i], end[i], mode)
	}
	if t.IsFloat() {
		padInto(out.Data, t.Data, t.Shape, shape, maps, float32(fill))
	} else {
		padInto(out.Ints, t.Ints, t.Shape, shape, maps, int64(fill))
	}
	return one(out, nil)
}

// padMap maps the output positions of one axis to input positions: the
// negative pads crop first, then the positive ones pad the cropped range
// by mode (−1: the constant).
func padMap(in, begin, end int, mode string) []int {
	lo, hi := max(0, -begin), in-max(0, -end) // the cropped range [lo, hi)
	b := max(0, begin)
	m := make([]int, hi-lo+b+max(0, end))
	n := hi - lo
	for o := range m {
		j := o - b // position in the cropped range
		switch {
		case j >= 0 && j < n:
		case mode == "edge":
			j = min(max(j, 0), n-1)
		case mode == "reflect":
			if n == 1 {
				j = 0
				break
			}
			period := 2 * (n - 1)
			j = ((j % period) + period) % period
			if j >= n {
				j = period - j
			}
		case mode == "wrap":
			j = ((j % n) + n) % n
		default:
			m[o] = -1
			continue
		}
		m[o] = lo + j
	}
	return m
}

// padInto writes src (shape in) padded into dst (shape out) through the
// per-axis maps, one output row (last axis) at a time.
func padInto[E float32 | int64](dst, src []E, in, out []int, maps [][]int, fill E) {
	rank := len(in)
	if rank == 0 {
		copy(dst, src)
		return
	}
	last := maps[rank-1]
	w := out[rank-1]
	if w == 0 {
		return
	}
	stride := make([]int, rank)
	acc := 1
	for i := rank - 1; i >= 0; i-- {
		stride[i] = acc
		acc *= in[i]
	}
	idx := make([]int, rank-1)
	for o := 0; o < len(dst); o += w {
		row := dst[o : o+w]
		off, constant := 0, false
		for i, p := range idx {
			s := maps[i][p]
			if s < 0 {
				constant = true
				break
			}
			off += s * stride[i]
		}
		if constant {
			for i := range row {
				row[i] = fill
			}
		} else {
			for i, s := range last {
				if s < 0 {
					row[i] = fill
				} else {
					row[i] = src[off+s]
				}
			}
		}
		for i := rank - 2; i >= 0; i-- {
			if idx[i]++; idx[i] < out[i] {
				break
			}
			idx[i] = 0
		}
	}
}

// ---- DepthToSpace and SpaceToDepth ----

func runDepthToSpace(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	bs64 := attrInt(n, "blocksize", 0)
	if len(t.Shape) != 4 {
		return nil, x.errf(n, "input %q has shape %v; want (N, C, H, W)", n.in[0], t.Shape)
	}
	if bs64 < 1 || bs64 > 1<<16 {
		return nil, x.errf(n, "blocksize=%d: want a positive block size", bs64)
	}
	bs := int(bs64)
	b, c, h, w := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	var shape []int
	toSpace := n.op == "DepthToSpace"
	crd := attrString(n, "mode", "DCR") == "CRD"
	if toSpace {
		if c%(bs*bs) != 0 {
			return nil, x.errf(n, "%d channels are not a multiple of blocksize² = %d", c, bs*bs)
		}
		shape = []int{b, c / (bs * bs), h * bs, w * bs}
	} else {
		if h%bs != 0 || w%bs != 0 {
			return nil, x.errf(n, "height %d and width %d must be multiples of blocksize %d", h, w, bs)
		}
		shape = []int{b, c * bs * bs, h / bs, w / bs}
	}
	if err := checkShape(shape); err != nil {
		return nil, x.errf(n, "%v", err)
	}
	out := x.like(t, shape)
	if !x.has(t) {
		out.Ints = nil
		return one(out, nil)
	}
	if t.IsFloat() {
		depthSpace(out.Data, t.Data, t.Shape, bs, toSpace, crd)
	} else {
		depthSpace(out.Ints, t.Ints, t.Shape, bs, toSpace, crd)
	}
	return one(out, nil)
}

// depthSpace moves blocks between channels and space. The space side is
// (b, c', h·bs, w·bs), the depth side (b, c'·bs², h, w) with channel
// (i·bs + j)·c' + ch (DCR, and SpaceToDepth) or ch·bs² + i·bs + j (CRD)
// for block row i, column j. shape is the input's.
func depthSpace[E any](dst, src []E, shape []int, bs int, toSpace, crd bool) {
	var b, cd, h, w int // depth-side sizes
	if toSpace {
		b, cd, h, w = shape[0], shape[1], shape[2], shape[3]
	} else {
		b, cd, h, w = shape[0], shape[1]*bs*bs, shape[2]/bs, shape[3]/bs
	}
	cs := cd / (bs * bs)
	W := w * bs
	for n := 0; n < b; n++ {
		for ch := 0; ch < cs; ch++ {
			for i := 0; i < bs; i++ {
				for j := 0; j < bs; j++ {
					dc := (i*bs+j)*cs + ch
					if crd {
						dc = ch*bs*bs + i*bs + j
					}
					depth := ((n*cd + dc) * h) * w
					space := (n*cs + ch) * h * bs * W
					for y := 0; y < h; y++ {
						drow := depth + y*w
						srow := space + (y*bs+i)*W + j
						if toSpace {
							for xx := 0; xx < w; xx++ {
								dst[srow+xx*bs] = src[drow+xx]
							}
						} else {
							for xx := 0; xx < w; xx++ {
								dst[drow+xx] = src[srow+xx*bs]
							}
						}
					}
				}
			}
		}
	}
}
