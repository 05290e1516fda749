package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// refInterp1D is interpolate_1d_with_x of the ONNX reference
// (onnx/backend/test/case/node/resize.py) ported line by line: the
// neighbours are the n nearest indexes of the edge-padded data, found by
// sorting on (distance, index), and the coefficients come from the ratio
// to the lower one. It is independent of NewResample's arithmetic on
// purpose.
func refInterp1D(data []float64, g ResampleGeom, x int, s ResizeSpec) float64 {
	in := float64(len(data))
	ow := g.Scale * in
	if g.Exact {
		ow = float64(g.Out)
	}
	fx := float64(x)
	var xo float64
	switch s.Coord {
	case "align_corners":
		if ow == 1 {
			xo = 0
		} else {
			xo = fx * (in - 1) / (ow - 1)
		}
	case "asymmetric":
		xo = fx / g.Scale
	case "tf_crop_and_resize":
		ow = float64(g.Out) // as ONNX Runtime (see NewResample)
		if ow == 1 {
			xo = (g.RoiEnd - g.RoiStart) * (in - 1) / 2
		} else {
			xo = fx * (g.RoiEnd - g.RoiStart) * (in - 1) / (ow - 1)
		}
		xo += g.RoiStart * (in - 1)
		if xo < 0 || xo > in-1 {
			return float64(s.Extrapolation)
		}
	case "pytorch_half_pixel":
		if ow == 1 {
			xo = -0.5
		} else {
			xo = (fx+0.5)/g.Scale - 0.5
		}
	case "half_pixel":
		xo = (fx+0.5)/g.Scale - 0.5
	case "tf_half_pixel_for_nn": // ONNX Resize-11's definition
		xo = (fx + 0.5) / g.Scale
	}
	xoInt := math.Floor(xo)
	ratio := xo - xoInt
	if xo == xoInt {
		ratio = 1
	}
	var coeffs []float64
	switch s.Mode {
	case "nearest":
		switch {
		case xo == xoInt:
			coeffs = []float64{0, 1}
		case s.Nearest == "round_prefer_floor":
			coeffs = []float64{b2f(ratio <= 0.5), b2f(ratio > 0.5)}
		case s.Nearest == "round_prefer_ceil":
			coeffs = []float64{b2f(ratio < 0.5), b2f(ratio >= 0.5)}
		case s.Nearest == "floor":
			coeffs = []float64{1, 0}
		case s.Nearest == "ceil":
			coeffs = []float64{0, 1}
		}
	case "linear":
		coeffs = []float64{1 - ratio, ratio}
	case "cubic":
		a := s.CubicA
		coeffs = []float64{
			((a*(ratio+1)-5*a)*(ratio+1)+8*a)*(ratio+1) - 4*a,
			((a+2)*ratio-(a+3))*ratio*ratio + 1,
			((a+2)*(1-ratio)-(a+3))*(1-ratio)*(1-ratio) + 1,
			((a*((1-ratio)+1)-5*a)*((1-ratio)+1)+8*a)*((1-ratio)+1) - 4*a,
		}
	}
	n := len(coeffs)
	pad := (n + 1) / 2
	padded := make([]float64, len(data)+2*pad)
	for i := range padded {
		padded[i] = data[min(max(i-pad, 0), len(data)-1)]
	}
	xp := xo + float64(pad)
	idx := make([]int, len(padded))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		da, db := math.Abs(xp-float64(idx[a])), math.Abs(xp-float64(idx[b]))
		if da != db {
			return da < db
		}
		return idx[a] < idx[b]
	})
	idx = idx[:n]
	sort.Ints(idx)
	if s.ExcludeOutside {
		sum := 0.0
		for i, id := range idx {
			if id-pad < 0 || id-pad >= len(data) {
				coeffs[i] = 0
			}
			sum += coeffs[i]
		}
		for i := range coeffs {
			coeffs[i] /= sum
		}
	}
	v := 0.0
	for i, id := range idx {
		v += coeffs[i] * padded[id]
	}
	return v
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// refResize2D is interpolate_nd of the reference on an (h, w) plane: the
// inner axis first for every row the outer one reads, then the outer axis.
func refResize2D(x []float32, h, w int, gh, gw ResampleGeom, s ResizeSpec) []float64 {
	out := make([]float64, gh.Out*gw.Out)
	for yo := 0; yo < gh.Out; yo++ {
		for xo := 0; xo < gw.Out; xo++ {
			col := make([]float64, h)
			for y := 0; y < h; y++ {
				row := make([]float64, w)
				for i := range row {
					row[i] = float64(x[y*w+i])
				}
				col[y] = refInterp1D(row, gw, xo, s)
			}
			out[yo*gw.Out+xo] = refInterp1D(col, gh, yo, s)
		}
	}
	return out
}

func TestResampleAgainstReference(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(5, 6))
	pools := []*Pool{NewPool(1), NewPool(3)}
	defer pools[1].Close()
	modes := []string{"nearest", "linear", "cubic"}
	coords := []string{"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn"}
	nearests := []string{"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}
	for trial := 0; trial < 400; trial++ {
		s := ResizeSpec{Mode: modes[rng.IntN(3)], Coord: coords[rng.IntN(len(coords))], Nearest: nearests[rng.IntN(4)],
			CubicA: []float64{-0.75, -0.5}[rng.IntN(2)], ExcludeOutside: rng.IntN(2) == 0, Extrapolation: float32(rng.IntN(3)) * 5}
		h, w := 1+rng.IntN(6), 1+rng.IntN(7)
		geo := func(in int) ResampleGeom {
			g := ResampleGeom{In: in}
			if rng.IntN(2) == 0 {
				g.Scale = []float64{0.5, 0.6, 1, 1.5, 2, 3, 0.25}[rng.IntN(7)]
				g.Out = int(g.Scale * float64(in))
			} else {
				g.Out, g.Exact = 1+rng.IntN(9), true
				g.Scale = float64(g.Out) / float64(in)
			}
			g.RoiStart, g.RoiEnd = rng.Float64()*0.5, 0.5+rng.Float64()*0.8
			return g
		}
		gh, gw := geo(h), geo(w)
		if gh.Out < 1 || gw.Out < 1 {
			continue
		}
		name := fmt.Sprintf("%+v %dx%d %+v %+v", s, h, w, gh, gw)
		rh, err := NewResample(gh, s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rw, err := NewResample(gw, s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		planes := 1 + rng.IntN(2)
		x := randSlice(rng, planes*h*w, 1)
		for _, p := range pools {
			tmp := make([]float32, planes*h*gw.Out)
			ResampleAxis(p, tmp, x, planes*h, 1, rw)
			got := make([]float32, planes*gh.Out*gw.Out)
			ResampleAxis(p, got, tmp, planes, gw.Out, rh)
			FillOutside(got, planes, gw.Out, rh)
			FillOutside(got, planes*gh.Out, 1, rw)
			n := gh.Out * gw.Out
			for pl := 0; pl < planes; pl++ {
				want := refResize2D(x[pl*h*w:(pl+1)*h*w], h, w, gh, gw, s)
				for i, wv := range want {
					gv := float64(got[pl*n+i])
					if math.Abs(gv-wv) > 1e-5*(1+math.Abs(wv)) {
						t.Fatalf("%s: plane %d output %d = %g, want %g", name, pl, i, gv, wv)
					}
				}
			}
		}
	}
}

func TestResampleIdentity(t *testing.T) {
	for _, mode := range []string{"nearest", "linear", "cubic"} {
		for _, coord := range []string{"half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"} {
			r, err := NewResample(ResampleGeom{In: 7, Out: 7, Scale: 1}, ResizeSpec{Mode: mode, Coord: coord, CubicA: -0.75})
			if err != nil {
				t.Fatal(err)
			}
			if !r.Identity() {
				t.Errorf("%s %s: scale 1 is not recognised as the identity: %v %v", mode, coord, r.Idx, r.W)
			}
		}
	}
	r, _ := NewResample(ResampleGeom{In: 4, Out: 8, Scale: 2}, ResizeSpec{Mode: "linear", Coord: "half_pixel"})
	if r.Identity() {
		t.Error("an upsampling is recognised as the identity")
	}
}

// Linear resampling of many short rows runs them in blocks of rows2 with
// one table (taps2Rows): the bits of resampling each row on its own, on
// one thread or split between three at any row.
func TestResampleRowBlocks(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(7, 8))
	pools := []*Pool{NewPool(1), NewPool(3)}
	defer pools[1].Close()
	for _, g := range []ResampleGeom{{In: 16, Out: 32, Scale: 2}, {In: 32, Out: 64, Exact: true, Scale: 2}, {In: 5, Out: 3, Exact: true, Scale: 0.6}, {In: 7, Out: 17, Exact: true, Scale: 17.0 / 7}} {
		for _, coord := range []string{"half_pixel", "align_corners"} {
			r, err := NewResample(g, ResizeSpec{Mode: "linear", Coord: coord})
			if err != nil {
				t.Fatal(err)
			}
			if r.taps2Rows == nil || r.rows2 < 2 {
				t.Fatalf("%+v %s: no row-block table (rows2 %d)", g, coord, r.rows2)
			}
			outer := 3*r.rows2 + 5
			x := randSlice(rng, outer*g.In, 1)
			want := make([]float32, outer*g.Out)
			for row := range outer {
				resampleRow(want[row*g.Out:(row+1)*g.Out], x[row*g.In:(row+1)*g.In], r)
			}
			for _, p := range pools {
				got := make([]float32, outer*g.Out)
				ResampleAxis(p, got, x, outer, 1, r)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%+v %s, %d threads: output %d = %v, row by row %v", g, coord, p.Threads(), i, got[i], want[i])
					}
				}
			}
		}
	}
}
