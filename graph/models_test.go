package graph_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/graph"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Whole video-prediction models exported by torch.onnx.export, with
// PyTorch's outputs and ONNX Runtime's error on them: written by
// scripts/make_model_fixtures.py (fixtures/models/README.md has the command
// and the list).
const modelsDir = "../fixtures/models"

// modelsMinPass is how many whole-model cases must pass: all 32 (none did
// when the test was written, with the 22-op interpreter).
const modelsMinPass = 32

type modelCase struct {
	Description  string `json:"description"`
	Architecture string `json:"architecture"`
	Model        string `json:"model"`
	InputsFile   string `json:"inputs_file"`
	Expected     string `json:"expected"`
	Opset        int    `json:"opset"`
	Axes         string `json:"axes"`
	Tolerance    struct {
		Abs map[string]float64 `json:"abs"`
	} `json:"tolerance"`
	ORT struct {
		Version   string             `json:"version"`
		MaxAbsErr map[string]float64 `json:"max_abs_err"`
	} `json:"ort"`
}

// TestWholeModels runs every case of fixtures/models through graph.Load and
// Graph.Run and compares each output with PyTorch's: it must be within
// max(tolerance, ONNX Runtime's error) (case.json). A wrong result or a panic
// fails the test; a refusal (an error from Load or Run) is logged and counts
// against modelsMinPass. Nothing is written.
func TestWholeModels(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(modelsDir, "*", "case.json"))
	if len(files) == 0 {
		t.Skipf("no %s/*/case.json: write them with /usr/bin/python3 scripts/make_model_fixtures.py", modelsDir)
	}
	var summary []string
	pass, ran := 0, 0
	for _, f := range files {
		dir := filepath.Dir(f)
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			ran++
			r := runModelCase(t, dir)
			switch r.status {
			case nodePass:
				pass++
			case nodeRefused:
				t.Logf("refused: %s", r.detail)
			case nodeWrong:
				t.Errorf("wrong result: %s", r.detail)
			case nodePanic:
				t.Errorf("panic: %s", r.detail)
			}
			detail := r.detail
			if len(detail) > 160 {
				detail = detail[:160] + "..."
			}
			summary = append(summary, fmt.Sprintf("%-28s %-8s %s", name, r.status, strings.ReplaceAll(detail, "\n", " ")))
		})
	}
	t.Logf("whole models: %d of %d pass\n%s", pass, ran, strings.Join(summary, "\n"))
	if ran == len(files) && pass < modelsMinPass {
		t.Errorf("%d whole-model cases pass, fewer than modelsMinPass = %d", pass, modelsMinPass)
	}
}

func runModelCase(t *testing.T, dir string) (res nodeResult) {
	defer func() {
		if p := recover(); p != nil {
			res = nodeResult{status: nodePanic, detail: fmt.Sprintf("%v\n%s", p, debug.Stack())}
		}
	}()
	b, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c modelCase
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s/case.json: %v", dir, err)
	}
	inputs, err := readNPZTensors(filepath.Join(dir, c.InputsFile))
	if err != nil {
		t.Fatal(err)
	}
	want, err := readNPZTensors(filepath.Join(dir, c.Expected))
	if err != nil {
		t.Fatal(err)
	}
	refused := func(err error) nodeResult {
		if strings.Contains(err.Error(), "internal error") {
			return nodeResult{status: nodePanic, detail: "recovered inside graph: " + err.Error()}
		}
		return nodeResult{status: nodeRefused, detail: err.Error()}
	}
	model := c.Model
	if !filepath.IsAbs(model) {
		model = filepath.Join(dir, model) // the real model's case points at the demo model
	}
	g, err := graph.Load(model, graph.Options{})
	if err != nil {
		return refused(err)
	}
	got, err := g.Run(inputs)
	if err != nil {
		return refused(err)
	}
	var report []string
	wrong := false
	for name, w := range want {
		tol, ok := c.Tolerance.Abs[name]
		if !ok {
			t.Fatalf("%s/case.json: no tolerance for output %q", dir, name)
		}
		bound := max(tol, c.ORT.MaxAbsErr[name])
		msg, maxErr := compareModelOutput(got[name], w, bound)
		if msg != "" {
			wrong = true
			report = append(report, fmt.Sprintf("output %q: %s", name, msg))
			continue
		}
		report = append(report, fmt.Sprintf("output %q max |diff| %.3g (bound %.3g: tolerance %.3g, ORT %.3g)",
			name, maxErr, bound, tol, c.ORT.MaxAbsErr[name]))
	}
	if wrong {
		return nodeResult{status: nodeWrong, detail: fmt.Sprintf("%s (opset %d, %s): %s", c.Architecture, c.Opset, c.Axes, strings.Join(report, "; "))}
	}
	return nodeResult{status: nodePass, detail: strings.Join(report, "; ")}
}

// compareModelOutput checks dtype, shape and max |got − want| ≤ bound; on
// failure it names the worst element and prints the first values side by side.
func compareModelOutput(got, want *tensor.Tensor, bound float64) (string, float64) {
	if got == nil {
		return "missing from the graph's results", 0
	}
	if got.DType != want.DType {
		return fmt.Sprintf("dtype %s, want %s", got.DType, want.DType), 0
	}
	if !tensor.SameShape(got.Shape, want.Shape) {
		return fmt.Sprintf("shape %s, want %s", tensor.ShapeString(got.Shape), tensor.ShapeString(want.Shape)), 0
	}
	if err := got.Check(); err != nil {
		return err.Error(), 0
	}
	worst, at := 0.0, 0
	for i, w := range want.Data {
		d := math.Abs(float64(got.Data[i]) - float64(w))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if d > worst {
			worst, at = d, i
		}
	}
	if worst <= bound {
		return "", worst
	}
	var side strings.Builder
	for i := 0; i < min(4, len(want.Data)); i++ {
		fmt.Fprintf(&side, " [%d] %g vs %g;", i, got.Data[i], want.Data[i])
	}
	return fmt.Sprintf("max |diff| %.3g > bound %.3g at flat index %d (got %g, PyTorch %g); first values got vs PyTorch:%s",
		worst, bound, at, got.Data[at], want.Data[at], side.String()), worst
}

// readNPZTensors reads an .npz whose arrays must all be float32 (what
// make_model_fixtures.py writes).
func readNPZTensors(path string) (map[string]*tensor.Tensor, error) {
	arrays, _, err := loader.ReadNPZ(path)
	if err != nil {
		return nil, err
	}
	for name, a := range arrays {
		if a.DType != tensor.Float32 {
			return nil, fmt.Errorf("%s: array %q is %s, want float32", path, name, a.DType)
		}
	}
	return arrays, nil
}

// The harness itself on a graph the interpreter runs today (a ConvLSTM
// export from fixtures/onnx with PyTorch's outputs): the case passes, and
// fails as wrong once one expected value is moved past the bound.
func TestWholeModelHarness(t *testing.T) {
	x, err := loader.ReadNPY("../fixtures/onnx/static_op13.input.npy")
	if err != nil {
		t.Fatal(err)
	}
	ref, keys, err := loader.ReadNPZ("../fixtures/onnx/static_op13.ref.npz")
	if err != nil {
		t.Fatal(err)
	}
	model, err := filepath.Abs("../fixtures/onnx/static_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	write := func(dir string, expected map[string]*tensor.Tensor) {
		if err := loader.WriteNPZ(filepath.Join(dir, "inputs.npz"), []string{"input"}, map[string]*tensor.Tensor{"input": x}); err != nil {
			t.Fatal(err)
		}
		if err := loader.WriteNPZ(filepath.Join(dir, "expected.npz"), keys, expected); err != nil {
			t.Fatal(err)
		}
		c := map[string]any{"architecture": "convlstm", "model": model, "inputs_file": "inputs.npz",
			"expected": "expected.npz", "opset": 13, "axes": "static"}
		tol, ortErr := map[string]float64{}, map[string]float64{}
		for k, v := range expected {
			m := 1.0
			for _, f := range v.Data {
				m = max(m, math.Abs(float64(f)))
			}
			tol[k], ortErr[k] = 1e-5*m, 0
		}
		c["tolerance"] = map[string]any{"abs": tol}
		c["ort"] = map[string]any{"max_abs_err": ortErr}
		b, _ := json.Marshal(c)
		if err := os.WriteFile(filepath.Join(dir, "case.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	write(dir, ref)
	if r := runModelCase(t, dir); r.status != nodePass {
		t.Fatalf("PyTorch's own outputs: %s: %s", r.status, r.detail)
	}
	moved := map[string]*tensor.Tensor{}
	for k, v := range ref {
		moved[k] = v.Clone()
	}
	moved["h_1"].Data[3] += 1e-3
	write(dir, moved)
	if r := runModelCase(t, dir); r.status != nodeWrong || !strings.Contains(r.detail, `"h_1"`) {
		t.Fatalf("one value moved by 1e-3: got %s: %s; want wrong naming h_1", r.status, r.detail)
	}
}
