package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/model"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Bad input must give an error that names the file, key or shape at fault,
// and must leave no output file behind.
func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pt")
	os.WriteFile(empty, nil, 0o644)
	junk := filepath.Join(dir, "junk.pt")
	os.WriteFile(junk, []byte("this is not a checkpoint at all, just some text"), 0o644)
	fx := "../../fixtures/forward/"
	oneLayer := fx + "one-layer-3x3/weights.pt"
	oneInput := fx + "one-layer-3x3/input.npy"

	wrongState := fx + "initial-state/state_in.npz"
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing weights file", []string{"--weights", filepath.Join(dir, "nope.pt"), "--input", oneInput}, []string{"nope.pt"}},
		{"empty weights", []string{"--weights", empty, "--input", oneInput}, []string{"empty.pt", "empty"}},
		{"junk weights", []string{"--weights", junk, "--input", oneInput}, []string{"junk.pt"}},
		{"weights without input", []string{"--weights", oneLayer}, []string{"--input"}},
		{"input without weights", []string{"--input", oneInput}, []string{"--weights"}},
		{"wrong channels", []string{"--weights", oneLayer, "--input", fx + "real-mnist-enc1/input.npy"}, []string{"input.npy", "32 channels"}},
		{"weights as input", []string{"--weights", oneLayer, "--input", oneLayer}, []string{"weights.pt", ".npy"}},
		{"bad gates", []string{"--weights", oneLayer, "--input", oneInput, "--gates", "iffo"}, []string{"iffo", "permutation"}},
		{"ambiguous cells", []string{"--weights", "../../fixtures/real/moving-mnist-encdec.pt", "--input", oneInput}, []string{"enc1", "enc2", "dec1", "dec2", "--prefix"}},
		{"unknown prefix", []string{"--weights", oneLayer, "--input", oneInput, "--prefix", "encoder"}, []string{"encoder"}},
		{"state of another model", []string{"--weights", oneLayer, "--input", oneInput, "--state-in", wrongState}, []string{"h_0", "shape"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".npz")
			args := append([]string{"run", "--output", out}, tc.args...)
			_, err := runCLI(t, args...)
			if err == nil {
				t.Fatalf("convlstm-run %s: no error", strings.Join(args, " "))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, serr := os.Stat(out); serr == nil {
				t.Errorf("an output file was left behind after: %v", err)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp*")); len(m) > 0 {
				t.Errorf("temporary files left behind: %v", m)
			}
		})
	}

}

func TestInspect(t *testing.T) {
	text, err := runCLI(t, "inspect", "--weights", "../../fixtures/real/soccer-ball-convlstm.pth", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep model.Description
	if err := json.Unmarshal([]byte(text), &rep); err != nil {
		t.Fatalf("inspect --json printed invalid JSON: %v\n%s", err, text)
	}
	// The architecture the project's README states for this checkpoint.
	if rep.Format != "pytorch-legacy" || len(rep.Models) != 1 || rep.Models[0].ConvLSTM == nil {
		t.Fatalf("inspect: format %q, %d models; want pytorch-legacy and one ConvLSTM:\n%s", rep.Format, len(rep.Models), text)
	}
	c := rep.Models[0].ConvLSTM
	if c.Prefix != "model_state_dict.conv_lstm" || len(c.Layers) != 3 || !rep.Models[0].Runnable || rep.Models[0].Use != "run" {
		t.Fatalf("inspect: prefix %q, %d layers, runnable %v, use %q; want model_state_dict.conv_lstm, 3, true, run", c.Prefix, len(c.Layers), rep.Models[0].Runnable, rep.Models[0].Use)
	}
	for i, hid := range []int{32, 16, 1} {
		l := c.Layers[i]
		if l.HiddenDim != hid || l.KernelH != 3 || l.KernelW != 3 || !l.HasBias {
			t.Errorf("layer %d: %+v, want hidden %d, 3x3, bias", i, l, hid)
		}
	}
	if c.Layers[0].InputDim != 1 {
		t.Errorf("layer 0 input %d, want 1", c.Layers[0].InputDim)
	}
	joined := strings.Join(rep.Skipped, "\n")
	for _, w := range []string{"epoch", "optimizer_state_dict", "model_state_dict.seq1.0.weight"} {
		if !strings.Contains(joined, w) {
			t.Errorf("skipped entries do not mention %q", w)
		}
	}

	text, err = runCLI(t, "inspect", "--weights", "../../fixtures/real/moving-mnist-encdec.pt", "--prefix", "dec2")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"single ConvLSTMCell", "dec2", "32     32     5x5", "models:   1", "use:      run --prefix dec2"} {
		if !strings.Contains(text, w) {
			t.Errorf("inspect --prefix dec2 output lacks %q:\n%s", w, text)
		}
	}

	// Several ConvLSTMs in one file: each is described, none refused.
	text, err = runCLI(t, "inspect", "--weights", "../../fixtures/real/moving-mnist-encdec.pt")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"models:   4", "model 1:  single ConvLSTMCell, run as a one-layer ConvLSTM at enc1", "model 4:  single ConvLSTMCell, run as a one-layer ConvLSTM at dec2",
		"use:      run --prefix enc2", "use:      run --prefix dec1", "conv1.0.weight"} {
		if !strings.Contains(text, w) {
			t.Errorf("inspect of a file with several cells lacks %q:\n%s", w, text)
		}
	}
}

func TestBenchJSON(t *testing.T) {
	for mode, args := range map[string][]string{
		"forward":     {"bench", "--shape", "1,2,1,8,8", "--runs", "3", "--json"},
		"stream-step": {"bench", "--shape", "2,1,1,8,8", "--runs", "3", "--json", "--random-state", "--stream", "--threads", "2"},
	} {
		text, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(text), &rep); err != nil {
			t.Fatalf("%v: invalid JSON %v:\n%s", args, err, text)
		}
		if rep["mode"] != mode {
			t.Errorf("%v: mode %v, want %s", args, rep["mode"], mode)
		}
		for _, k := range []string{"median_ms", "min_ms", "max_ms", "gflops", "peak_gflops_per_core", "peak_fraction"} {
			v, ok := rep[k].(float64)
			if !ok || !(v > 0) {
				t.Errorf("%v: %s = %v, want a positive number", args, k, rep[k])
			}
		}
		if rep["min_ms"].(float64) > rep["median_ms"].(float64) || rep["median_ms"].(float64) > rep["max_ms"].(float64) {
			t.Errorf("%v: min %v, median %v, max %v out of order", args, rep["min_ms"], rep["median_ms"], rep["max_ms"])
		}
	}
	if _, err := runCLI(t, "bench", "--shape", "1,2,3"); err == nil || !strings.Contains(err.Error(), "B,T,C,H,W") {
		t.Errorf("bad --shape: error %v", err)
	}
	if _, err := runCLI(t, "bench", "--shape", "1,1,5,8,8"); err == nil || !strings.Contains(err.Error(), "1 input channels") {
		t.Errorf("wrong channels: error %v", err)
	}
}

// --state-in reads h_l and c_l of the model's layers (the form --output
// writes, whose output arrays are not state); arrays for layers the model
// does not have are an error, not ignored.
func TestStateInOtherModel(t *testing.T) {
	dir := t.TempDir()
	fx := "../../fixtures/forward/one-layer-3x3/"
	st := filepath.Join(dir, "s.npz")
	z := func() *tensor.Tensor { return tensor.New(1, 4, 6, 6) }
	if err := loader.WriteNPZ(st, []string{"output", "h_0", "c_0", "h_1", "c_1"}, map[string]*tensor.Tensor{
		"output": tensor.New(1, 3, 4, 6, 6), "h_0": z(), "c_0": z(), "h_1": z(), "c_1": z()}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "o.npz")
	_, err := runCLI(t, "run", "--weights", fx+"weights.pt", "--input", fx+"input.npy", "--state-in", st, "--output", out)
	if err == nil || !strings.Contains(err.Error(), "s.npz: h_1, c_1 are for layers the model does not have (it has 1)") {
		t.Errorf("state of a deeper model: %v", err)
	}
	if _, serr := os.Stat(out); serr == nil {
		t.Error("output left behind")
	}
	// Without the extra layer it runs (from zeros: same as no state).
	if err := loader.WriteNPZ(st, []string{"output", "h_0", "c_0"}, map[string]*tensor.Tensor{"output": tensor.New(1, 3, 4, 6, 6), "h_0": z(), "c_0": z()}); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "run", "--weights", fx+"weights.pt", "--input", fx+"input.npy", "--state-in", st, "--output", out); err != nil {
		t.Fatal(err)
	}
	compareNPZ(t, "zero state", out, fx+"expected.npz", parityBar, layout{}, true)
}
