package runtime

import (
	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/ops"
)

// canonical is the gate order the kernels use; weights are permuted into it
// once at load.
const canonical = convlstm.GatesIFOG

// packedLayer is a layer's weights, split into the input half (columns
// 0..In-1 of the conv over cat(x, h)) and the recurrent half, with rows
// permuted to the canonical gate order and packed for ops.ConvGemm.
type packedLayer struct {
	cfg    convlstm.LayerConfig
	wx, wh *ops.PackedA
	bias   []float32 // canonical order; nil without bias
	ph, pw int       // padding k//2
	// winoX and winoH are the same halves in the Winograd domain, for 3×3
	// kernels with enough channels that the transforms pay for themselves;
	// nil where the direct convolution is used.
	winoX, winoH *ops.Winograd3x3
	// winoXH is the whole conv over cat(x, h) in the Winograd domain, set
	// when the recurrent half is Winograd: a step then runs one GEMM over all
	// channels and one output transform instead of two, which is less work
	// than computing the input half ahead for all steps (even for a single
	// input channel, which adds one row to the GEMM's K).
	winoXH *ops.Winograd3x3
}

// winogradMinChannels is the fewest input channels for which a 3×3 half
// runs as Winograd F(2×2, 3×3): below it the transforms cost more than the
// 2.25× fewer multiplications save.
const winogradMinChannels = 16

func packLayer(l convlstm.Layer, order convlstm.GateOrder, direct bool) *packedLayer {
	in, hd, kh, kw := l.InputDim, l.HiddenDim, l.KernelH, l.KernelW
	taps := kh * kw
	cols := (in + hd) * taps
	wx := make([]float32, 4*hd*in*taps)
	wh := make([]float32, 4*hd*hd*taps)
	var bias []float32
	if l.HasBias {
		bias = make([]float32, 4*hd)
	}
	for g := 0; g < 4; g++ {
		src := order.Block(canonical[g])
		for ch := 0; ch < hd; ch++ {
			dr, sr := g*hd+ch, src*hd+ch
			row := l.Weight[sr*cols : (sr+1)*cols]
			copy(wx[dr*in*taps:(dr+1)*in*taps], row[:in*taps])
			copy(wh[dr*hd*taps:(dr+1)*hd*taps], row[in*taps:])
			if bias != nil {
				bias[dr] = l.Bias[sr]
			}
		}
	}
	p := &packedLayer{
		cfg:  l.LayerConfig,
		wx:   ops.PackA(wx, 4*hd, in*taps),
		wh:   ops.PackA(wh, 4*hd, hd*taps),
		bias: bias,
		ph:   kh / 2,
		pw:   kw / 2,
	}
	if kh == 3 && kw == 3 && !direct {
		if in >= winogradMinChannels {
			p.winoX = ops.NewWinograd3x3(wx, 4*hd, in)
		}
		if hd >= winogradMinChannels {
			p.winoH = ops.NewWinograd3x3(wh, 4*hd, hd)
		}
		if p.winoH != nil {
			xh := make([]float32, 0, 4*hd*cols)
			for r := 0; r < 4*hd; r++ {
				xh = append(xh, wx[r*in*taps:(r+1)*in*taps]...)
				xh = append(xh, wh[r*hd*taps:(r+1)*hd*taps]...)
			}
			p.winoXH = ops.NewWinograd3x3(xh, 4*hd, in+hd)
		}
	}
	return p
}

// offsets lists, for every tap (channel c, ky, kx) in the order of the
// packed weights' columns, its offset in a padded channel-major buffer whose
// channels are chanStride apart and whose rows are wp wide.
func offsets(channels, kh, kw, wp, chanStride int) []int32 {
	o := make([]int32, 0, channels*kh*kw)
	for c := 0; c < channels; c++ {
		for ky := 0; ky < kh; ky++ {
			for kx := 0; kx < kw; kx++ {
				o = append(o, int32(c*chanStride+ky*wp+kx))
			}
		}
	}
	return o
}

// gxBudget bounds the input-half gate buffer (floats) of one layer; the time
// loop is cut into chunks of at most that many frames' gates.
const gxBudget = 16 << 20

// layerPlan holds one layer's geometry and workspaces for a batch size and
// image size: the padded input frames of a time chunk and their gates, the
// padded hidden state and the cell state.
//
// Padded layout: a frame is hp×wp (the image with k//2 zeros around it);
// buffers are channel-major, [channel][frame][hp][wp]. A GEMM output column
// j = frame·s + y·wp + x is the pixel (y, x) of that frame; the columns of
// padding positions are computed and never read.
type layerPlan struct {
	w            *packedLayer
	b, h, wd     int // batch, image height and width
	hp, wp, s    int // padded height, width, frame size
	tc           int // frames of time per chunk
	xpad, gx     []float32
	hpad, cstate []float32
	offsX, offsH []int32
	ldg          int // row stride of gx = tc·b·s
	nStep        int // GEMM columns that cover one step's b frames

	gemm  gemmTask
	wino  winoTask
	gates gateTask
	ws    [][]float32 // Winograd scratch, one per worker
}

func newLayerPlan(w *packedLayer, b, h, wd, maxT, threads int) *layerPlan {
	hd, in := w.cfg.HiddenDim, w.cfg.InputDim
	p := &layerPlan{w: w, b: b, h: h, wd: wd}
	p.hp, p.wp = h+2*w.ph, wd+2*w.pw
	p.s = p.hp * p.wp
	p.tc = min(maxT, p.maxChunk())
	p.ldg = p.tc * b * p.s
	p.xpad = make([]float32, in*p.ldg)
	p.gx = make([]float32, 4*hd*p.ldg)
	p.hpad = make([]float32, hd*b*p.s)
	p.cstate = make([]float32, hd*b*h*wd)
	p.offsX = offsets(in, w.cfg.KernelH, w.cfg.KernelW, p.wp, p.ldg)
	p.offsH = offsets(hd, w.cfg.KernelH, w.cfg.KernelW, p.wp, b*p.s)
	p.nStep = p.columns(b)
	wsLen := 0
	if w.winoX != nil {
		wsLen = w.winoX.Workspace(p.tc*b, h, wd)
	}
	if w.winoH != nil {
		wsLen = max(wsLen, w.winoH.Workspace(b, h, wd))
	}
	if w.winoXH != nil {
		wsLen = max(wsLen, w.winoXH.Workspace(b, h, wd))
	}
	if wsLen > 0 {
		p.ws = make([][]float32, threads)
		for i := range p.ws {
			p.ws[i] = make([]float32, wsLen)
		}
	}
	return p
}

// maxChunk is the most time steps whose input-half gates fit the budget.
func (p *layerPlan) maxChunk() int {
	return max(1, gxBudget/(4*p.w.cfg.HiddenDim*p.b*p.s))
}

// columns is the number of GEMM columns that cover frames whole frames: up
// to the last real pixel of the last frame.
func (p *layerPlan) columns(frames int) int {
	return (frames-1)*p.s + (p.h-1)*p.wp + p.wd
}
