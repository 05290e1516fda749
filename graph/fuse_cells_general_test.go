package graph

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// gateBound is how far a fused general cell may be from its nodes run one
// by one: the pre-activations are bit-identical, the activations are
// ops.LSTMGates' polynomials instead of float64 maths (a few float32 ulps
// each), so at the values here (|c| below ~10) the outputs agree within a
// few 1e-7 (measured: at most 4.8e-7 on these cases).
const gateBound = 2e-6

// cellTensor is a deterministic float tensor of values of both signs, about
// N(0, scale²).
func cellTensor(seed uint64, scale float64, shape ...int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 7))
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64() * scale)
	}
	return t
}

// stlCell is OpenSTL's update: gates i, f, g, o from two Splits, forget
// bias +1 (opset 11: the Split sizes are an attribute; the exports' opset
// 13 and 17 form, sizes as an input, is in the whole-model fixtures).
func stlCell(b, hid, h, w int) testModel {
	g4 := []int{b, 4 * hid, h, w}
	sp := attrIs("split", int64(hid), int64(hid), int64(hid), int64(hid))
	return testModel{opset: 11, inputs: []string{"gx", "gh", "c"}, shapes: map[string][]int{"gx": g4, "gh": g4, "c": {b, hid, h, w}},
		consts: map[string]*tensor.Tensor{"one": f32(nil, 1)},
		nodes: []tnode{
			{"Split", []string{"gx"}, []string{"x0", "x1", "x2", "x3"}, []*onnxpb.AttributeProto{attrI("axis", 1), sp}},
			{"Split", []string{"gh"}, []string{"h0", "h1", "h2", "h3"}, []*onnxpb.AttributeProto{attrI("axis", 1), sp}},
			{"Add", []string{"x0", "h0"}, []string{"ai"}, nil}, {"Sigmoid", []string{"ai"}, []string{"i"}, nil},
			{"Add", []string{"x1", "h1"}, []string{"af0"}, nil}, {"Add", []string{"af0", "one"}, []string{"af"}, nil}, {"Sigmoid", []string{"af"}, []string{"f"}, nil},
			{"Add", []string{"x2", "h2"}, []string{"ag"}, nil}, {"Tanh", []string{"ag"}, []string{"g"}, nil},
			{"Mul", []string{"f", "c"}, []string{"fc"}, nil}, {"Mul", []string{"i", "g"}, []string{"ig"}, nil}, {"Add", []string{"fc", "ig"}, []string{"cn"}, nil},
			{"Add", []string{"x3", "h3"}, []string{"ao"}, nil}, {"Sigmoid", []string{"ao"}, []string{"o"}, nil},
			{"Tanh", []string{"cn"}, []string{"tc"}, nil}, {"Mul", []string{"o", "tc"}, []string{"h"}, nil},
		},
		outputs: []string{"h", "cn"}}
}

// peepholeCell is Shi et al.'s update with Hadamard peepholes, o reading
// c' (opset 17, one Split, operands in both orders). wShape is the
// peephole weights' shape; c a constant (the first step's zero state) when
// cConst is set.
func peepholeCell(b, hid, h, w int, wShape []int, cConst *tensor.Tensor) testModel {
	m := testModel{opset: 17, inputs: []string{"z", "c"}, shapes: map[string][]int{"z": {b, 4 * hid, h, w}, "c": {b, hid, h, w}},
		consts: map[string]*tensor.Tensor{"wci": cellTensor(11, 0.5, wShape...), "wcf": cellTensor(12, 0.5, wShape...), "wco": cellTensor(13, 0.5, wShape...)},
		nodes: []tnode{
			{"Split", []string{"z"}, []string{"z0", "z1", "z2", "z3"}, []*onnxpb.AttributeProto{attrI("axis", 1)}},
			{"Mul", []string{"wci", "c"}, []string{"pi"}, nil}, {"Add", []string{"z0", "pi"}, []string{"ai"}, nil}, {"Sigmoid", []string{"ai"}, []string{"i"}, nil},
			{"Mul", []string{"c", "wcf"}, []string{"pf"}, nil}, {"Add", []string{"pf", "z1"}, []string{"af"}, nil}, {"Sigmoid", []string{"af"}, []string{"f"}, nil},
			{"Tanh", []string{"z2"}, []string{"g"}, nil},
			{"Mul", []string{"f", "c"}, []string{"fc"}, nil}, {"Mul", []string{"g", "i"}, []string{"ig"}, nil}, {"Add", []string{"ig", "fc"}, []string{"cn"}, nil},
			{"Mul", []string{"wco", "cn"}, []string{"po"}, nil}, {"Add", []string{"z3", "po"}, []string{"ao"}, nil}, {"Sigmoid", []string{"ao"}, []string{"o"}, nil},
			{"Tanh", []string{"cn"}, []string{"tc"}, nil}, {"Mul", []string{"tc", "o"}, []string{"h"}, nil},
		},
		outputs: []string{"h", "cn"}}
	if cConst != nil {
		m.inputs = []string{"z"}
		m.consts["c"] = cConst
	}
	return m
}

// cellFeed draws the cell's inputs: gate pre-activations of scale 2 (some
// saturate), states of scale 1.5.
func cellFeed(m testModel, seed uint64) map[string]*tensor.Tensor {
	feed := map[string]*tensor.Tensor{}
	for k, name := range m.inputs {
		scale := 2.0
		if name == "c" {
			scale = 1.5
		}
		feed[name] = cellTensor(seed+uint64(k), scale, m.shapes[name]...)
	}
	return feed
}

// compareFused runs m fused (1 and 3 threads) and unfused and checks the
// fused graph's ops and that every output agrees within bound; it returns
// the largest difference.
func compareFused(t *testing.T, name string, m testModel, wantOps []string, bound float64) float64 {
	t.Helper()
	feed := cellFeed(m, 5)
	plain := m.load(t, Options{Threads: 1, NoFuse: true})
	want, err := plain.Run(feed)
	if err != nil {
		t.Fatalf("%s unfused: %v", name, err)
	}
	worst := 0.0
	for _, threads := range []int{1, 3} {
		g := m.load(t, Options{Threads: threads})
		if got := fusedOps(g); !slices.Equal(got, wantOps) {
			t.Fatalf("%s: fused graph runs %v, want %v", name, got, wantOps)
		}
		got, err := g.Run(feed)
		if err != nil {
			t.Fatalf("%s fused, %d threads: %v", name, threads, err)
		}
		for _, o := range m.outputs {
			a, b := got[o], want[o]
			if !slices.Equal(a.Shape, b.Shape) {
				t.Fatalf("%s: output %s has shape %v, unfused %v", name, o, a.Shape, b.Shape)
			}
			for i := range a.Data {
				d := math.Abs(float64(a.Data[i] - b.Data[i]))
				if !(d <= bound) {
					t.Fatalf("%s, %d threads: output %s[%d] = %g, unfused %g (|diff| %.3g > %g)", name, threads, o, i, a.Data[i], b.Data[i], d, bound)
				}
				worst = max(worst, d)
			}
		}
	}
	return worst
}

// TestGateCellFusion: OpenSTL's and the peephole cells (one and several
// Splits, constants of the cell's shape, per channel and scalar, a
// constant zero state, batch 2, planes of several blocks) each become one
// GateCell whose outputs agree with the nodes run one by one within
// gateBound, at 1 and 3 threads.
func TestGateCellFusion(t *testing.T) {
	zero := tensor.New(1, 8, 12, 20)
	cases := []struct {
		name string
		m    testModel
		want []string
	}{
		{"OpenSTL, forget bias", stlCell(2, 8, 12, 20), []string{"GateCell"}},
		{"OpenSTL, one small plane", stlCell(1, 3, 5, 7), []string{"GateCell"}},
		{"peephole, weights (hid, H, W)", peepholeCell(2, 8, 12, 20, []int{8, 12, 20}, nil), []string{"GateCell"}},
		{"peephole, weights per channel", peepholeCell(2, 8, 12, 20, []int{8, 1, 1}, nil), []string{"GateCell"}},
		{"peephole, scalar weights", peepholeCell(1, 8, 12, 20, []int{1}, nil), []string{"GateCell"}},
		{"peephole, zero state constant", peepholeCell(1, 8, 12, 20, []int{1, 8, 12, 20}, zero), []string{"GateCell"}},
		// Large enough to split between threads: by rows, and by
		// positions when there are fewer rows than threads.
		{"OpenSTL, split by rows", stlCell(2, 8, 32, 40), []string{"GateCell"}},
		{"peephole, split by positions", peepholeCell(1, 8, 2, 1300, []int{8, 2, 1300}, nil), []string{"GateCell"}},
	}
	worst := 0.0
	for _, c := range cases {
		worst = max(worst, compareFused(t, c.name, c.m, c.want, gateBound))
	}
	t.Logf("largest |fused - unfused|: %.3g", worst)
}

// TestGateCellFusionBoundaries: the pass leaves alone cells whose
// intermediates are read elsewhere, reads a Split's blocks as values when
// the Split has another reader, and runs the original nodes when the shapes
// at run time are not the plain case.
func TestGateCellFusionBoundaries(t *testing.T) {
	// σ(i) is also a graph output: no fusion (the chain pass takes what
	// it can; no GateCell).
	m := stlCell(1, 4, 6, 6)
	m.outputs = append(m.outputs, "i")
	g := m.load(t, Options{Threads: 1})
	if slices.Contains(fusedOps(g), "GateCell") {
		t.Errorf("σ(i) is a graph output, yet the cell was fused: %v", fusedOps(g))
	}
	compareFused(t, "σ(i) read outside", m, fusedOps(g), gateBound)

	// An intermediate read by a later node: no fusion.
	m = stlCell(1, 4, 6, 6)
	m.nodes = append(m.nodes, tnode{"Neg", []string{"ig"}, []string{"n"}, nil})
	m.outputs = append(m.outputs, "n")
	g = m.load(t, Options{Threads: 1})
	if slices.Contains(fusedOps(g), "GateCell") {
		t.Errorf("i·g has another reader, yet the cell was fused: %v", fusedOps(g))
	}

	// A Split block read elsewhere: the cell is fused, the Split stays and
	// the cell reads its outputs.
	m = stlCell(2, 4, 6, 6)
	m.nodes = append(m.nodes, tnode{"Neg", []string{"x2"}, []string{"n"}, nil})
	m.outputs = append(m.outputs, "n")
	compareFused(t, "a Split block read elsewhere", m, []string{"Split", "GateCell", "Neg"}, gateBound)

	// c' read by the next step and h' a graph output: fused, c' read after.
	m = stlCell(1, 4, 6, 6)
	m.nodes = append(m.nodes, tnode{"Mul", []string{"cn", "cn"}, []string{"c2"}, nil})
	m.outputs = []string{"h", "c2"}
	compareFused(t, "c' read after the cell", m, []string{"GateCell", "Mul"}, gateBound)

	// At run time, c of another shape (broadcast to the gates'): the
	// original nodes run, bit-identical to the unfused graph.
	m = stlCell(2, 4, 6, 6)
	m.shapes["c"] = []int{1, 4, 1, 1}
	feed := cellFeed(m, 9)
	want, err := m.load(t, Options{Threads: 1, NoFuse: true}).Run(feed)
	if err != nil {
		t.Fatal(err)
	}
	g = m.load(t, Options{Threads: 1})
	if !slices.Contains(fusedOps(g), "GateCell") {
		t.Fatalf("not fused: %v", fusedOps(g))
	}
	got, err := g.Run(feed)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range m.outputs {
		if i, ok := sameBits(got[o].Data, want[o].Data); !ok || !slices.Equal(got[o].Shape, want[o].Shape) {
			t.Errorf("fallback: output %s differs from the unfused graph at %d", o, i)
		}
	}
}

// TestGateCellPeepholeScalarPath: the peephole update in two halves (the
// path of kernel sets without ops.LSTMPeephole), its second half with the
// LSTMGates identity (σ(30) = 1, tanh(0) = 0) and without it, as on a
// kernel where it did not hold, agrees with the unfused nodes too.
func TestGateCellPeepholeScalarPath(t *testing.T) {
	if !gateIdentityOK() {
		t.Log("the identity does not hold on this CPU's kernels: the scalar path is the one in use")
	}
	savedPeep, saved := gatePeephole, gateIdentity
	defer func() { gatePeephole, gateIdentity = savedPeep, saved }()
	gatePeephole = false
	compareFused(t, "peephole, two halves", peepholeCell(2, 8, 12, 20, []int{8, 12, 20}, nil), []string{"GateCell"}, gateBound)
	gateIdentity = func() bool { return false }
	compareFused(t, "peephole, scalar second half", peepholeCell(2, 8, 12, 20, []int{8, 12, 20}, nil), []string{"GateCell"}, gateBound)
}

// TestGateCellPrograms: the programs read the structure as written: the
// forget bias is a scalar operand, the Splits' blocks are read in place, o
// reads c'; the peephole cell with weights of the cell's shape or per
// channel (leaves) runs as one peephole update, with scalar weights (not
// leaves) as programs.
func TestGateCellPrograms(t *testing.T) {
	for _, c := range []struct {
		m    testModel
		want string
		peep bool
	}{
		{stlCell(1, 4, 6, 6), "i: r0=gx[0]+gh[0]; r0\nf: r1=gx[1]+gh[1]; r2=r1+1; r2\no: r3=gx[3]+gh[3]; r3\ng: r4=gx[2]+gh[2]; r4\nc: c", false},
		{peepholeCell(1, 4, 6, 6, []int{4, 6, 6}, nil), "i: r1=z[0]+wci*c; r1\nf: r3=c*wcf+z[1]; r3\no: r5=z[3]+wco*c'; r5\ng: z[2]\nc: c", true},
		{peepholeCell(1, 4, 6, 6, []int{4, 1, 1}, nil), "i: r1=z[0]+wci*c; r1\nf: r3=c*wcf+z[1]; r3\no: r5=z[3]+wco*c'; r5\ng: z[2]\nc: c", true},
	} {
		g := c.m.load(t, Options{Threads: 1})
		var got []string
		for _, n := range g.main.nodes {
			if n.op == "GateCell" {
				got = append(got, n.gcell.describe())
				if (n.gcell.peep != nil) != c.peep {
					t.Errorf("%s: peephole update %v, want %v", n.gcell.describe(), n.gcell.peep != nil, c.peep)
				}
			}
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("programs:\n%s\nwant\n%s", strings.Join(got, "\n--\n"), c.want)
		}
	}
}

// TestGateCellsInModels: in the whole-model fixtures torch exported, every
// OpenSTL and peephole cell step is one GateCell (the plain ConvLSTM cells
// stay LSTMCells), and the fused graph's outputs agree with the unfused
// one's within gateBound times the output's scale.
func TestGateCellsInModels(t *testing.T) {
	for _, c := range []struct {
		dir   string
		cells int // cell steps in the graph
	}{
		{"openstl-op17-static", 8}, {"openstl-op11-dynamic", 8}, {"openstl-nhwc-op13-dynamic", 4},
		{"peephole-op13-static", 6}, {"peephole-op17-dynamic", 6},
	} {
		dir := filepath.Join("../fixtures/models", c.dir)
		if _, err := os.Stat(dir); err != nil {
			t.Skipf("%s: %v", dir, err)
		}
		in, _, err := loader.ReadNPZ(filepath.Join(dir, "inputs.npz"))
		if err != nil {
			t.Fatal(err)
		}
		var outs [2]map[string]*tensor.Tensor
		for k, noFuse := range []bool{true, false} {
			g, err := Load(filepath.Join(dir, "model.onnx"), Options{Threads: 2, NoFuse: noFuse})
			if err != nil {
				t.Fatal(err)
			}
			if !noFuse {
				if got := countOp(g.main, "GateCell"); got != c.cells {
					t.Errorf("%s: %d GateCell nodes, want %d (ops: %v)", c.dir, got, c.cells, fusedOps(g))
				}
			}
			if outs[k], err = g.Run(in); err != nil {
				t.Fatal(err)
			}
		}
		for name, want := range outs[0] {
			got := outs[1][name]
			scale := 1.0
			for _, v := range want.Data {
				scale = max(scale, math.Abs(float64(v)))
			}
			worst := 0.0
			for i := range want.Data {
				worst = max(worst, math.Abs(float64(got.Data[i]-want.Data[i])))
			}
			if worst > gateBound*scale {
				t.Errorf("%s: output %s: fused and unfused differ by %.3g (bound %.3g)", c.dir, name, worst, gateBound*scale)
			}
			t.Logf("%s: output %s: |fused - unfused| ≤ %.3g (scale %.3g)", c.dir, name, worst, scale)
		}
	}
}

func countOp(p *program, op string) int {
	c := 0
	for _, n := range p.nodes {
		if n.op == op {
			c++
		}
	}
	return c
}
