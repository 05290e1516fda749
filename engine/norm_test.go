package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naiveNorm is the definition in float64, two passes: mean, then the mean
// of squared deviations.
func naiveNorm(x []float32, rows, n int, eps float64, scale, bias []float32, perElement bool) (y, mean, inv []float64) {
	y = make([]float64, len(x))
	for r := 0; r < rows; r++ {
		row := x[r*n : (r+1)*n]
		m := 0.0
		for _, v := range row {
			m += float64(v)
		}
		m /= float64(n)
		v2 := 0.0
		for _, v := range row {
			v2 += (float64(v) - m) * (float64(v) - m)
		}
		v2 /= float64(n)
		is := 1 / math.Sqrt(v2+eps)
		mean, inv = append(mean, m), append(inv, is)
		for i, v := range row {
			s, b := 0.0, 0.0
			if perElement {
				s = float64(scale[i])
				if bias != nil {
					b = float64(bias[i])
				}
			} else {
				s = float64(scale[r%len(scale)])
				if bias != nil {
					b = float64(bias[r%len(bias)])
				}
			}
			y[r*n+i] = (float64(v)-m)*is*s + b
		}
	}
	return y, mean, inv
}

func TestNormalize(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(7, 8))
	pools := []*Pool{NewPool(1), NewPool(3)}
	defer pools[1].Close()
	cases := []struct {
		rows, n, c int
		perElement bool
		offset     float64 // a large mean: the variance must survive it
	}{
		{6, 20, 3, false, 0},
		{1, 1000, 1, false, 0},
		{2, 4097, 2, false, 100},
		{1, 3, 1, true, 0},
		{3, 60, 0, true, 0},
		{1, 5000, 0, true, 1000},
		{5, 1, 5, false, 0}, // one value per row: variance 0
	}
	for _, c := range cases {
		for _, withBias := range []bool{true, false} {
			name := fmt.Sprintf("%+v bias=%v", c, withBias)
			x := randSlice(rng, c.rows*c.n, 2)
			for i := range x {
				x[i] += float32(c.offset)
			}
			k := c.c
			if c.perElement {
				k = c.n
			}
			scale := randSlice(rng, k, 1)
			var bias []float32
			if withBias {
				bias = randSlice(rng, k, 1)
			}
			want, wm, wi := naiveNorm(x, c.rows, c.n, 1e-5, scale, bias, c.perElement)
			for _, p := range pools {
				got := make([]float32, len(x))
				mean, inv := make([]float32, c.rows), make([]float32, c.rows)
				Normalize(p, got, x, NormRows{Rows: c.rows, N: c.n, Eps: 1e-5, Scale: scale, Bias: bias, PerElement: c.perElement, Mean: mean, InvStd: inv})
				for i := range want {
					// float32 output of an O(1) value: a few ulps, plus the
					// rounding of x − mean when the mean is large.
					tol := 1e-5 * (1 + math.Abs(want[i])) * (1 + c.offset/100)
					if d := math.Abs(float64(got[i]) - want[i]); d > tol {
						t.Fatalf("%s, %d threads: y[%d] = %g, want %g", name, p.Threads(), i, got[i], want[i])
					}
				}
				for r := range wm {
					if math.Abs(float64(mean[r])-wm[r]) > 1e-6*(1+math.Abs(wm[r])) || math.Abs(float64(inv[r])-wi[r]) > 1e-6*wi[r] {
						t.Fatalf("%s: row %d mean %g inv %g, want %g %g", name, r, mean[r], inv[r], wm[r], wi[r])
					}
				}
			}
		}
	}
}

func TestChannelAffine(t *testing.T) {
	defer splitAll()()
	rng := rand.New(rand.NewPCG(9, 10))
	p := NewPool(2)
	defer p.Close()
	x := randSlice(rng, 2*3*10, 1)
	a, b := randSlice(rng, 3, 1), randSlice(rng, 3, 1)
	got := make([]float32, len(x))
	ChannelAffine(p, got, x, 6, 10, a, b)
	for i, v := range x {
		c := i / 10 % 3
		if got[i] != v*a[c]+b[c] {
			t.Fatalf("y[%d] = %g, want %g", i, got[i], v*a[c]+b[c])
		}
	}
}
