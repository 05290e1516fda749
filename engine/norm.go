package engine

import (
	"fmt"
	"math"

	"github.com/convlstm-go/convlstm-go/ops"
)

// Normalisations (ONNX InstanceNormalization, LayerNormalization, and
// GroupNorm, which torch exports as an InstanceNormalization over
// (B, groups, −1)): each row of n values is normalised by its own mean and
// variance, then scaled and shifted. One pass reads the row for its moments
// (float64 sums of the values and squares, shifted by the row's first value
// so that a large mean does not cancel the variance away), a second writes
// y = x·a + b. A row too long for one thread is split: partial moments per
// chunk, combined, then the chunks written in parallel.

// NormRows describes the rows to normalise.
type NormRows struct {
	Rows, N int
	Eps     float64
	// Scale and Bias: per row (len = C, row r uses r % C: instance norm's
	// channels), or per element (len = N: layer norm). Bias may be nil.
	Scale, Bias []float32
	PerElement  bool
	// Mean and InvStd, when not nil, receive each row's mean and
	// 1/√(var + Eps) (LayerNormalization's optional outputs).
	Mean, InvStd []float32
	// PostScale and PostBias, when not nil (per row only), scale and shift
	// the normalised values once more per channel of PostPlane values: a
	// row r holds channels (r % (len(PostScale)·PostPlane/N))·N/PostPlane
	// onward. GroupNorm as torch exports it: an instance norm over (B,
	// groups, −1), then ·γ + β per channel, in one pass with the same
	// roundings as the three ops.
	PostScale, PostBias []float32
	PostPlane           int
}

func (nr *NormRows) check(dst, src []float32) {
	ok := len(src) == nr.Rows*nr.N && len(dst) == len(src)
	if nr.PerElement {
		ok = ok && len(nr.Scale) == nr.N && (nr.Bias == nil || len(nr.Bias) == nr.N)
	} else {
		ok = ok && len(nr.Scale) > 0 && (nr.Bias == nil || len(nr.Bias) == len(nr.Scale))
	}
	ok = ok && (nr.Mean == nil || len(nr.Mean) == nr.Rows) && (nr.InvStd == nil || len(nr.InvStd) == nr.Rows)
	if nr.PostScale != nil {
		ok = ok && !nr.PerElement && nr.PostPlane > 0 && nr.N%nr.PostPlane == 0 && len(nr.PostBias) == len(nr.PostScale) &&
			len(nr.PostScale)*nr.PostPlane%nr.N == 0
	}
	if !ok {
		panic(fmt.Sprintf("engine: Normalize of %d values into %d as %d rows of %d with %d scales, %d biases", len(src), len(dst), nr.Rows, nr.N, len(nr.Scale), len(nr.Bias)))
	}
}

// Normalize writes the normalised rows of src into dst (they may be the
// same slice).
func Normalize(pool *Pool, dst, src []float32, nr NormRows) {
	nr.check(dst, src)
	if nr.Rows == 0 || nr.N == 0 {
		return
	}
	parts := pool.PartsFor(scalarWork * 2 * nr.Rows * nr.N)
	chunks := 1
	if nr.Rows < parts {
		chunks = (parts + nr.Rows - 1) / nr.Rows
	}
	t := &normTask{dst: dst, src: src, nr: &nr, chunks: chunks,
		sums: make([]moment, nr.Rows*chunks), a: make([]float64, nr.Rows), b: make([]float64, nr.Rows)}
	t.phase = 0
	pool.Do(t, parts)
	for r := 0; r < nr.Rows; r++ {
		var m moment
		for c := 0; c < chunks; c++ {
			m = m.add(t.sums[r*chunks+c])
		}
		mean, variance := m.stats()
		inv := 1 / math.Sqrt(variance+nr.Eps)
		t.a[r], t.b[r] = inv, mean
		if nr.Mean != nil {
			nr.Mean[r] = float32(mean)
		}
		if nr.InvStd != nil {
			nr.InvStd[r] = float32(inv)
		}
	}
	t.phase = 1
	pool.Do(t, parts)
}

// moment holds the sums of a chunk of values x, shifted by k: n, Σ(x−k),
// Σ(x−k)².
type moment struct {
	n, k, s, q float64
}

func (m moment) add(o moment) moment {
	if m.n == 0 {
		return o
	}
	if o.n == 0 {
		return m
	}
	// Re-shift o's sums to m's k: x−k = (x−k') + d with d = k'−k.
	d := o.k - m.k
	return moment{n: m.n + o.n, k: m.k, s: m.s + o.s + o.n*d, q: m.q + o.q + 2*d*o.s + o.n*d*d}
}

func (m moment) stats() (mean, variance float64) {
	if m.n == 0 {
		return 0, 0
	}
	ms := m.s / m.n
	variance = m.q/m.n - ms*ms
	if variance < 0 {
		variance = 0
	}
	return m.k + ms, variance
}

// chunkMoment sums a chunk (ops.Moments: float64, vectorised).
func chunkMoment(x []float32) moment {
	if len(x) == 0 {
		return moment{}
	}
	k := float64(x[0])
	s, q := ops.Moments(x, k)
	return moment{n: float64(len(x)), k: k, s: s, q: q}
}

type normTask struct {
	dst, src []float32
	nr       *NormRows
	chunks   int
	phase    int
	sums     []moment
	a, b     []float64 // per row: 1/σ and the mean
}

func (t *normTask) Run(part, parts int) {
	nr := t.nr
	n := nr.N
	u0, u1 := Split(nr.Rows*t.chunks, part, parts, 1)
	for u := u0; u < u1; u++ {
		r, c := u/t.chunks, u%t.chunks
		j0, j1 := Split(n, c, t.chunks, 16)
		src := t.src[r*n+j0 : r*n+j1]
		if t.phase == 0 {
			t.sums[u] = chunkMoment(src)
			continue
		}
		dst := t.dst[r*n+j0 : r*n+j1]
		inv, mean := t.a[r], t.b[r]
		if !nr.PerElement {
			// (x − mean)·a + bias: subtracting first keeps a large mean
			// from costing the normalised value its precision.
			ch := r % len(nr.Scale)
			af, mf := float32(inv*float64(nr.Scale[ch])), float32(mean)
			var bf float32
			if nr.Bias != nil {
				bf = nr.Bias[ch]
			}
			if nr.PostScale != nil {
				t.post(dst, src, r, j0, mf, af, bf)
				continue
			}
			ops.ScaleShift(dst, src, mf, af, bf)
			continue
		}
		// Per element: y = ((x − mean)·inv)·scale + bias, as the ONNX
		// reference orders it.
		mf, invf := float32(mean), float32(inv)
		sc := nr.Scale[j0:j1]
		sc = sc[:len(src)]
		if nr.Bias == nil {
			for i, v := range src {
				dst[i] = (v - mf) * invf * sc[i]
			}
			continue
		}
		ops.NormElem(dst, src, sc, nr.Bias[j0:j1], mf, invf)
	}
}

// post writes the values j0.. of row r, normalised ((v−mf)·af + bf, as
// the instance norm computes them) and then ·γ + β of their channel, each
// product rounded before the sum as the separate Mul and Add do.
func (t *normTask) post(dst, src []float32, r, j0 int, mf, af, bf float32) {
	nr := t.nr
	plane := nr.PostPlane
	perRow := nr.N / plane
	ch0 := r % (len(nr.PostScale) / perRow) * perRow
	for i := 0; i < len(src); {
		j := j0 + i
		ch := ch0 + j/plane
		end := min(len(src), i+plane-j%plane)
		d := dst[i:end]
		ops.ScaleShift(d, src[i:end], mf, af, bf)
		ops.ScaleShift(d, d, 0, nr.PostScale[ch], nr.PostBias[ch]) // y·γ + β: y − 0 is y
		i = end
	}
}

// ChannelAffine writes y = x·a[c] + b[c] for each of planes planes of n
// values, plane p in channel p % len(a) (inference batch normalisation,
// with a = γ/√(σ²+ε) and b = β − μ·a).
func ChannelAffine(pool *Pool, dst, src []float32, planes, n int, a, b []float32) {
	if len(src) != planes*n || len(dst) != len(src) || len(a) == 0 || len(b) != len(a) {
		panic(fmt.Sprintf("engine: ChannelAffine of %d values into %d as %d planes of %d, %d channels", len(src), len(dst), planes, n, len(a)))
	}
	pool.Do(&affineTask{dst: dst, src: src, n: n, planes: planes, a: a, b: b}, pool.PartsFor(scalarWork*planes*n))
}

type affineTask struct {
	dst, src  []float32
	n, planes int
	a, b      []float32
}

func (t *affineTask) Run(part, parts int) {
	p0, p1 := Split(t.planes, part, parts, 1)
	for p := p0; p < p1; p++ {
		a, b := t.a[p%len(t.a)], t.b[p%len(t.b)]
		src := t.src[p*t.n : (p+1)*t.n]
		dst := t.dst[p*t.n : (p+1)*t.n]
		dst = dst[:len(src)]
		for i, v := range src {
			dst[i] = v*a + b
		}
	}
}
