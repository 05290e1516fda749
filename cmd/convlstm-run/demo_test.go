package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// demoFigures parses the MSE table `demo` prints: per step and "all".
func demoFigures(t *testing.T, text string) (steps [][2]float64, all [2]float64) {
	t.Helper()
	in := false
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "step":
			in = true
		case in && len(f) == 3:
			m, err1 := strconv.ParseFloat(f[1], 64)
			c, err2 := strconv.ParseFloat(f[2], 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("MSE row %q does not parse", line)
			}
			if f[0] == "all" {
				return steps, [2]float64{m, c}
			}
			if n, err := strconv.Atoi(f[0]); err != nil || n != 11+len(steps) {
				t.Fatalf("MSE row %q: want step %d", line, 11+len(steps))
			}
			steps = append(steps, [2]float64{m, c})
		}
	}
	t.Fatalf("no \"all\" row in:\n%s", text)
	return nil, all
}

// The demo on 2 sequences: the real model beats copy-last at every step,
// scores what PyTorch scored on the same sequences, and its GIF and frames
// are what it says; run reads those frames back.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real model on 2 sequences (a few seconds)")
	}
	var ref struct {
		Seed        uint64
		ModelPerSeq []float64 `json:"model_mse_per_sequence"`
	}
	raw, err := os.ReadFile("../../movingmnist/testdata/pytorch-check.json") // scripts/moving_mnist_check.py, real PyTorch
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ref); err != nil || len(ref.ModelPerSeq) < 2 {
		t.Fatalf("pytorch-check.json: %v", err)
	}
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	text := mustRun(t, "demo", "--sequences", "2", "--seed", strconv.FormatUint(ref.Seed, 10), "--output", p("demo.gif"), "--frames", p("fr"), "--threads", "2")
	t.Logf("\n%s", text)
	steps, all := demoFigures(t, text)
	if len(steps) != 10 {
		t.Fatalf("%d step rows, want 10", len(steps))
	}
	sum := [2]float64{}
	for k, s := range steps {
		if !(s[0] < s[1]) {
			t.Errorf("step %d: model %.1f is not below copy-last %.1f", 11+k, s[0], s[1])
		}
		sum[0] += s[0] / 10
		sum[1] += s[1] / 10
	}
	for i := range all {
		if math.Abs(sum[i]-all[i]) > 0.06 { // every step has as many pixels; rows are rounded to 0.1
			t.Errorf("the mean of the step rows %.2f is not the \"all\" row %.1f", sum[i], all[i])
		}
	}
	if !(all[0] < all[1]) {
		t.Errorf("model MSE %.1f is not below copy-last %.1f", all[0], all[1])
	}
	// Each sequence has as many pixels: the overall MSE is the mean of
	// PyTorch's per-sequence ones.
	if want := (ref.ModelPerSeq[0] + ref.ModelPerSeq[1]) / 2; math.Abs(all[0]-want) > 0.05+1e-4*want {
		t.Errorf("model MSE %.1f; PyTorch's on the same sequences %.4f", all[0], want)
	}
	for _, want := range []string{"on 2 thread(s)", "wrote:     " + p("demo.gif") + " (2 sequence(s)"} {
		if !strings.Contains(text, want) {
			t.Errorf("printout lacks %q", want)
		}
	}
	// The GIF: 20 frames, 2 sequences stacked, prediction | truth.
	_, shape := readPictures(t, p("demo.gif"))
	if !slices.Equal(shape, []int{1, 20, 1, 2*64 + 2, 2*64 + 2}) {
		t.Errorf("demo.gif is %v", shape)
	}
	// The frames, read back by run as a batch with the truth beside.
	out := mustRun(t, "run", "--weights", demoONNX, "--pixel-max", "255", "--input", p("fr/input"), "--truth", p("fr/truth"),
		"--strip", "future", "--output", p("strip.gif"))
	if !strings.Contains(out, "(frames: 2 sequences of 10 grey 64×64)") || !strings.Contains(out, "strip: input, then prediction | truth; 20 frames of 130×64, 2 sequences stacked") {
		t.Errorf("run on the demo's frames:\n%s", out)
	}
}

func TestDemoErrors(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "fr", "input"), 0o755)
	os.WriteFile(filepath.Join(dir, "fr", "input", "mine.png"), []byte("x"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sequences", "0"}, "--sequences 0"},
		{[]string{"--output", filepath.Join(dir, "d.png")}, "d.png"},
		{[]string{"--show", "0", "--output", filepath.Join(dir, "d.gif")}, "--show 0"},
		{[]string{"--frames", filepath.Join(dir, "fr"), "--output", filepath.Join(dir, "d.gif")}, "already holds files"},
		{[]string{"extra"}, "extra"},
	} {
		_, err := runCLI(t, append([]string{"demo"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("demo %v: %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "d.*")); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
}
