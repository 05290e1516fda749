package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naivePool2D is ONNX MaxPool/AveragePool on one (H, W) plane straight from
// the definition: every window position of the kernel, in float64.
func naivePool2D(x []float32, h, w int, gh, gw PoolGeom, isMax, countPad bool) ([]float64, int, int) {
	ho, wo := gh.OutSize(), gw.OutSize()
	out := make([]float64, ho*wo)
	for yo := 0; yo < ho; yo++ {
		for xo := 0; xo < wo; xo++ {
			m, sum, n, np := math.Inf(-1), 0.0, 0, 0
			for ky := 0; ky < gh.Kernel; ky++ {
				for kx := 0; kx < gw.Kernel; kx++ {
					y := yo*one(gh.Stride) - gh.PadBegin + ky*one(gh.Dilation)
					xx := xo*one(gw.Stride) - gw.PadBegin + kx*one(gw.Dilation)
					if y >= -gh.PadBegin && y < h+gh.PadEnd && xx >= -gw.PadBegin && xx < w+gw.PadEnd {
						np++
					}
					if y < 0 || y >= h || xx < 0 || xx >= w {
						continue
					}
					v := float64(x[y*w+xx])
					m = math.Max(m, v)
					sum += v
					n++
				}
			}
			switch {
			case isMax && n == 0:
				out[yo*wo+xo] = emptyMax
			case isMax:
				out[yo*wo+xo] = m
			case countPad:
				out[yo*wo+xo] = sum / float64(np)
			default:
				out[yo*wo+xo] = sum / float64(n)
			}
		}
	}
	return out, ho, wo
}

// pool2D is the separable pooling: along W, then along H.
func pool2D(p *Pool, x []float32, planes, h, w int, gh, gw PoolGeom, isMax, countPad bool) ([]float32, error) {
	ww, err := NewWindow(gw, countPad)
	if err != nil {
		return nil, err
	}
	wh, err := NewWindow(gh, countPad)
	if err != nil {
		return nil, err
	}
	tmp := make([]float32, planes*h*ww.Out)
	PoolAxis(p, tmp, x, planes*h, 1, ww, isMax)
	out := make([]float32, planes*wh.Out*ww.Out)
	PoolAxis(p, out, tmp, planes, ww.Out, wh, isMax)
	return out, nil
}

func TestPoolSeparable(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(3, 4))
	geoms := []struct{ h, w int }{{5, 5}, {7, 9}, {32, 32}, {4, 4}, {1, 6}}
	pools := []*Pool{NewPool(1), NewPool(3)}
	defer pools[1].Close()
	for trial := 0; trial < 300; trial++ {
		g := geoms[trial%len(geoms)]
		axis := func(in int) PoolGeom {
			k := 1 + rng.IntN(min(in, 4)+1)
			pg := PoolGeom{In: in, Kernel: k, Stride: 1 + rng.IntN(3), Dilation: 1 + rng.IntN(2), Ceil: rng.IntN(2) == 0}
			pg.PadBegin = rng.IntN(k)
			pg.PadEnd = rng.IntN(k)
			return pg
		}
		gh, gw := axis(g.h), axis(g.w)
		if gh.OutSize() < 1 || gw.OutSize() < 1 {
			continue
		}
		isMax, countPad := rng.IntN(2) == 0, rng.IntN(2) == 0
		planes := 1 + rng.IntN(3)
		x := randSlice(rng, planes*g.h*g.w, 1)
		name := fmt.Sprintf("%dx%d %+v %+v max=%v pad=%v", g.h, g.w, gh, gw, isMax, countPad)
		var first []float32
		for pi, p := range pools {
			got, err := pool2D(p, x, planes, g.h, g.w, gh, gw, isMax, countPad)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if pi == 0 {
				first = got
			} else {
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(first[i]) {
						t.Fatalf("%s: 3 threads differ from 1 at %d", name, i)
					}
				}
			}
			n := gh.OutSize() * gw.OutSize()
			for pl := 0; pl < planes; pl++ {
				want, _, _ := naivePool2D(x[pl*g.h*g.w:(pl+1)*g.h*g.w], g.h, g.w, gh, gw, isMax, countPad)
				for i, wv := range want {
					gv := float64(got[pl*n+i])
					if math.IsNaN(wv) != math.IsNaN(gv) || math.Abs(gv-wv) > 1e-6*(1+math.Abs(wv)) {
						t.Fatalf("%s: plane %d output %d = %g, want %g", name, pl, i, gv, wv)
					}
				}
			}
		}
	}
}

// ONNX's output-size rule, ceil mode included (the values come from the
// ONNX suite's examples and torch.nn.MaxPool2d's documented formula).
func TestPoolOutSize(t *testing.T) {
	cases := []struct {
		g    PoolGeom
		want int
	}{
		{PoolGeom{In: 4, Kernel: 3, Stride: 2, Ceil: true}, 2},             // test_maxpool_2d_ceil
		{PoolGeom{In: 4, Kernel: 3, Stride: 2}, 1},                         // floor
		{PoolGeom{In: 4, Kernel: 2, Stride: 1, Dilation: 2}, 2},            // test_maxpool_2d_dilations
		{PoolGeom{In: 5, Kernel: 5, Stride: 1, PadBegin: 2, PadEnd: 2}, 5}, // precomputed pads
		{PoolGeom{In: 32, Kernel: 5, Stride: 3}, 10},                       // test_maxpool_2d_strides
		// ceil mode: a window that would start in the end padding is
		// dropped (torch: 5 with pad 1, kernel 2, stride 2 gives 3, not 4)
		{PoolGeom{In: 5, Kernel: 2, Stride: 2, PadBegin: 1, PadEnd: 1, Ceil: true}, 3},
		{PoolGeom{In: 2, Kernel: 3, Stride: 1}, 0},
	}
	for _, c := range cases {
		if got := c.g.OutSize(); got != c.want {
			t.Errorf("%+v: OutSize %d, want %d", c.g, got, c.want)
		}
	}
}

// Max pooling windows of 2 (stride 2) and 3 (stride 2, padding 1) over rows
// of twice the outputs pool many rows as one long row (poolFlat): the
// values of pooling each row by the table loop, NaN and signed zeros
// included (a NaN as a NaN: its payload is not specified), on one thread
// or split between three, over more outputs than poolFlat's blocks.
func TestPoolFlatRows(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(9, 10))
	special := []float32{float32(math.NaN()), float32(math.Copysign(0, -1)), 0, float32(math.Inf(-1))}
	pools := []*Pool{NewPool(1), NewPool(3)}
	defer pools[1].Close()
	for _, g := range []struct {
		geom PoolGeom
		flat int
	}{
		{PoolGeom{In: 64, Kernel: 2, Stride: 2}, 2},
		{PoolGeom{In: 2, Kernel: 2, Stride: 2}, 2},
		{PoolGeom{In: 32, Kernel: 3, Stride: 2, PadBegin: 1, PadEnd: 1}, 3},
		{PoolGeom{In: 4, Kernel: 3, Stride: 2, PadBegin: 1, PadEnd: 1}, 3},
		{PoolGeom{In: 2, Kernel: 3, Stride: 2, PadBegin: 1, PadEnd: 1}, 3},
		{PoolGeom{In: 33, Kernel: 3, Stride: 2, PadBegin: 1, PadEnd: 1}, 0},
		{PoolGeom{In: 32, Kernel: 3, Stride: 2}, 0},
	} {
		w, err := NewWindow(g.geom, false)
		if err != nil {
			t.Fatal(err)
		}
		if w.flat != g.flat {
			t.Fatalf("%+v: flat %d, want %d", g.geom, w.flat, g.flat)
		}
		for _, rows := range []int{1, 7, 100} {
			src := randSlice(rng, rows*w.In, 1)
			for i := range src {
				if rng.IntN(8) == 0 {
					src[i] = special[rng.IntN(len(special))]
				}
			}
			want := make([]float32, rows*w.Out)
			for r := range rows {
				poolRowRange(want[r*w.Out:(r+1)*w.Out], src[r*w.In:(r+1)*w.In], w, true, 0, w.Out)
			}
			for _, p := range pools {
				got := make([]float32, rows*w.Out)
				PoolAxis(p, got, src, rows, 1, w, true)
				for o := range want {
					nan := math.IsNaN(float64(got[o])) && math.IsNaN(float64(want[o]))
					if !nan && math.Float32bits(got[o]) != math.Float32bits(want[o]) {
						t.Fatalf("%+v, %d rows, %d threads: output %d = %v, the table loop gives %v", g.geom, rows, p.Threads(), o, got[o], want[o])
					}
				}
			}
		}
	}
}
