package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/loader"
)

// bf16ForwardBound bounds `run --precision bf16` on the forward fixtures:
// max |bf16 − PyTorch| of each output and final state, relative to its
// scale (max |PyTorch|). Measured with VDPBF16PS (Zen 5): at most 8.3e-3
// (README's bf16 paragraph); a lost channel, tap or pair errs by far more.
const bf16ForwardBound = 2e-2

// TestForwardFixturesBF16 runs every forward fixture with --precision bf16:
// every tensor within bf16ForwardBound of PyTorch's scale, and the weights
// really rounded (some tensor differs from PyTorch by more than the float32
// parity bar). Under -tags purego it checks the converted path (measured:
// at most 4.6e-3).
func TestForwardFixturesBF16(t *testing.T) {
	dirs, _ := filepath.Glob("../../fixtures/forward/*/case.json")
	if len(dirs) == 0 {
		t.Fatal("no fixtures found")
	}
	worstAll := 0.0
	for _, cj := range dirs {
		dir := filepath.Dir(cj)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			raw, err := os.ReadFile(cj)
			if err != nil {
				t.Fatal(err)
			}
			var c fixtureCase
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatalf("%s: %v", cj, err)
			}
			out := filepath.Join(t.TempDir(), "out.npz")
			args := []string{"run", "--weights", filepath.Join(dir, c.Weights), "--input", filepath.Join(dir, c.Input), "--output", out, "--precision", "bf16", "--threads", "2"}
			if c.StateIn != "" {
				args = append(args, "--state-in", filepath.Join(dir, c.StateIn))
			}
			text, err := runCLI(t, append(args, c.Args...)...)
			if err != nil {
				t.Fatalf("%s: %v", c.Description, err)
			}
			if !strings.Contains(text, "precision: "+engine.PrecisionPath(engine.BFloat16)) {
				t.Errorf("summary does not say the precision:\n%s", text)
			}
			want, keys, err := loader.ReadNPZ(filepath.Join(dir, c.Expected))
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := loader.ReadNPZ(out)
			if err != nil {
				t.Fatal(err)
			}
			moved := false
			for _, k := range keys {
				g, w := got[k], want[k]
				if g == nil || len(g.Data) != len(w.Data) {
					t.Fatalf("%s: missing or of the wrong size", k)
				}
				scale, e := 0.0, 0.0
				for i, v := range w.Data {
					scale = max(scale, math.Abs(float64(v)))
					d := math.Abs(float64(g.Data[i]) - float64(v))
					if math.IsNaN(d) {
						d = math.Inf(1)
					}
					e = max(e, d)
					moved = moved || d > parityBar.Abs+parityBar.Rel*math.Abs(float64(v))
				}
				rel := e / max(scale, 1e-30)
				worstAll = max(worstAll, rel)
				t.Logf("%s: scale %.3g, max |bf16 − PyTorch| %.3g (%.2e of scale)", k, scale, e, rel)
				if !(rel <= bf16ForwardBound) {
					t.Errorf("%s: bf16 error %.3g = %.2e of the scale %.3g, over %.0e", k, e, rel, scale, bf16ForwardBound)
				}
			}
			// weights-bf16's weights are bfloat16 already: rounding them
			// changes nothing, and only native kernels (inputs rounded
			// too) move the outputs.
			if !moved && (filepath.Base(dir) != "weights-bf16" || engine.BF16Native()) {
				t.Errorf("every tensor within the float32 parity bar: were the weights rounded?")
			}
		})
	}
	t.Logf("worst bf16 error over the forward fixtures: %.2e of the scale", worstAll)
}

// An unknown --precision is refused, naming the flag and the choices.
func TestPrecisionFlagErrors(t *testing.T) {
	for _, cmd := range [][]string{
		{"run", "--precision", "fp8"},
		{"bench", "--weights", "../../fixtures/forward/single-cell/weights.pt", "--shape", "1,1,3,8,8", "--precision", "half"},
	} {
		_, err := runCLI(t, cmd...)
		if err == nil || !strings.Contains(err.Error(), "--precision") || !strings.Contains(err.Error(), "bf16") {
			t.Errorf("%v: error %v, want one naming --precision and its values", cmd, err)
		}
	}
}

// bench --precision bf16 says which path ran; the default says float32.
func TestBenchPrecision(t *testing.T) {
	w := "../../fixtures/forward/single-cell/weights.pt"
	for p, want := range map[string]string{"": "precision float32", "bf16": "precision " + engine.PrecisionPath(engine.BFloat16)} {
		args := []string{"bench", "--weights", w, "--shape", "1,2,3,8,8", "--runs", "1", "--warmup", "0"}
		if p != "" {
			args = append(args, "--precision", p)
		}
		text, err := runCLI(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, want) {
			t.Errorf("bench --precision %q: output lacks %q:\n%s", p, want, text)
		}
	}
}
