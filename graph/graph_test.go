package graph

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader"
)

// maxRelErr is the largest |got − ref| / (1 + |ref|) over all values, and
// ok reports whether every value is within 1e-5 + 1e-5·|ref|.
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
				x, err := readNPY(strings.TrimSuffix(path, ".onnx") + ".input.npy")
				if err != nil {
					t.Fatal(err)
				}
				ref, err := readNPZ(strings.TrimSuffix(path, ".onnx") + ".ref.npz")
				if err != nil {
					t.Fatal(err)
				}
				out, err := g.Run(map[string]*loader.Tensor{g.Inputs()[0].Name: x})
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
		}
		if nd.op == "Split" || nd.op == "Sigmoid" {
			t.Errorf("node %s (%s) left unfused", nd.name, nd.op)
		}
	}
	if n != 6 {
		t.Errorf("%d fused cells, want 6", n)
	}
}
