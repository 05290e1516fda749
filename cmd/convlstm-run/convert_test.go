package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/runtime"
	"github.com/convlstm-go/convlstm-go/tensor"
)

const stFixtures = "../../fixtures/safetensors"

func closeTo(t *testing.T, label string, got, want *tensor.Tensor) float64 {
	t.Helper()
	if got == nil || !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("%s: got %v, want shape %v", label, got, want.Shape)
	}
	worst := 0.0
	for i, v := range want.Data {
		d := math.Abs(float64(got.Data[i] - v))
		worst = max(worst, d)
		if d > 1e-5+1e-5*math.Abs(float64(v)) {
			t.Fatalf("%s[%d] = %v, PyTorch %v", label, i, got.Data[i], v)
		}
	}
	return worst
}

// TestConvertONNX: .pt (gate order ifgo) → convert → .onnx → run (the
// graph interpreter) equals PyTorch, and inspect describes it.
func TestConvertONNX(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.onnx")
	var log bytes.Buffer
	if err := runConvert(&log, convertFlags{weights: filepath.Join(stFixtures, "model.pt"), output: out, gates: "ifgo", opset: 17}); err != nil {
		t.Fatal(err)
	}
	npz := filepath.Join(dir, "o.npz")
	if err := runRun(&log, runFlags{weights: out, inputs: []string{filepath.Join(stFixtures, "input.npy")}, output: npz, threads: 2}); err != nil {
		t.Fatal(err)
	}
	got, _, err := loader.ReadNPZ(npz)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := loader.ReadNPZ(filepath.Join(stFixtures, "ref.npz"))
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range want {
		t.Logf("%s: worst |go-ref| = %.3g", k, closeTo(t, k, got[k], w))
	}
	var insp bytes.Buffer
	if err := runInspect(&insp, out, "", "", false); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"input:    input float32 (batch, time, 3, height, width)", "Scan×1", "gate_order = ifgo", "runs:     yes",
		"model 1:  ONNX graph (IR version 8, opset 17", "model 2:  ConvLSTM (cell_list) at (top level, no prefix)",
		"gates:    ifgo (the conv's output blocks; read from the graph's cell updates", "cells:    2 with gate order ifgo"} {
		if !strings.Contains(insp.String(), s) {
			t.Errorf("inspect output lacks %q:\n%s", s, insp.String())
		}
	}
	insp.Reset()
	if err := runInspect(&insp, out, "", "", true); err != nil || !strings.Contains(insp.String(), `"opset": 17`) {
		t.Errorf("inspect --json: %v\n%s", err, insp.String())
	}
}

// TestConvertSafetensors: the converted file runs with no --gates (the gate
// order comes from its metadata) to PyTorch's numbers.
func TestConvertSafetensors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.safetensors")
	if err := runConvert(&bytes.Buffer{}, convertFlags{weights: filepath.Join(stFixtures, "model.pt"), output: out, gates: "ifgo"}); err != nil {
		t.Fatal(err)
	}
	m, err := convlstm.Load(out, convlstm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Gates != "ifgo" {
		t.Fatalf("gates %q from the converted file's metadata, want ifgo", m.Gates)
	}
	r, err := runtime.New(m, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	x, err := loader.ReadNPY(filepath.Join(stFixtures, "input.npy"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Forward(x, runtime.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := loader.ReadNPZ(filepath.Join(stFixtures, "ref.npz"))
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "output", res.Output, want["output"])
	for l, s := range res.Final {
		closeTo(t, fmt.Sprint("h_", l), s.H, want[fmt.Sprint("h_", l)])
		closeTo(t, fmt.Sprint("c_", l), s.C, want[fmt.Sprint("c_", l)])
	}
}

// TestConvertFailureLeavesNoFile: a failed conversion writes nothing and
// leaves no temporary file.
func TestConvertFailureLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		f    convertFlags
		want string
	}{
		{convertFlags{weights: filepath.Join(stFixtures, "model.pt"), output: filepath.Join(dir, "m.onnx"), opset: 9}, "opset 9"},
		{convertFlags{weights: filepath.Join(stFixtures, "input.npy"), output: filepath.Join(dir, "m.onnx")}, ""},
		{convertFlags{weights: filepath.Join(stFixtures, "model.pt"), output: filepath.Join(dir, "m.bin")}, ".onnx or .safetensors"},
		{convertFlags{weights: filepath.Join(stFixtures, "model.pt"), output: filepath.Join(dir, "m.onnx"), gates: "abcd"}, "gate order"},
	} {
		err := runConvert(&bytes.Buffer{}, c.f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.f, err, c.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files left behind: %v", ents)
	}
}

// TestConvertFromONNX: a torch-exported graph converts back to weights,
// with the gate order read from the graph (fiog here), and the converted
// Scan graph gives PyTorch's numbers on the fixture's input.
func TestConvertFromONNX(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, gates string }{{"fiog_nobias_op13", "fiog"}, {"dynamic_op11", "ifog"}} {
		src := filepath.Join("../../fixtures/onnx", c.name+".onnx")
		st := filepath.Join(dir, c.name+".safetensors")
		if err := runConvert(&bytes.Buffer{}, convertFlags{weights: src, output: st}); err != nil {
			t.Fatal(err)
		}
		m, err := convlstm.Load(st, convlstm.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Gates) != c.gates {
			t.Errorf("%s: gates %s, want %s", c.name, m.Gates, c.gates)
		}
		out := filepath.Join(dir, c.name+".onnx")
		if err := runConvert(&bytes.Buffer{}, convertFlags{weights: src, output: out, opset: 13}); err != nil {
			t.Fatal(err)
		}
		npz := filepath.Join(dir, c.name+".npz")
		if err := runRun(&bytes.Buffer{}, runFlags{weights: out, inputs: []string{filepath.Join("../../fixtures/onnx", c.name+".input.npy")}, output: npz, threads: 1}); err != nil {
			t.Fatal(err)
		}
		got, _, err := loader.ReadNPZ(npz)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := loader.ReadNPZ(filepath.Join("../../fixtures/onnx", c.name+".ref.npz"))
		if err != nil {
			t.Fatal(err)
		}
		for k, w := range want {
			closeTo(t, c.name+" "+k, got[k], w)
		}
	}
}
