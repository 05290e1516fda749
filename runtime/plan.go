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
	// winoX is the input half in the Winograd domain, for a winoXH layer's
	// first step from a zero state when its 3×3 input has enough channels
	// that the transforms pay for themselves; nil otherwise (direct wx).
	winoX *ops.Winograd3x3
	// winoXH is the whole conv over cat(x, h) in the Winograd domain, for
	// kernels of 3 or 5 a side with enough hidden channels: a step then runs
	// one GEMM over all channels and one output transform, which is less work
	// than computing the input half ahead for all steps (even for a single
	// input channel, which adds one row to the GEMM's K). Its input channels
	// are, for each 3×3 block (nbh·nbw of them), x's channels, then for each
	// block h's channels; a block reads the padded image at its offset.
	winoXH   *ops.Winograd3x3
	nbh, nbw int // 3×3 blocks down and across
	eh, ew   int // zero rows and columns the blocks read past the padding
}

// winoSide reports whether a kernel side can run as Winograd blocks.
func winoSide(k int) bool { return k == 3 || k == 5 }

// blockWeights lays out wx (4·hidden, in, kh, kw) and wh (4·hidden, hidden,
// kh, kw) as the 3×3 weights of winoXH's input channels.
func (p *packedLayer) blockWeights(wx, wh []float32) []float32 {
	in, hd, kh, kw := p.cfg.InputDim, p.cfg.HiddenDim, p.cfg.KernelH, p.cfg.KernelW
	m, nb := 4*hd, p.nbh*p.nbw
	out := make([]float32, 0, m*nb*(in+hd)*9)
	for r := 0; r < m; r++ {
		for _, half := range []struct {
			w []float32
			c int
		}{{wx, in}, {wh, hd}} {
			for bi := 0; bi < p.nbh; bi++ {
				for bj := 0; bj < p.nbw; bj++ {
					for c := 0; c < half.c; c++ {
						k := half.w[(r*half.c+c)*kh*kw:]
						for u := 0; u < 3; u++ {
							for v := 0; v < 3; v++ {
								var g float32
								if ky, kx := 3*bi+u, 3*bj+v; ky < kh && kx < kw {
									g = k[ky*kw+kx]
								}
								out = append(out, g)
							}
						}
					}
				}
			}
		}
	}
	return out
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
	if !direct && hd >= winogradMinChannels && winoSide(kh) && winoSide(kw) {
		if kh == 3 && kw == 3 && in >= winogradMinChannels {
			p.winoX = ops.NewWinograd3x3(wx, 4*hd, in) // for a first step from a zero state
		}
		// A 5-wide side is cut into two 3-wide blocks, the kernel
		// zero-extended to 6: blocks·(16/4) multiplications per output
		// instead of kh·kw, at F(2×2,3×3)'s accuracy.
		p.nbh, p.nbw = (kh+2)/3, (kw+2)/3
		p.eh, p.ew = 3*p.nbh-kh, 3*p.nbw-kw
		p.winoXH = ops.NewWinograd3x3(p.blockWeights(wx, wh), 4*hd, p.nbh*p.nbw*(in+hd))
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

	gemm  gemmTask
	wino  winoTask
	srcs  []ops.WinoInput // winoXH's inputs: x blocks, then h blocks
	gates gateTask
	ws    [][]float32 // Winograd scratch, one per worker
}

func newLayerPlan(w *packedLayer, b, h, wd, maxT, threads int) *layerPlan {
	hd, in := w.cfg.HiddenDim, w.cfg.InputDim
	p := &layerPlan{w: w, b: b, h: h, wd: wd}
	p.hp, p.wp = h+2*w.ph+w.eh, wd+2*w.pw+w.ew
	p.s = p.hp * p.wp
	p.tc = min(maxT, p.maxChunk())
	p.ldg = p.tc * b * p.s
	// A Winograd block at column offset 3·bj reads its view's last row up to
	// 3·bj values past a frame; the slack keeps that inside the buffer.
	slack := 3 * max(0, w.nbw-1)
	p.xpad = make([]float32, in*p.ldg+slack)
	p.gx = make([]float32, 4*hd*p.ldg)
	p.hpad = make([]float32, hd*b*p.s+slack)
	p.srcs = make([]ops.WinoInput, 0, 2*w.nbh*w.nbw)
	p.cstate = make([]float32, hd*b*h*wd)
	p.offsX = offsets(in, w.cfg.KernelH, w.cfg.KernelW, p.wp, p.ldg)
	p.offsH = offsets(hd, w.cfg.KernelH, w.cfg.KernelW, p.wp, b*p.s)
	wsLen := 0
	if w.winoX != nil {
		wsLen = w.winoX.Workspace(p.tc*b, h, wd)
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
