package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/frames"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// The stand-in model copy-last must score exactly the copy-last baseline,
// and that baseline must be PyTorch's on the same sequences (the fixture
// scripts/moving_mnist_check.py wrote).
func TestCopyLastScoresTheBaseline(t *testing.T) {
	raw, err := os.ReadFile("../movingmnist/testdata/pytorch-check.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		N           int
		Seed        uint64
		CopyLastMSE float64   `json:"copy_last_mse"`
		PerStep     []float64 `json:"copy_last_mse_per_step"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	calls := 0
	var progress [][2]int
	model := func(x *tensor.Tensor) (*tensor.Tensor, error) {
		calls++
		if x.Shape[0] > 16 {
			t.Errorf("model called on %d sequences, batch is 16", x.Shape[0])
		}
		return CopyLast(x)
	}
	res, err := Run(model, Options{Sequences: ref.N, Seed: ref.Seed, Batch: 16, Progress: func(d, n int) { progress = append(progress, [2]int{d, n}) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.ModelMSE != res.CopyLastMSE || !slices.Equal(res.ModelMSEPerStep, res.CopyLastPerStep) {
		t.Fatalf("copy-last as the model scored %v, the baseline %v", res.ModelMSE, res.CopyLastMSE)
	}
	if math.Abs(res.CopyLastMSE-ref.CopyLastMSE) > 1e-9*ref.CopyLastMSE {
		t.Fatalf("copy-last MSE %.6f, PyTorch %.6f", res.CopyLastMSE, ref.CopyLastMSE)
	}
	for k, v := range ref.PerStep {
		if math.Abs(res.CopyLastPerStep[k]-v) > 1e-9*v {
			t.Errorf("step %d: %.6f, PyTorch %.6f", k+1, res.CopyLastPerStep[k], v)
		}
	}
	if calls != 4 || !slices.Equal(progress, [][2]int{{16, 64}, {32, 64}, {48, 64}, {64, 64}}) {
		t.Fatalf("%d model calls, progress %v", calls, progress)
	}
}

// A model in other units (0..1) is fed scaled input and scored after
// scaling back; a model predicting black scores the mean square of the truth.
func TestUnitsAndScores(t *testing.T) {
	a, err := Run(CopyLast, Options{Sequences: 3, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	var seen float32
	unit := func(x *tensor.Tensor) (*tensor.Tensor, error) {
		seen = max(seen, slices.Max(x.Data))
		return CopyLast(x)
	}
	b, err := Run(unit, Options{Sequences: 3, Seed: 5, PixelMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 1 || math.Abs(a.ModelMSE-b.ModelMSE) > 1e-4*a.ModelMSE || a.CopyLastMSE != b.CopyLastMSE {
		t.Fatalf("pixel max 1: input max %v, model MSE %v vs %v at 255", seen, b.ModelMSE, a.ModelMSE)
	}

	black := func(x *tensor.Tensor) (*tensor.Tensor, error) {
		return tensor.New(x.Shape[0], 10, 1, 64, 64), nil // (B, T, 1, H, W) is accepted too
	}
	c, err := Run(black, Options{Sequences: 3, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, v := range c.Truth.Data {
		sum += float64(v) * float64(v)
	}
	if want := sum / float64(len(c.Truth.Data)); math.Abs(c.ModelMSE-want) > 1e-9*want {
		t.Fatalf("black prediction scored %v, want mean square of the truth %v", c.ModelMSE, want)
	}
}

// demo.gif: for each shown sequence, 10 input frames, then prediction |
// truth; read back exactly (grey palette).
func TestGIF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.gif")
	res, err := Run(CopyLast, Options{Sequences: 4, Seed: 2, GIF: path, Show: 2})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res.WriteReport(&out)
	for _, w := range []string{"4 sequences (seed 2)", "model ", "copy-last ", "wrote " + path + ": 2 sequence(s)"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("report %q lacks %q", out.String(), w)
		}
	}
	g, _, err := frames.Read(path, frames.ReadOptions{PixelMax: 255})
	if err != nil {
		t.Fatal(err)
	}
	H, W := 2*64+frames.Gap, 2*64+frames.Gap
	if !tensor.SameShape(g.Shape, []int{1, 20, 1, H, W}) {
		t.Fatalf("demo.gif is %v, want (1, 20, 1, %d, %d)", g.Shape, H, W)
	}
	px := func(t0, y, x int) float32 { return g.Data[(t0*H+y)*W+x] }
	in := func(s, t0, y, x int) float32 { return res.Input.Data[((s*10+t0)*64+y)*64+x] }
	tr := func(s, t0, y, x int) float32 { return res.Truth.Data[((s*10+t0)*64+y)*64+x] }
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			// Sequence 1 (lower), input step 4: both panels.
			if px(4, 64+frames.Gap+y, x) != in(1, 4, y, x) || px(4, 64+frames.Gap+y, 64+frames.Gap+x) != in(1, 4, y, x) {
				t.Fatalf("frame 4 at (%d, %d): not input step 4", x, y)
			}
			// Sequence 0, predicted step 3: copy-last left, truth right.
			if px(13, y, x) != in(0, 9, y, x) || px(13, y, 64+frames.Gap+x) != tr(0, 3, y, x) {
				t.Fatalf("frame 13 at (%d, %d): not prediction | truth of step 3", x, y)
			}
		}
	}
	if px(0, 10, 64) != 128 || px(0, 64, 10) != 128 {
		t.Fatal("no mid-grey separators")
	}
}

func TestErrors(t *testing.T) {
	wrong := func(x *tensor.Tensor) (*tensor.Tensor, error) { return tensor.New(x.Shape[0], 9, 64, 64), nil }
	failing := func(x *tensor.Tensor) (*tensor.Tensor, error) { return nil, errors.New("op Erf is not supported") }
	ints := func(x *tensor.Tensor) (*tensor.Tensor, error) {
		return tensor.FromInts(tensor.Int64, make([]int64, x.Shape[0]*10*64*64), x.Shape[0], 10, 64, 64), nil
	}
	cases := []struct {
		model Model
		opt   Options
		want  string
	}{
		{wrong, Options{Sequences: 2}, "the model returned (2, 9, 64, 64); want the 10 predicted frames as (2, 10, 64, 64) or (2, 10, 1, 64, 64)"},
		{ints, Options{Sequences: 1}, "(1, 10, 64, 64) int64"},
		{failing, Options{Sequences: 10, Batch: 4}, "the model on sequences 0..3: op Erf is not supported"},
		{CopyLast, Options{Sequences: -2}, "-2 sequences"},
		{CopyLast, Options{Batch: -1}, "batch -1"},
		{CopyLast, Options{Sequences: 2, GIF: "x.gif", Show: 3}, "3 sequences to show of 2"},
		{CopyLast, Options{Sequences: 1, GIF: filepath.Join(t.TempDir(), "no", "demo.gif")}, "demo.gif"},
	}
	for _, c := range cases {
		_, err := Run(c.model, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.opt, err, c.want)
		}
	}
	if _, err := CopyLast(tensor.New(2, 3)); err == nil {
		t.Error("copy-last of a rank-2 tensor")
	}
}
