package graph_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/graph"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// The ONNX project's backend node tests that issue 8 asks the interpreter to
// pass: every generated test whose operators are all in issue 8's list and
// whose tensors are float32/int64/int32/bool, written by
// scripts/onnx_node_suite.py into fixtures/onnx-node (see its README.md for
// the command, the licence and the skip list).
const nodeSuiteDir = "../fixtures/onnx-node"

// nodeSuiteMinPass is the fraction of the suite that must pass: all of it
// (437 of 437 since the op families landed; 193 with 45 ops, 53 with 22).
// Issue 8's goal was 0.95.
const nodeSuiteMinPass = 1.0

// The suite's own tolerance (onnx/backend/test/runner: rtol 1e-3, atol
// 1e-7, as numpy.testing.assert_allclose: NaN equals NaN); integers and
// booleans exact.
const (
	nodeSuiteRtol = 1e-3
	nodeSuiteAtol = 1e-7
)

type nodeManifest struct {
	ONNX  string `json:"onnx"`
	Tests []struct {
		Name   string   `json:"name"`
		Op     string   `json:"op"`
		Ops    []string `json:"ops"`
		Opset  int      `json:"opset"`
		DTypes []string `json:"dtypes"`
	} `json:"tests"`
}

// Outcome of one node test.
const (
	nodePass    = "pass"
	nodeRefused = "refused" // Load or Run returned an error
	nodeWrong   = "wrong"   // numbers, shape or dtype differ
	nodePanic   = "panic"   // must never happen (also: an "internal error" graph recovered)
)

type nodeResult struct {
	status string
	detail string
	// namesOp: a refusal whose error names an operator of the test's
	// graph (a *graph.Error with Op set, or the op's name in the text).
	namesOp bool
}

// TestONNXNodeSuite runs every selected ONNX node test through graph.Load
// and Graph.Run. A wrong result or a panic fails the test; a refusal (an
// error from Load or Run) does not, but counts against the pass rate, which
// must stay at or above nodeSuiteMinPass. Every outcome is logged in a table
// by op (go test -v); nothing is written anywhere.
//
// One test: go test ./graph -run 'TestONNXNodeSuite/^test_conv_with_strides_padding$' -v
func TestONNXNodeSuite(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(nodeSuiteDir, "manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s/manifest.json is absent: write the suite with /usr/bin/python3 scripts/onnx_node_suite.py", nodeSuiteDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var m nodeManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s/manifest.json: %v", nodeSuiteDir, err)
	}
	if len(m.Tests) == 0 {
		t.Fatalf("%s/manifest.json lists no tests", nodeSuiteDir)
	}

	type opCount struct{ pass, refused, wrong, panics, unnamed int }
	byOp := map[string]*opCount{}
	var total opCount
	ran := 0
	var refusals, unnamed []string
	for _, tc := range m.Tests {
		t.Run(tc.Name, func(t *testing.T) {
			ran++
			r := runNodeTest(filepath.Join(nodeSuiteDir, tc.Name), tc.Ops)
			c := byOp[tc.Op]
			if c == nil {
				c = &opCount{}
				byOp[tc.Op] = c
			}
			switch r.status {
			case nodePass:
				c.pass++
				total.pass++
			case nodeRefused:
				c.refused++
				total.refused++
				refusals = append(refusals, tc.Name+": "+r.detail)
				if !r.namesOp {
					c.unnamed++
					total.unnamed++
					unnamed = append(unnamed, tc.Name+": "+r.detail)
				}
				t.Logf("refused: %s", r.detail)
			case nodeWrong:
				c.wrong++
				total.wrong++
				t.Errorf("wrong result (ops %s, opset %d): %s", strings.Join(tc.Ops, ","), tc.Opset, r.detail)
			case nodePanic:
				c.panics++
				total.panics++
				t.Errorf("panic (ops %s, opset %d): %s", strings.Join(tc.Ops, ","), tc.Opset, r.detail)
			}
		})
	}

	var tab strings.Builder
	fmt.Fprintf(&tab, "ONNX node suite (onnx %s, %d tests): pass %d, refused %d (%d name no op of the graph), wrong %d, panic %d\n",
		m.ONNX, ran, total.pass, total.refused, total.unnamed, total.wrong, total.panics)
	fmt.Fprintf(&tab, "%-26s %5s %8s %6s %6s\n", "op", "pass", "refused", "wrong", "panic")
	ops := make([]string, 0, len(byOp))
	for op := range byOp {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		c := byOp[op]
		fmt.Fprintf(&tab, "%-26s %5d %8d %6d %6d\n", op, c.pass, c.refused, c.wrong, c.panics)
	}
	t.Log("\n" + tab.String())
	if testing.Verbose() && len(refusals) > 0 {
		t.Logf("refusals:\n%s", strings.Join(refusals, "\n"))
	}
	if len(unnamed) > 0 {
		t.Logf("%d refusals do not name an operator of the test's graph (issue 8 wants each to name the op and the attribute):\n%s",
			len(unnamed), strings.Join(unnamed, "\n"))
	}
	if ran < len(m.Tests) {
		return // filtered with -run: no pass-rate floor
	}
	rate := float64(total.pass) / float64(ran)
	t.Logf("pass rate %.1f%% (floor %.1f%%, goal 95%%)", 100*rate, 100*nodeSuiteMinPass)
	if rate < nodeSuiteMinPass {
		t.Errorf("pass rate %.4f (%d of %d) is below the floor nodeSuiteMinPass = %.4f", rate, total.pass, ran, nodeSuiteMinPass)
	}
}

// runNodeTest loads dir/model.onnx and runs every test_data_set_* in it.
// A panic anywhere (ours or the interpreter's) is caught and reported.
func runNodeTest(dir string, ops []string) (res nodeResult) {
	defer func() {
		if p := recover(); p != nil {
			stack := string(debug.Stack())
			if len(stack) > 2000 {
				stack = stack[:2000] + "..."
			}
			res = nodeResult{status: nodePanic, detail: fmt.Sprintf("%v\n%s", p, stack)}
		}
	}()
	refused := func(err error) nodeResult {
		// graph recovers a panic at its API boundary and returns it as an
		// "internal error"; on these well-formed models that is a panic all
		// the same.
		if strings.Contains(err.Error(), "internal error") {
			return nodeResult{status: nodePanic, detail: "recovered inside graph: " + err.Error()}
		}
		return nodeResult{status: nodeRefused, detail: err.Error(), namesOp: errorNamesOp(err, ops)}
	}
	g, err := graph.Load(filepath.Join(dir, "model.onnx"), graph.Options{Threads: 1})
	if err != nil {
		return refused(err)
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		return nodeResult{status: nodeWrong, detail: "harness: no test_data_set_* in " + dir}
	}
	sort.Strings(sets)
	for _, set := range sets {
		inputs, err := readNodeTensors(set, "input", g.Inputs())
		if err != nil {
			return nodeResult{status: nodeWrong, detail: "harness: " + err.Error()}
		}
		want, err := readNodeTensors(set, "output", g.Outputs())
		if err != nil {
			return nodeResult{status: nodeWrong, detail: "harness: " + err.Error()}
		}
		got, err := g.Run(inputs)
		if err != nil {
			return refused(err)
		}
		for _, o := range g.Outputs() {
			w, ok := want[o.Name]
			if !ok {
				continue // an output the suite has no file for
			}
			if msg := compareNodeTensor(got[o.Name], w); msg != "" {
				return nodeResult{status: nodeWrong, detail: fmt.Sprintf("%s: output %q: %s", filepath.Base(set), o.Name, msg)}
			}
		}
	}
	return nodeResult{status: nodePass}
}

// errorNamesOp reports whether a refusal names an operator of the graph.
func errorNamesOp(err error, ops []string) bool {
	var ge *graph.Error
	if errors.As(err, &ge) && ge.Op != "" {
		return true
	}
	msg := err.Error()
	for _, op := range ops {
		if strings.Contains(msg, op) {
			return true
		}
	}
	return false
}

// readNodeTensors reads set/<kind>_K.pb for K = 0, 1, ... and names them
// after the graph's values: by the TensorProto's name when it is one of
// them, else by position (the ONNX runner feeds them positionally).
func readNodeTensors(set, kind string, vis []graph.ValueInfo) (map[string]*tensor.Tensor, error) {
	files, _ := filepath.Glob(filepath.Join(set, kind+"_*.pb"))
	out := map[string]*tensor.Tensor{}
	known := map[string]bool{}
	for _, vi := range vis {
		known[vi.Name] = true
	}
	for k := 0; k < len(files); k++ {
		path := filepath.Join(set, fmt.Sprintf("%s_%d.pb", kind, k))
		name, t, err := readTensorPB(path)
		if err != nil {
			return nil, err
		}
		if !known[name] {
			if k >= len(vis) {
				return nil, fmt.Errorf("%s: %d %s files for %d graph %ss", path, len(files), kind, len(vis), kind)
			}
			name = vis[k].Name
		}
		out[name] = t
	}
	return out, nil
}

// readTensorPB decodes one TensorProto file with the loader's ONNX tensor
// decoder into a tensor.Tensor.
func readTensorPB(path string) (string, *tensor.Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(b, &tp); err != nil {
		return "", nil, fmt.Errorf("%s: %v", path, err)
	}
	nt, err := loader.DecodeAttributeTensor(path, &tp)
	if err != nil {
		return "", nil, err
	}
	if err := nt.Check(); err != nil {
		return "", nil, fmt.Errorf("%s: %v", path, err)
	}
	return tp.GetName(), nt.Tensor, nil
}

// compareNodeTensor returns "" when got matches want: same dtype and shape,
// floats within the suite's tolerance (NaN matches NaN, infinities their own
// sign), integers and booleans exactly.
func compareNodeTensor(got, want *tensor.Tensor) string {
	if got == nil {
		return "missing from the graph's results"
	}
	if got.DType != want.DType {
		return fmt.Sprintf("dtype %s, want %s", got.DType, want.DType)
	}
	if !tensor.SameShape(got.Shape, want.Shape) {
		return fmt.Sprintf("shape %s, want %s", tensor.ShapeString(got.Shape), tensor.ShapeString(want.Shape))
	}
	if err := got.Check(); err != nil {
		return err.Error()
	}
	if want.IsFloat() {
		worst, at, bad := 0.0, -1, 0
		for i, w := range want.Data {
			g, r := float64(got.Data[i]), float64(w)
			if math.IsNaN(r) || math.IsNaN(g) {
				if math.IsNaN(r) != math.IsNaN(g) {
					bad++
					if at < 0 {
						at = i
					}
					worst = math.Inf(1)
				}
				continue
			}
			if math.IsInf(r, 0) || math.IsInf(g, 0) {
				if g != r {
					bad++
					if at < 0 {
						at = i
					}
					worst = math.Inf(1)
				}
				continue
			}
			if d := math.Abs(g - r); d > nodeSuiteAtol+nodeSuiteRtol*math.Abs(r) {
				bad++
				if at < 0 || d > worst {
					worst, at = d, i
				}
			}
		}
		if bad > 0 {
			return fmt.Sprintf("%d of %d values outside rtol %g atol %g; max |diff| %.3g, e.g. at flat index %d: got %g, want %g",
				bad, len(want.Data), nodeSuiteRtol, nodeSuiteAtol, worst, at, got.Data[at], want.Data[at])
		}
		return ""
	}
	for i, w := range want.Ints {
		if got.Ints[i] != w {
			return fmt.Sprintf("value at flat index %d is %d, want %d (exact)", i, got.Ints[i], w)
		}
	}
	return ""
}

// The comparator itself: the suite's rules, not numbers of ours.
func TestCompareNodeTensor(t *testing.T) {
	f := func(v ...float32) *tensor.Tensor { return tensor.FromFloats(v, len(v)) }
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct {
		name      string
		got, want *tensor.Tensor
		ok        bool
	}{
		{"equal", f(1, 2), f(1, 2), true},
		{"within rtol", f(1000.9), f(1000), true},
		{"outside rtol", f(1001.1), f(1000), false},
		{"atol near zero", f(5e-8), f(0), true},
		{"outside atol", f(2e-7), f(0), false},
		{"nan matches nan", f(nan), f(nan), true},
		{"nan vs number", f(nan), f(1), false},
		{"number vs nan", f(1), f(nan), false},
		{"inf matches inf", f(inf), f(inf), true},
		{"inf vs -inf", f(inf), f(-inf), false},
		{"shape", tensor.FromFloats([]float32{1, 2}, 1, 2), f(1, 2), false},
		{"dtype", tensor.FromInts(tensor.Int64, []int64{1, 2}, 2), f(1, 2), false},
		{"bool vs int64", tensor.FromInts(tensor.Int64, []int64{1}, 1), tensor.FromInts(tensor.Bool, []int64{1}, 1), false},
		{"ints exact", tensor.FromInts(tensor.Int64, []int64{1 << 60}, 1), tensor.FromInts(tensor.Int64, []int64{1<<60 + 1}, 1), false},
		{"ints equal", tensor.FromInts(tensor.Int32, []int64{-3}, 1), tensor.FromInts(tensor.Int32, []int64{-3}, 1), true},
		{"missing", nil, f(1), false},
	}
	for _, c := range cases {
		msg := compareNodeTensor(c.got, c.want)
		if (msg == "") != c.ok {
			t.Errorf("%s: compareNodeTensor = %q, want ok=%v", c.name, msg, c.ok)
		}
	}
}
