package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// tolerance is a comparison bar: |go − ref| ≤ Abs + Rel·|ref|.
type tolerance struct {
	Abs float64 `json:"abs"`
	Rel float64 `json:"rel"`
}

// parityBar is the project's bar against PyTorch; a case may ask for a
// tighter one (case.json "tolerance"), never a looser one.
var parityBar = tolerance{Abs: 1e-5, Rel: 1e-5}

func (t tolerance) String() string { return fmt.Sprintf("%.3g + %.3g·|ref|", t.Abs, t.Rel) }

// layout says how the CLI's output tensors are laid out, so that a flat
// index can be named as a layer, a time step and a (b, c, y, x) position.
type layout struct {
	timeFirst bool // output and output_l are (T, B, C, H, W)
	layers    int  // number of layers (h_0..h_{layers-1})
}

// locate names element i of the tensor key (of the given shape).
func (lo layout) locate(key string, shape []int, i int) string {
	var l int
	switch {
	case key == "output":
		return fmt.Sprintf("layer %d (the last), %s", lo.layers-1, lo.seqPos(shape, i))
	case scan(key, "output_%d", &l):
		return fmt.Sprintf("layer %d, %s", l, lo.seqPos(shape, i))
	case scan(key, "h_%d", &l), scan(key, "c_%d", &l):
		what := map[byte]string{'h': "hidden", 'c': "cell"}[key[0]]
		if len(shape) != 4 {
			return fmt.Sprintf("layer %d final %s state, index %d", l, what, i)
		}
		p := unravel(shape, i)
		return fmt.Sprintf("layer %d final %s state (after the last step), (b=%d, c=%d, y=%d, x=%d)", l, what, p[0], p[1], p[2], p[3])
	}
	return fmt.Sprintf("index %v", unravel(shape, i))
}

// seqPos names element i of a (B, T, C, H, W) or (T, B, C, H, W) sequence.
func (lo layout) seqPos(shape []int, i int) string {
	if len(shape) != 5 {
		return fmt.Sprintf("index %v", unravel(shape, i))
	}
	p := unravel(shape, i)
	b, t := p[0], p[1]
	if lo.timeFirst {
		b, t = p[1], p[0]
	}
	return fmt.Sprintf("step t=%d, (b=%d, c=%d, y=%d, x=%d)", t, b, p[2], p[3], p[4])
}

func scan(key, format string, l *int) bool {
	n, _ := fmt.Sscanf(key, format, l)
	return n == 1 && key == fmt.Sprintf(format, *l)
}

func unravel(shape []int, i int) []int {
	p := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			p[d] = i % shape[d]
			i /= shape[d]
		}
	}
	return p
}

// tensorReport compares one tensor: ok, and a line saying so (llm.c's
// "TENSOR OK, maxdiff = …") or what is off, where, and the values side by
// side from the first bad one.
func tensorReport(key string, got, want *tensor.Tensor, tol tolerance, lo layout) (bool, string) {
	if got == nil {
		return false, fmt.Sprintf("%s: missing from the output", key)
	}
	if !tensor.SameShape(got.Shape, want.Shape) {
		return false, fmt.Sprintf("%s: shape %s, PyTorch %s", key, tensor.ShapeString(got.Shape), tensor.ShapeString(want.Shape))
	}
	g, w := got.Floats(), want.Floats()
	worst, at, bad, first := 0.0, 0, 0, -1
	for i := range w {
		d := math.Abs(float64(g[i]) - float64(w[i]))
		if !(d <= tol.Abs+tol.Rel*math.Abs(float64(w[i]))) {
			bad++
			if first < 0 {
				first = i
			}
		}
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if bad == 0 {
		return true, fmt.Sprintf("%s OK, maxdiff %.3g", key, worst)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s MISMATCH: %d of %d values off (bar %s), max abs err %.3g at %s (go %.8g, torch %.8g); first off at %s\n",
		key, bad, len(w), tol, worst, lo.locate(key, want.Shape, at), g[at], w[at], lo.locate(key, want.Shape, first))
	fmt.Fprintf(&b, "      %-52s %14s %14s %10s\n", "from the first bad value", "go", "torch", "diff")
	for i := first; i < min(len(w), first+6); i++ {
		fmt.Fprintf(&b, "      %-52s %14.8g %14.8g %10.3g\n", lo.locate(key, want.Shape, i), g[i], w[i], math.Abs(float64(g[i])-float64(w[i])))
	}
	return false, b.String()
}

// compareNPZ checks the Go output at gotPath against the PyTorch reference
// at wantPath, tensor by tensor (same shapes, every value within tol),
// reporting each tensor's max error by name and, on a mismatch, the layer,
// step and (b, c, y, x) position at fault. With allKeys the output must
// hold nothing the reference does not (a reference may leave out tensors
// to stay small: fixtures/example has no "output").
func compareNPZ(t *testing.T, label, gotPath, wantPath string, tol tolerance, lo layout, allKeys bool) {
	t.Helper()
	want, keys, err := loader.ReadNPZ(wantPath)
	if err != nil {
		t.Fatal(err)
	}
	got, gotKeys, err := loader.ReadNPZ(gotPath)
	if err != nil {
		t.Fatal(err)
	}
	if lo.layers == 0 {
		for _, k := range keys {
			var l int
			if scan(k, "h_%d", &l) {
				lo.layers = max(lo.layers, l+1)
			}
		}
	}
	for _, k := range keys {
		ok, msg := tensorReport(k, got[k], want[k], tol, lo)
		if ok {
			t.Logf("%s: %s", label, msg)
		} else {
			t.Errorf("%s: %s", label, msg)
		}
	}
	var extra []string
	for _, k := range gotKeys {
		if want[k] == nil {
			extra = append(extra, k)
		}
	}
	if allKeys && len(extra) > 0 {
		sort.Strings(extra)
		t.Errorf("%s: the output holds %s, which PyTorch's does not", label, strings.Join(extra, ", "))
	}
}

// The mismatch report names the tensor, layer, step and position of a
// value that is off, and passes values within the bar.
func TestTensorReportLocates(t *testing.T) {
	// (B=2, T=3, C=4, H=5, W=6), batch-first, 3 layers.
	shape := []int{2, 3, 4, 5, 6}
	want := tensor.New(shape...)
	for i := range want.Data {
		want.Data[i] = float32(i%7) * 0.1
	}
	got := want.Clone()
	idx := func(p ...int) int {
		i := 0
		for d, v := range p {
			i = i*shape[d] + v
		}
		return i
	}
	got.Data[idx(1, 2, 3, 4, 5)] += 1e-5 // within the bar only where |ref| is large enough: 0.5·1e-5 + 1e-5 ≥ 1e-5
	if ok, msg := tensorReport("output_1", got, want, parityBar, layout{layers: 3}); !ok {
		t.Errorf("a difference within the bar is reported: %s", msg)
	}
	got.Data[idx(1, 2, 3, 4, 5)] += 1e-3
	ok, msg := tensorReport("output_1", got, want, parityBar, layout{layers: 3})
	for _, w := range []string{"output_1 MISMATCH", "1 of 720", "layer 1, step t=2, (b=1, c=3, y=4, x=5)"} {
		if ok || !strings.Contains(msg, w) {
			t.Errorf("report lacks %q:\n%s", w, msg)
		}
	}
	// Time-first: the same flat index is step 1, batch 2... of (T, B, ...).
	tf := []int{3, 2, 4, 5, 6}
	wt, gt := tensor.New(tf...), tensor.New(tf...)
	gt.Data[(2*2+1)*4*5*6+(0*5+1)*6+2] = 1
	_, msg = tensorReport("output", gt, wt, parityBar, layout{timeFirst: true, layers: 2})
	if !strings.Contains(msg, "layer 1 (the last), step t=2, (b=1, c=0, y=1, x=2)") {
		t.Errorf("time-first position wrong:\n%s", msg)
	}
	// A final state: (B, C, H, W).
	ws, gs := tensor.New(2, 4, 5, 6), tensor.New(2, 4, 5, 6)
	gs.Data[len(gs.Data)-1] = float32(math.NaN())
	_, msg = tensorReport("c_0", gs, ws, parityBar, layout{layers: 2})
	if !strings.Contains(msg, "layer 0 final cell state (after the last step), (b=1, c=3, y=4, x=5)") {
		t.Errorf("state position wrong (NaN must count as off):\n%s", msg)
	}
}
