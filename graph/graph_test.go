package graph

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// compare returns the largest |got − ref| over all values, and ok reports
// whether every value is within 1e-5 + 1e-5·|ref| (and the lengths agree).
func compare(got, ref []float32) (worst float64, ok bool) {
	ok = len(got) == len(ref)
	for i := range min(len(got), len(ref)) {
		d := math.Abs(float64(got[i]) - float64(ref[i]))
		if d > 1e-5+1e-5*math.Abs(float64(ref[i])) || math.IsNaN(d) {
			ok = false
		}
		worst = max(worst, d)
	}
	return
}

// TestTorchFixtures runs every graph torch.onnx.export wrote for
// fixtures/onnx (scripts/onnx_make_fixtures.py) and compares with PyTorch.
func TestTorchFixtures(t *testing.T) {
	models, _ := filepath.Glob("../fixtures/onnx/*.onnx")
	if len(models) == 0 {
		t.Fatal("no fixtures")
	}
	for _, path := range models {
		name := strings.TrimSuffix(filepath.Base(path), ".onnx")
		t.Run(name, func(t *testing.T) {
			for _, threads := range []int{1, 2, 0} {
				// threads 0 here means: one thread, fusion off.
				g, err := Load(path, Options{Threads: max(threads, 1), NoFuse: threads == 0})
				if err != nil {
					t.Fatal(err)
				}
				x, err := loader.ReadNPY(strings.TrimSuffix(path, ".onnx") + ".input.npy")
				if err != nil {
					t.Fatal(err)
				}
				ref, _, err := loader.ReadNPZ(strings.TrimSuffix(path, ".onnx") + ".ref.npz")
				if err != nil {
					t.Fatal(err)
				}
				out, err := g.Run(map[string]*tensor.Tensor{g.Inputs()[0].Name: x})
				if err != nil {
					t.Fatal(err)
				}
				for k, r := range ref {
					o := out[k]
					if o == nil {
						t.Fatalf("output %s missing", k)
					}
					if !slices.Equal(o.Shape, r.Shape) {
						t.Fatalf("%s: shape %v, want %v", k, o.Shape, r.Shape)
					}
					worst, ok := compare(o.Data, r.Data)
					if !ok {
						t.Errorf("%s: worst |go-ref| %.3g beyond 1e-5+1e-5|ref|", k, worst)
					}
					if threads == 1 {
						t.Logf("%s %s: worst |go-ref| = %.3g", name, k, worst)
					}
				}
			}
		})
	}
}

// TestCellsFused: every cell step of the torch export (2 layers × 3 steps)
// and of our Scan body (2 layers) becomes one LSTMCell node.
func TestCellsFused(t *testing.T) {
	g, err := Load("../fixtures/onnx/dynamic_op13.onnx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, nd := range g.main.nodes {
		if nd.op == "LSTMCell" {
			n++
			if nd.cell.conv == nil || !nd.cell.conv.conv.parts {
				t.Errorf("node %s: Concat and Conv not fused into the cell", nd.name)
			}
		}
		if nd.op == "Split" || nd.op == "Sigmoid" || nd.op == "Conv" {
			t.Errorf("node %s (%s) left unfused", nd.name, nd.op)
		}
	}
	if n != 6 {
		t.Errorf("%d fused cells, want 6", n)
	}
}

// TestCellFallback: a fused cell given a c that broadcasts instead of
// matching the gates runs the original nodes, with the same result as the
// expanded c through the fused path.
func TestCellFallback(t *testing.T) {
	g, err := Load("../fixtures/onnx/dynamic_op13.onnx", Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	var cell *node
	for _, nd := range g.main.nodes {
		if nd.op == "LSTMCell" && cell == nil {
			cell = nd
		}
	}
	rnd := func(shape ...int) *tensor.Tensor {
		v := tensor.New(shape...)
		for i := range v.Data {
			v.Data[i] = float32(math.Sin(float64(i)*0.7)) * 2
		}
		return v
	}
	x, h := rnd(2, 2, 4, 5), rnd(2, 3, 4, 5)
	cSmall := rnd(1, 3, 1, 1)
	cFull := tensor.New(2, 3, 4, 5)
	for i := range cFull.Data {
		cFull.Data[i] = cSmall.Data[(i/20)%3]
	}
	ex := func(in ...*tensor.Tensor) []*tensor.Tensor {
		r := &exec{g: g, owned: map[*float32]*ownedBuf{}, counted: map[*tensor.Tensor]int{}, p: g.main, s: &scope{vals: map[string]*tensor.Tensor{}}}
		out, err := runCell(r, cell, in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := ex(x, h, cFull)
	got := ex(x, h, cSmall)
	for k := range 2 {
		if !slices.Equal(got[k].Shape, want[k].Shape) {
			t.Fatalf("output %d: shape %v, want %v", k, got[k].Shape, want[k].Shape)
		}
		if w, ok := compare(got[k].Data, want[k].Data); !ok {
			t.Errorf("output %d: fallback differs from the fused path by %.3g", k, w)
		}
	}
}

// TestCellsOnEngine: every cell update of a torch export runs on the
// engine's cell step, with the algorithm the native runtime chooses for the
// same layer (wide_op17's hidden channels, 8 and 6, are below
// engine.WinogradMinChannels: direct, as natively).
func TestCellsOnEngine(t *testing.T) {
	g, err := Load("../fixtures/onnx/wide_op17.onnx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, nd := range g.main.nodes {
		if nd.op != "LSTMCell" {
			continue
		}
		if nd.cell.step == nil {
			t.Errorf("%s: not on the engine's cell", nd.name)
			continue
		}
		n++
		want := engine.Direct
		if nd.cell.step.Cfg.HiddenDim >= engine.WinogradMinChannels {
			want = engine.Winograd
		}
		if got := nd.cell.step.Algo(); got != want {
			t.Errorf("%s: hidden %d runs %s, want %s", nd.name, nd.cell.step.Cfg.HiddenDim, got, want)
		}
	}
	if n != 6 {
		t.Errorf("%d cells on the engine, want 6", n)
	}
}

// TestFusedMatchesUnfused on images wide enough for the row-by-row gate
// path (≥ 32 columns) and on narrow ones, with Winograd (wide_op17) and
// without: the fused graph must agree with the node-by-node one.
func TestFusedMatchesUnfused(t *testing.T) {
	for _, f := range []string{"dynamic_op13", "wide_op17"} {
		for _, w := range []int{5, 40} {
			fused, err := Load("../fixtures/onnx/"+f+".onnx", Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			plain, err := Load("../fixtures/onnx/"+f+".onnx", Options{Threads: 1, NoFuse: true})
			if err != nil {
				t.Fatal(err)
			}
			x := &tensor.Tensor{Shape: []int{2, 3, 2, 6, w}, Data: make([]float32, 2*3*2*6*w)}
			for i := range x.Data {
				x.Data[i] = float32(math.Sin(float64(i) * 0.37))
			}
			a, err := fused.Run(map[string]*tensor.Tensor{"input": x})
			if err != nil {
				t.Fatal(err)
			}
			b, err := plain.Run(map[string]*tensor.Tensor{"input": x})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range b {
				if worst, ok := compare(a[k].Data, v.Data); !ok || !slices.Equal(a[k].Shape, v.Shape) {
					t.Errorf("%s width %d: %s differs by %.3g", f, w, k, worst)
				}
			}
		}
	}
}

// TestCellGates: the gate order is read back from torch's graphs.
func TestCellGates(t *testing.T) {
	for f, want := range map[string]string{"dynamic_op13": "ifog", "fiog_nobias_op13": "fiog", "wide_op17": "ifog"} {
		g, err := Load("../fixtures/onnx/"+f+".onnx", Options{})
		if err != nil {
			t.Fatal(err)
		}
		cells := g.CellGates()
		if len(cells) != 6 {
			t.Fatalf("%s: %d cells, want 6", f, len(cells))
		}
		for _, c := range cells {
			if c.Gates != want || !strings.HasSuffix(c.Weight, ".conv.weight") {
				t.Errorf("%s: %+v, want gates %s", f, c, want)
			}
		}
	}
}

// TestThreadsBitwise: splitting a Conv's columns (GEMM) or tiles (Winograd)
// between threads does not change a single bit of the result.
func TestThreadsBitwise(t *testing.T) {
	for _, f := range []string{"dynamic_op13", "wide_op17"} {
		x := &tensor.Tensor{Shape: []int{2, 3, 2, 40, 36}, Data: make([]float32, 2*3*2*40*36)}
		for i := range x.Data {
			x.Data[i] = float32(math.Cos(float64(i) * 0.11))
		}
		var outs [2]map[string]*tensor.Tensor
		for i, threads := range []int{1, 3} {
			g, err := Load("../fixtures/onnx/"+f+".onnx", Options{Threads: threads})
			if err != nil {
				t.Fatal(err)
			}
			if outs[i], err = g.Run(map[string]*tensor.Tensor{"input": x}); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range outs[0] {
			if !slices.Equal(v.Data, outs[1][k].Data) {
				t.Errorf("%s: %s differs between 1 and 3 threads", f, k)
			}
		}
	}
}

// TestBuffersReused: buffers go back to the arena and are drawn again, yet
// a run's outputs are never handed to a later run, and results do not
// depend on what a reused buffer held.
func TestBuffersReused(t *testing.T) {
	for _, noFuse := range []bool{false, true} {
		g, err := Load("../fixtures/onnx/dynamic_op13.onnx", Options{Threads: 1, NoFuse: noFuse})
		if err != nil {
			t.Fatal(err)
		}
		in := func(phase float64) map[string]*tensor.Tensor {
			x := tensor.New(2, 3, 2, 5, 6)
			for i := range x.Data {
				x.Data[i] = float32(math.Sin(float64(i)*0.3 + phase))
			}
			return map[string]*tensor.Tensor{"input": x}
		}
		first, err := g.Run(in(0))
		if err != nil {
			t.Fatal(err)
		}
		keep := map[string][]float32{}
		for k, v := range first {
			keep[k] = slices.Clone(v.Data)
		}
		if _, err := g.Run(in(1)); err != nil {
			t.Fatal(err)
		}
		g.arena.mu.Lock()
		held := g.arena.held
		g.arena.mu.Unlock()
		if held == 0 {
			t.Errorf("NoFuse %v: no buffer went back to the arena", noFuse)
		}
		again, err := g.Run(in(0))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range first {
			if !slices.Equal(v.Data, keep[k]) {
				t.Errorf("NoFuse %v: output %s of the first run changed under later runs", noFuse, k)
			}
			if !slices.Equal(again[k].Data, keep[k]) {
				t.Errorf("NoFuse %v: output %s differs between two runs on the same input", noFuse, k)
			}
		}
	}
}

// TestConcurrentRuns: Run is safe for concurrent use (the arena and the
// dry-pass cache are shared); each result matches a run on its own.
func TestConcurrentRuns(t *testing.T) {
	g, err := Load("../fixtures/onnx/dynamic_op13.onnx", Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	in := func(k int) map[string]*tensor.Tensor {
		x := tensor.New(1+k%2, 3, 2, 4+k%3, 5)
		for i := range x.Data {
			x.Data[i] = float32(math.Sin(float64(i*(k+1)) * 0.1))
		}
		return map[string]*tensor.Tensor{"input": x}
	}
	want := make([]map[string]*tensor.Tensor, 6)
	for k := range want {
		if want[k], err = g.Run(in(k)); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, len(want)*4)
	done := make(chan bool)
	for k := range len(want) * 4 {
		go func() {
			defer func() { done <- true }()
			got, err := g.Run(in(k % len(want)))
			if err != nil {
				errs <- err
				return
			}
			for name, w := range want[k%len(want)] {
				if !slices.Equal(got[name].Data, w.Data) {
					errs <- fmt.Errorf("input %d: %s differs from a run on its own", k%len(want), name)
				}
			}
		}()
	}
	for range len(want) * 4 {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
