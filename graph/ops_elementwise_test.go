package graph_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestElementwiseCases runs the elementwise semantics cases written by
// scripts/elementwise_cases.py (fixtures/elementwise/manifest.json: each
// case's expected output is the ONNX reference formula's, checked against
// ONNX Runtime where it implements the case): integer division and
// wrap-around, Clip's missing bounds and opset-6 defaults, PRelu slope
// shapes, bool outputs of comparisons and logic with broadcasting, Where,
// Pow across types, variadic ops, the legacy broadcast attributes, NaN and
// extreme inputs. Every case must pass, with the node suite's tolerance.
func TestElementwiseCases(t *testing.T) {
	const dir = "../fixtures/elementwise"
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatalf("%v (write the cases with /usr/bin/python3 scripts/elementwise_cases.py)", err)
	}
	var m struct {
		Cases []struct {
			Name, Op, Note, ORT string
			Opset               int
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
			r := runNodeTest(filepath.Join(dir, c.Name), []string{c.Op})
			if r.status != nodePass {
				t.Errorf("%s at opset %d (%s): %s: %s", c.Op, c.Opset, c.Note, r.status, r.detail)
			}
		})
	}
}
