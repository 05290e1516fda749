package graph

import (
	"math"
	"sync"

	"github.com/convlstm-go/convlstm-go/ops"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// convPlan is a 2-D Conv (stride 1, dilation 1, one group: what ConvLSTM
// cells use) with its weights packed once for ops.ConvGemm.
type convPlan struct {
	a                    *ops.PackedA
	bias                 []float32
	m, c, kh, kw         int
	pt, pl, pb, pr       int // pads: top, left, bottom, right
	weightName, biasName string
	parts                bool // inputs are a fused Concat's parts (along channels)
	// wino is the Winograd F(2×2, 3×3) form of a 3×3, pad-1 weight with
	// enough input channels: 16/36 of the direct method's multiplies, and
	// the same output layout as the offset GEMM (rows of stride wp).
	wino *ops.Winograd3x3
}

// winogradMinChannels is the fewest input channels for which a Conv uses
// Winograd; below it the transforms cost more than they save. (Package
// runtime uses 16; the shared engine will decide in one place.)
const winogradMinChannels = 8

// setPads records the pads and, for a 3×3 pad-1 kernel, prepares Winograd.
func (plan *convPlan) setPads(pads [4]int, w []float32) {
	plan.pt, plan.pl, plan.pb, plan.pr = pads[0], pads[1], pads[2], pads[3]
	if plan.kh == 3 && plan.kw == 3 && pads == [4]int{1, 1, 1, 1} && plan.c >= winogradMinChannels && w != nil {
		plan.wino = ops.NewWinograd3x3(w, plan.m, plan.c)
	}
}

// convAttrs checks a Conv node's attributes against the weight shape and
// returns the pads (top, left, bottom, right).
func (c *compiler) convAttrs(n *node, wshape []int) ([4]int, error) {
	var pads [4]int
	if len(wshape) != 4 {
		return pads, c.errf(n, "weight has shape %v; only 2-D convolutions (weights of rank 4) are supported", wshape)
	}
	if g := attrInt(n, "group", 1); g != 1 {
		return pads, c.errf(n, "group=%d: only group=1 is supported (ConvLSTM convolutions are dense)", g)
	}
	for _, name := range []string{"strides", "dilations"} {
		if v, ok := attrInts(n, name); ok {
			for _, x := range v {
				if x != 1 {
					return pads, c.errf(n, "%s=%v: only 1 is supported (ConvLSTM keeps the image size)", name, v)
				}
			}
		}
	}
	if ks, ok := attrInts(n, "kernel_shape"); ok {
		if len(ks) != 2 || int(ks[0]) != wshape[2] || int(ks[1]) != wshape[3] {
			return pads, c.errf(n, "kernel_shape %v does not match the weight's %v", ks, wshape[2:])
		}
	}
	ap := "NOTSET"
	if a := n.attrs["auto_pad"]; a != nil {
		ap = string(a.S)
	}
	switch ap {
	case "NOTSET", "":
		if p, ok := attrInts(n, "pads"); ok {
			if len(p) != 4 {
				return pads, c.errf(n, "pads %v: want 4 values for a 2-D convolution", p)
			}
			for _, x := range p {
				if x < 0 || x > 1024 {
					return pads, c.errf(n, "pads %v: want values in [0, 1024]", p)
				}
			}
			// ONNX order: y_begin, x_begin, y_end, x_end.
			pads = [4]int{int(p[0]), int(p[1]), int(p[2]), int(p[3])}
		}
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		// Stride 1: total padding k-1, the odd pixel at the end (UPPER) or start.
		th, tw := wshape[2]-1, wshape[3]-1
		if ap == "SAME_UPPER" {
			pads = [4]int{th / 2, tw / 2, th - th/2, tw - tw/2}
		} else {
			pads = [4]int{th - th/2, tw - tw/2, th / 2, tw / 2}
		}
	default:
		return pads, c.errf(n, "auto_pad %q is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER", ap)
	}
	return pads, nil
}

// prepareConv packs the weights of a Conv whose weight (and bias) are
// constants. A Conv with computed weights is planned at run time.
func (c *compiler) prepareConv(n *node, p *program) error {
	w := p.constant(n.in[1])
	if w == nil {
		return nil
	}
	var b *tensor.Tensor
	if len(n.in) > 2 && n.in[2] != "" {
		if b = p.constant(n.in[2]); b == nil {
			return nil
		}
	}
	plan, err := newConvPlan(n, w, b, func(format string, args ...any) error { return c.errf(n, format, args...) })
	if err != nil {
		return err
	}
	pads, err := c.convAttrs(n, w.Shape)
	if err != nil {
		return err
	}
	plan.setPads(pads, w.Data)
	n.conv = plan
	return nil
}

func newConvPlan(n *node, w, b *tensor.Tensor, errf func(string, ...any) error) (*convPlan, error) {
	if !w.IsFloat() || len(w.Shape) != 4 {
		return nil, errf("weight %q must be a float tensor of rank 4, is %s %v", n.in[1], typeName(w), w.Shape)
	}
	if w.Data == nil {
		return nil, errf("weight %q has no data", n.in[1])
	}
	m, cin, kh, kw := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	if m < 1 || cin < 1 || kh < 1 || kw < 1 || len(w.Data) != m*cin*kh*kw {
		return nil, errf("weight %q has shape %v with %d values", n.in[1], w.Shape, len(w.Data))
	}
	plan := &convPlan{a: ops.PackA(w.Data, m, cin*kh*kw), m: m, c: cin, kh: kh, kw: kw, weightName: n.in[1]}
	if b != nil {
		if !b.IsFloat() || len(b.Shape) != 1 || b.Shape[0] != m || len(b.Data) != m {
			return nil, errf("bias %q has shape %v, want (%d,)", n.in[2], b.Shape, m)
		}
		plan.bias = b.Data
		plan.biasName = n.in[2]
	}
	return plan, nil
}

// conv runs a Conv node: x is (N, C, H, W). A Conv fused with the Concat
// that fed it (plan.parts) takes the Concat's inputs and reads them straight
// into its padded buffer.
func (x *exec) conv(n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	plan := n.conv
	xs := in[:1]
	if plan == nil {
		xin, w := in[0], in[1]
		var b *tensor.Tensor
		if len(in) > 2 {
			b = in[2]
		}
		c := &compiler{file: x.g.File}
		var err error
		if x.dry {
			// Shapes only: check attributes against the weight's shape.
			pads, err := c.convAttrs(n, w.Shape)
			if err != nil {
				return nil, err
			}
			if len(xin.Shape) != 4 || !xin.IsFloat() || xin.Shape[1] != w.Shape[1] {
				return nil, x.errf(n, "input has shape %v, want (N, %d, H, W) float", xin.Shape, w.Shape[1])
			}
			ho := xin.Shape[2] + pads[0] + pads[2] - w.Shape[2] + 1
			wo := xin.Shape[3] + pads[1] + pads[3] - w.Shape[3] + 1
			if ho < 1 || wo < 1 {
				return nil, x.errf(n, "input %v with pads %v is smaller than the kernel %v", xin.Shape, pads, w.Shape[2:])
			}
			return one(x.newFloat([]int{xin.Shape[0], w.Shape[0], ho, wo}), nil)
		}
		plan, err = newConvPlan(n, w, b, func(format string, args ...any) error { return x.errf(n, format, args...) })
		if err != nil {
			return nil, err
		}
		pads, err := c.convAttrs(n, w.Shape)
		if err != nil {
			return nil, err
		}
		// Weights computed at run time: plain offset GEMM, no Winograd
		// transform per call.
		plan.setPads(pads, nil)
	} else if plan.parts {
		xs = in
	}
	g, err := x.convGeometry(n, plan, xs)
	if err != nil {
		return nil, err
	}
	out := x.newFloat([]int{g.n, plan.m, g.ho, g.wo})
	if x.dry {
		return one(out, nil)
	}
	offs := plan.offsets(g)
	buf := getScratch(g.c*g.hp*g.wp + plan.kw)
	tmp := getScratch(plan.m * g.ncol)
	defer putScratch(buf)
	defer putScratch(tmp)
	for b := 0; b < g.n; b++ {
		x.convImage(plan, g, xs, b, buf, tmp, offs)
		dst := out.Data[b*plan.m*g.ho*g.wo : (b+1)*plan.m*g.ho*g.wo]
		for i := 0; i < plan.m; i++ {
			for y := 0; y < g.ho; y++ {
				copy(dst[(i*g.ho+y)*g.wo:(i*g.ho+y+1)*g.wo], tmp[i*g.ncol+y*g.wp:i*g.ncol+y*g.wp+g.wo])
			}
		}
	}
	return one(out, nil)
}

// convGeom is the geometry of one Conv run: batch, input channels and
// size, padded size, output size, and output columns (ho rows of stride wp).
type convGeom struct {
	n, c, h, w, hp, wp, ho, wo, ncol int
}

// convGeometry checks the data inputs: one (N, C, H, W) tensor, or the
// parts of a fused channel Concat, which must agree on N, H and W.
func (x *exec) convGeometry(n *node, plan *convPlan, xs []*tensor.Tensor) (convGeom, error) {
	var g convGeom
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
	if g.c != plan.c {
		return g, x.errf(n, "input has %d channels, weight %q wants %d", g.c, plan.weightName, plan.c)
	}
	g.hp, g.wp = g.h+plan.pt+plan.pb, g.w+plan.pl+plan.pr
	g.ho, g.wo = g.hp-plan.kh+1, g.wp-plan.kw+1
	if g.ho < 1 || g.wo < 1 {
		return g, x.errf(n, "input %d×%d with pads %d,%d,%d,%d is smaller than the %d×%d kernel", g.h, g.w, plan.pt, plan.pl, plan.pb, plan.pr, plan.kh, plan.kw)
	}
	if int64(g.c)*int64(g.hp)*int64(g.wp)+int64(plan.kw) > min(math.MaxInt32, int64(maxValues)) {
		return g, x.errf(n, "padded input of %d×%d×%d values is too large (32-bit offsets, at most %d values)", g.c, g.hp, g.wp, min(math.MaxInt32, int64(maxValues)))
	}
	if int64(plan.m)*int64(g.ho)*int64(g.wp) > int64(maxValues) {
		return g, x.errf(n, "output of %d×%d×%d values is too large", plan.m, g.ho, g.wp)
	}
	g.ncol = g.ho * g.wp
	return g, nil
}

// offsets of the taps in the padded, channel-major input: output column
// j = y·wp + x runs over padded rows, and the last kw-1 columns of each row
// are computed and dropped.
func (plan *convPlan) offsets(g convGeom) []int32 {
	offs := make([]int32, 0, g.c*plan.kh*plan.kw)
	for c := 0; c < g.c; c++ {
		for ky := 0; ky < plan.kh; ky++ {
			for kx := 0; kx < plan.kw; kx++ {
				offs = append(offs, int32(c*g.hp*g.wp+ky*g.wp+kx))
			}
		}
	}
	return offs
}

// convImage computes image b into tmp: plan.m rows of g.ncol columns. buf
// holds g.c·hp·wp + kw values (kw of slack: the last row's dropped columns
// read past the image); only its padding is cleared, the rest is copied.
func (x *exec) convImage(plan *convPlan, g convGeom, xs []*tensor.Tensor, b int, buf, tmp []float32, offs []int32) {
	plane := g.hp * g.wp
	c0 := 0
	for _, t := range xs {
		cx := t.Shape[1]
		src := t.Data[b*cx*g.h*g.w : (b+1)*cx*g.h*g.w]
		for c := 0; c < cx; c++ {
			pl := buf[(c0+c)*plane : (c0+c+1)*plane]
			clear(pl[:plan.pt*g.wp])
			clear(pl[(plan.pt+g.h)*g.wp:])
			for y := 0; y < g.h; y++ {
				row := pl[(y+plan.pt)*g.wp : (y+plan.pt+1)*g.wp]
				clear(row[:plan.pl])
				copy(row[plan.pl:], src[(c*g.h+y)*g.w:(c*g.h+y+1)*g.w])
				clear(row[plan.pl+g.w:])
			}
		}
		c0 += cx
	}
	clear(buf[g.c*plane:])
	if plan.wino != nil {
		x.winograd(tmp, g, plan, buf)
		return
	}
	x.gemm(tmp, g.ncol, plan, buf, offs)
}

// winograd runs plan.wino over one padded image, split into parts between
// threads (each part's outputs do not depend on the split).
func (x *exec) winograd(tmp []float32, g convGeom, plan *convPlan, buf []float32) {
	w := plan.wino
	parts := x.g.threads
	if g.ncol*plan.m*plan.c*9 < 1<<18 {
		parts = 1
	}
	plane := g.hp * g.wp
	ws := w.Workspace(1, g.h, g.w)
	parallel(parts, func(part int) {
		scr := getScratch(ws)
		defer putScratch(scr)
		w.Conv(tmp, g.ncol, plan.bias, buf, plane, 1, g.h, g.w, g.wp, plane, false, scr, part, parts)
	})
}

// gemmChunk is how many output columns one ConvGemm call covers. The taps
// of a column block read about C·(kh·wp + chunk) input values; keeping that
// in L2 across all the weight panels is worth more than long calls.
var gemmChunk = 512

// gemm splits the columns between threads, and each thread's share into
// cache-sized blocks; each column's sum does not depend on the split, so
// results are identical for any thread count.
func (x *exec) gemm(tmp []float32, ncol int, plan *convPlan, buf []float32, offs []int32) {
	threads := x.g.threads
	work := ncol * plan.m * len(offs)
	if work < 1<<16 || threads < 2 {
		threads = 1
	}
	per := (ncol + threads - 1) / threads
	per = (per + 15) &^ 15
	parts := (ncol + per - 1) / per
	parallel(parts, func(part int) {
		j0, j1 := part*per, min((part+1)*per, ncol)
		for j := j0; j < j1; j += gemmChunk {
			w := min(gemmChunk, j1-j)
			ops.ConvGemm(tmp[j:], ncol, plan.a, plan.bias, buf[j:], offs, w, false)
		}
	})
}

// scratch buffers for Conv (padded input, padded-stride output), reused
// across nodes and steps: an unrolled graph runs a Conv per cell and step,
// and allocating them each time costs more than the zeroing we need anyway.
var scratch sync.Pool

func getScratch(n int) []float32 {
	if p, ok := scratch.Get().(*[]float32); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]float32, n)
}

func putScratch(s []float32) {
	scratch.Put(&s)
}
