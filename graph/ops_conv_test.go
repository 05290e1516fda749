package graph_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/graph"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// The corners of the conv, pooling, resizing, padding and normalisation
// ops that the ONNX node suite (onnx 1.12, up to opset 17) leaves out:
// one-node models written by scripts/conv_cases.py with ONNX Runtime's
// outputs (cross-checked with PyTorch or the onnx reference where they
// compute the same thing), in the node suite's layout.
const convCasesDir = "../fixtures/conv-cases"

func TestConvCases(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(convCasesDir, "manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s/manifest.json is absent: write it with /usr/bin/python3 scripts/conv_cases.py", convCasesDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Cases []struct {
			Name   string `json:"name"`
			Op     string `json:"op"`
			Opset  int    `json:"opset"`
			Expect string `json:"expect"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range m.Cases {
		t.Run(c.Name, func(t *testing.T) {
			r := runNodeTest(filepath.Join(convCasesDir, c.Name), []string{c.Op})
			attr, refuse := strings.CutPrefix(c.Expect, "refuse:")
			switch {
			case refuse && r.status != nodeRefused:
				t.Errorf("%s-%d: %s (%s), want a refusal naming attribute %s", c.Op, c.Opset, r.status, r.detail, attr)
			case refuse && !strings.Contains(r.detail, attr):
				t.Errorf("%s-%d refused with %q, which does not name attribute %s", c.Op, c.Opset, r.detail, attr)
			case !refuse && r.status != nodePass:
				t.Errorf("%s-%d: %s: %s", c.Op, c.Opset, r.status, r.detail)
			}
		})
	}
}

// A refusal names the attribute in the error's Attr field too.
func TestResizeAntialiasRefusal(t *testing.T) {
	dir := filepath.Join(convCasesDir, "resize18_antialias_shrinking")
	g, err := graph.Load(filepath.Join(dir, "model.onnx"), graph.Options{Threads: 1})
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("no fixture")
	}
	if err == nil {
		_, err = g.Run(map[string]*tensor.Tensor{"x0": tensor.FromFloats(make([]float32, 64), 1, 1, 8, 8)})
	}
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Attr != "antialias" || ge.Kind != graph.Unsupported || ge.Op != "Resize" {
		t.Fatalf("err = %#v, want an Unsupported error naming Resize and antialias", err)
	}
}
