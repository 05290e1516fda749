package runtime

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// naiveForward is the ConvLSTM_pytorch forward written as plainly as
// possible, in float64: conv over cat(x, h) with k//2 zero padding, split in
// the model's gate order, σ/tanh, c = f*c + i*g, h = o*tanh(c). Batch-first.
func naiveForward(m *convlstm.Model, x *tensor.Tensor) (out []float64, hs, cs [][]float64) {
	B, T, H, W := x.Shape[0], x.Shape[1], x.Shape[3], x.Shape[4]
	cur := make([]float64, len(x.Data))
	for i, v := range x.Data {
		cur[i] = float64(v)
	}
	curC := x.Shape[2]
	for _, l := range m.Layers {
		hd, in, kh, kw := l.HiddenDim, l.InputDim, l.KernelH, l.KernelW
		next := make([]float64, B*T*hd*H*W)
		h := make([]float64, B*hd*H*W)
		c := make([]float64, B*hd*H*W)
		for t := 0; t < T; t++ {
			nh := make([]float64, len(h))
			for b := 0; b < B; b++ {
				// combined(ch, y, x) = x[b,t,ch] for ch < in, else h[b, ch-in]
				comb := func(ch, y, xx int) float64 {
					if y < 0 || y >= H || xx < 0 || xx >= W {
						return 0
					}
					if ch < in {
						return cur[(((b*T+t)*curC+ch)*H+y)*W+xx]
					}
					return h[((b*hd+ch-in)*H+y)*W+xx]
				}
				for y := 0; y < H; y++ {
					for xx := 0; xx < W; xx++ {
						var g [4][]float64
						for blk := 0; blk < 4; blk++ {
							g[blk] = make([]float64, hd)
						}
						for co := 0; co < 4*hd; co++ {
							s := 0.0
							if l.HasBias {
								s = float64(l.Bias[co])
							}
							for ci := 0; ci < in+hd; ci++ {
								for ky := 0; ky < kh; ky++ {
									for kx := 0; kx < kw; kx++ {
										s += float64(l.Weight[((co*(in+hd)+ci)*kh+ky)*kw+kx]) * comb(ci, y+ky-kh/2, xx+kx-kw/2)
									}
								}
							}
							g[co/hd][co%hd] = s
						}
						sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
						for ch := 0; ch < hd; ch++ {
							i := sig(g[m.Gates.Block('i')][ch])
							f := sig(g[m.Gates.Block('f')][ch])
							o := sig(g[m.Gates.Block('o')][ch])
							gg := math.Tanh(g[m.Gates.Block('g')][ch])
							k := ((b*hd+ch)*H+y)*W + xx
							c[k] = f*c[k] + i*gg
							nh[k] = o * math.Tanh(c[k])
							next[(((b*T+t)*hd+ch)*H+y)*W+xx] = nh[k]
						}
					}
				}
			}
			h = nh
		}
		hs = append(hs, h)
		cs = append(cs, c)
		cur, curC = next, hd
	}
	return cur, hs, cs
}

func randomModel(rng *rand.Rand, in int, hidden []int, kernels [][2]int, bias bool, gates convlstm.GateOrder) *convlstm.Model {
	m := &convlstm.Model{Gates: gates}
	for i, hd := range hidden {
		kh, kw := kernels[i][0], kernels[i][1]
		l := convlstm.Layer{LayerConfig: convlstm.LayerConfig{InputDim: in, HiddenDim: hd, KernelH: kh, KernelW: kw, HasBias: bias}}
		bound := 1 / math.Sqrt(float64((in+hd)*kh*kw))
		l.Weight = make([]float32, 4*hd*(in+hd)*kh*kw)
		for j := range l.Weight {
			l.Weight[j] = float32((rng.Float64()*2 - 1) * bound)
		}
		if bias {
			l.Bias = make([]float32, 4*hd)
			for j := range l.Bias {
				l.Bias[j] = float32((rng.Float64()*2 - 1) * bound)
			}
		}
		m.Layers = append(m.Layers, l)
		in = hd
	}
	return m
}

func randomTensor(rng *rand.Rand, shape ...int) *tensor.Tensor {
	t := &tensor.Tensor{Shape: shape, DType: "float32"}
	t.Data = make([]float32, t.NumElements())
	for i := range t.Data {
		t.Data[i] = float32(rng.NormFloat64())
	}
	return t
}

func maxErr(got []float32, want []float64) (float64, bool) {
	worst, ok := 0.0, true
	for i := range want {
		d := math.Abs(float64(got[i]) - want[i])
		worst = max(worst, d)
		if !(d <= 1e-5+1e-5*math.Abs(want[i])) {
			ok = false
		}
	}
	return worst, ok
}

func TestForwardMatchesNaive(t *testing.T) {
	cases := []struct {
		in      int
		hidden  []int
		kernels [][2]int
		bias    bool
		gates   convlstm.GateOrder
		B, T    int
		H, W    int
	}{
		{1, []int{3}, [][2]int{{3, 3}}, true, "ifog", 1, 3, 5, 6},
		{2, []int{4, 3}, [][2]int{{5, 5}, {3, 3}}, true, "fiog", 2, 3, 7, 4},
		{3, []int{5}, [][2]int{{3, 5}}, false, "ifgo", 1, 2, 4, 9},
		{2, []int{9, 2, 3}, [][2]int{{1, 1}, {1, 3}, {3, 1}}, true, "gofi", 3, 2, 3, 3},
		{1, []int{2}, [][2]int{{7, 7}}, true, "ifog", 1, 2, 1, 1},
		// 3×3 with 16+ channels: both halves run as Winograd.
		{16, []int{16, 17}, [][2]int{{3, 3}, {3, 3}}, true, "ifog", 2, 3, 7, 5},
		{9, []int{16}, [][2]int{{3, 3}}, false, "fiog", 1, 4, 1, 9},
		// 5-wide kernels with 16+ hidden channels: Winograd in 3×3 blocks.
		{1, []int{16}, [][2]int{{5, 5}}, true, "ifog", 2, 3, 7, 6},
		{16, []int{16, 17}, [][2]int{{5, 3}, {3, 5}}, true, "ogif", 1, 3, 5, 8},
		{2, []int{18}, [][2]int{{5, 5}}, true, "ifog", 1, 2, 1, 2},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("in%d_h%v_k%v_%s_B%dT%d_%dx%d", tc.in, tc.hidden, tc.kernels, tc.gates, tc.B, tc.T, tc.H, tc.W)
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(1))
			m := randomModel(rng, tc.in, tc.hidden, tc.kernels, tc.bias, tc.gates)
			x := randomTensor(rng, tc.B, tc.T, tc.in, tc.H, tc.W)
			wantOut, wantH, wantC := naiveForward(m, x)
			for _, o := range []Options{{Threads: 1}, {Threads: 2}, {Threads: 2, Direct: true}} {
				threads := o.Threads
				r, err := New(m, o)
				if err != nil {
					t.Fatal(err)
				}
				res, err := r.Forward(x, ForwardOptions{})
				r.Close()
				if err != nil {
					t.Fatal(err)
				}
				if e, ok := maxErr(res.Output.Data, wantOut); !ok {
					t.Errorf("threads %d: output max abs err %.3g", threads, e)
				}
				for l := range m.Layers {
					if e, ok := maxErr(res.Final[l].H.Data, wantH[l]); !ok {
						t.Errorf("threads %d: h_%d max abs err %.3g", threads, l, e)
					}
					if e, ok := maxErr(res.Final[l].C.Data, wantC[l]); !ok {
						t.Errorf("threads %d: c_%d max abs err %.3g", threads, l, e)
					}
				}
			}
		})
	}
}

// A sequence run at once, run frame by frame through a Stream, run as two
// halves with the state carried, and run time-first must all agree exactly,
// and so must every thread count. In the second model every layer's
// stream step reads the previous layer's h where its plan keeps it
// (CellPlan.StepAfter), also with bf16 convolutions; in the first, the
// kernels differ and the layers copy.
func TestStreamingAndLayoutsAgree(t *testing.T) {
	for _, tc := range []struct {
		hidden  []int
		kernels [][2]int
		chained []bool
		prec    engine.Precision
	}{
		{[]int{16, 8}, [][2]int{{3, 3}, {5, 3}}, []bool{false, false}, engine.Float32},
		{[]int{16, 16, 8}, [][2]int{{3, 3}, {3, 3}, {3, 3}}, []bool{true, true, false}, engine.Float32},
		{[]int{16, 16, 8}, [][2]int{{3, 3}, {3, 3}, {3, 3}}, []bool{true, true, false}, engine.BFloat16},
	} {
		t.Run(fmt.Sprint(tc.hidden, tc.prec), func(t *testing.T) {
			testStreamingAndLayouts(t, tc.hidden, tc.kernels, tc.chained, tc.prec)
		})
	}
}

func testStreamingAndLayouts(t *testing.T, hidden []int, kernels [][2]int, chained []bool, prec engine.Precision) {
	rng := rand.New(rand.NewSource(2))
	m := randomModel(rng, 3, hidden, kernels, true, "ifog")
	B, T, C, H, W := 2, 5, 3, 12, 10
	x := randomTensor(rng, B, T, C, H, W)
	r1, _ := New(m, Options{Threads: 1, Precision: prec})
	defer r1.Close()
	full, err := r1.Forward(x, ForwardOptions{AllLayers: true})
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := New(m, Options{Threads: 2, Precision: prec})
	defer r2.Close()
	full2, _ := r2.Forward(x, ForwardOptions{})
	assertSame(t, "threads 2 vs 1: output", full2.Output.Data, full.Output.Data)

	frame := func(t0 int) *tensor.Tensor {
		f := &tensor.Tensor{Shape: []int{B, C, H, W}, Data: make([]float32, B*C*H*W)}
		for b := 0; b < B; b++ {
			copy(f.Data[b*C*H*W:(b+1)*C*H*W], x.Data[(b*T+t0)*C*H*W:(b*T+t0+1)*C*H*W])
		}
		return f
	}
	s, err := r2.NewStream(B, H, W, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.chained) != fmt.Sprint(chained) {
		t.Fatalf("stream layers chained %v, want %v", s.chained, chained)
	}
	hd := m.Layers[len(m.Layers)-1].HiddenDim
	for step := 0; step < T; step++ {
		h, err := s.Step(frame(step))
		if err != nil {
			t.Fatal(err)
		}
		for b := 0; b < B; b++ {
			want := full.Output.Data[(b*T+step)*hd*H*W : (b*T+step+1)*hd*H*W]
			assertSame(t, fmt.Sprintf("stream step %d batch %d", step, b), h.Data[b*hd*H*W:(b+1)*hd*H*W], want)
		}
	}
	for l, st := range s.State() {
		assertSame(t, fmt.Sprintf("stream h_%d", l), st.H.Data, full.Final[l].H.Data)
		assertSame(t, fmt.Sprintf("stream c_%d", l), st.C.Data, full.Final[l].C.Data)
	}

	// Two halves with the state carried.
	split := 2
	first := sliceTime(x, 0, split)
	second := sliceTime(x, split, T)
	a, _ := r1.Forward(first, ForwardOptions{})
	bres, err := r1.Forward(second, ForwardOptions{Initial: a.Final})
	if err != nil {
		t.Fatal(err)
	}
	for l := range m.Layers {
		assertSame(t, fmt.Sprintf("halves h_%d", l), bres.Final[l].H.Data, full.Final[l].H.Data)
	}

	// Time-first.
	xt := transposeBT(x)
	tf, err := r1.Forward(xt, ForwardOptions{TimeFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, "time-first output", transposeBT(tf.Output).Data, full.Output.Data)
}

func sliceTime(x *tensor.Tensor, t0, t1 int) *tensor.Tensor {
	B, T := x.Shape[0], x.Shape[1]
	f := x.Shape[2] * x.Shape[3] * x.Shape[4]
	o := &tensor.Tensor{Shape: []int{B, t1 - t0, x.Shape[2], x.Shape[3], x.Shape[4]}}
	for b := 0; b < B; b++ {
		o.Data = append(o.Data, x.Data[(b*T+t0)*f:(b*T+t1)*f]...)
	}
	return o
}

func transposeBT(x *tensor.Tensor) *tensor.Tensor {
	A, Bd := x.Shape[0], x.Shape[1]
	f := x.Shape[2] * x.Shape[3] * x.Shape[4]
	o := &tensor.Tensor{Shape: []int{Bd, A, x.Shape[2], x.Shape[3], x.Shape[4]}, Data: make([]float32, len(x.Data))}
	for a := 0; a < A; a++ {
		for b := 0; b < Bd; b++ {
			copy(o.Data[(b*A+a)*f:(b*A+a+1)*f], x.Data[(a*Bd+b)*f:(a*Bd+b+1)*f])
		}
	}
	return o
}

func assertSame(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: first difference at %d: %v vs %v", what, i, got[i], want[i])
		}
	}
}

func TestStepAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	m := randomModel(rng, 1, []int{16, 16}, [][2]int{{3, 3}, {5, 5}}, true, "ifog")
	for _, threads := range []int{1, 2} {
		r, _ := New(m, Options{Threads: threads})
		s, err := r.NewStream(1, 16, 16, nil)
		if err != nil {
			t.Fatal(err)
		}
		f := randomTensor(rng, 1, 1, 16, 16)
		s.Step(f)
		if n := testing.AllocsPerRun(20, func() { s.Step(f) }); n != 0 {
			t.Errorf("threads %d: Step allocates %v times per call, want 0", threads, n)
		}
		r.Close()
	}
}

func TestForwardErrors(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	m := randomModel(rng, 2, []int{3}, [][2]int{{3, 3}}, true, "ifog")
	r, _ := New(m, Options{Threads: 1})
	defer r.Close()
	for _, tc := range []struct {
		x    *tensor.Tensor
		opts ForwardOptions
		want string
	}{
		{randomTensor(rng, 1, 2, 3, 4, 4), ForwardOptions{}, "3 channels"},
		{randomTensor(rng, 2, 4, 4), ForwardOptions{}, "want 5 dimensions"},
		{randomTensor(rng, 1, 0, 2, 4, 4), ForwardOptions{}, "at least 1"},
		{randomTensor(rng, 1, 2, 2, 4, 4), ForwardOptions{Initial: []LayerState{{H: randomTensor(rng, 1, 3, 4, 5), C: randomTensor(rng, 1, 3, 4, 4)}}}, "h_0 has shape (1, 3, 4, 5)"},
		{randomTensor(rng, 1, 2, 2, 4, 4), ForwardOptions{Initial: []LayerState{{}, {}}}, "2 layers"},
	} {
		_, err := r.Forward(tc.x, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Forward(%v): error %v, want one mentioning %q", tc.x.Shape, err, tc.want)
		}
	}
}
