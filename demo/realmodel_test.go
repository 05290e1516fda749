package demo

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/convlstm-go/convlstm-go/frames"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/model"
	"github.com/convlstm-go/convlstm-go/movingmnist"
	"github.com/convlstm-go/convlstm-go/tensor"
)

const demoModel = "../cmd/convlstm-run/demo/moving-mnist.onnx"

// graphModel opens an ONNX graph and runs it as the CLI does (GraphModel).
func graphModel(t *testing.T, path string) Model {
	m, err := model.Open(path, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return GraphModel(m)
}

// Issue 10's proof: frames written as pictures, decoded by us and fed to
// the real model give PyTorch's prediction on the same frames within one
// grey level; the demo's score of that prediction is PyTorch's.
//
// demo/testdata/pytorch-prediction.npz (sequence 0, float16) and the
// per-sequence MSEs in movingmnist/testdata/pytorch-check.json were
// written by scripts/moving_mnist_check.py (the command is in the JSON).
func TestRealModelMatchesPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real model (a few seconds)")
	}
	if _, err := os.Stat(demoModel); err != nil {
		t.Skipf("the demo model is not in this checkout: %v", err)
	}
	mdl := graphModel(t, demoModel)
	var ref struct {
		Seed        uint64
		ModelPerSeq []float64 `json:"model_mse_per_sequence"`
		CopyLastMSE float64   `json:"copy_last_mse"`
		ModelMSE    float64   `json:"model_mse"`
	}
	raw, err := os.ReadFile("../movingmnist/testdata/pytorch-check.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ref); err != nil || len(ref.ModelPerSeq) == 0 {
		t.Fatalf("pytorch-check.json: %v (%d per-sequence MSEs)", err, len(ref.ModelPerSeq))
	}
	preds, _, err := loader.ReadNPZ("testdata/pytorch-prediction.npz")
	if err != nil {
		t.Fatal(err)
	}
	want := preds["prediction"]
	if want == nil || !tensor.SameShape(want.Shape, []int{1, 10, 64, 64}) {
		t.Fatalf("pytorch-prediction.npz: prediction %v, want (1, 10, 64, 64)", want)
	}

	// Sequence 0 of the fixture's seed, its input written as PNGs and read back.
	seqs, err := movingmnist.Generate(1, ref.Seed)
	if err != nil {
		t.Fatal(err)
	}
	input, _, err := movingmnist.Split(seqs)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "input") + "/"
	if err := frames.Write(dir, input, frames.WriteOptions{PixelMax: 255}); err != nil {
		t.Fatal(err)
	}
	x, _, err := frames.Read(dir, frames.ReadOptions{PixelMax: 255})
	if err != nil {
		t.Fatal(err)
	}
	got, err := mdl(x)
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(got.Shape, want.Shape) {
		t.Fatalf("the model returned %v, PyTorch %v", got.Shape, want.Shape)
	}
	worst, at := 0.0, 0
	for i, v := range got.Data {
		if d := math.Abs(float64(v) - float64(want.Data[i])); d > worst {
			worst, at = d, i
		}
	}
	t.Logf("max |Go − PyTorch| = %.4f grey levels (PyTorch's prediction stored as float16: ±0.125 near 255)", worst)
	if worst > 1 {
		s := at / (64 * 64)
		t.Fatalf("prediction step %d pixel (%d, %d): Go %.3f, PyTorch %.3f: more than one grey level apart",
			s, at%64, at/64%64, got.Data[at], want.Data[at])
	}

	// The demo on the same sequence scores what PyTorch scored (the same
	// input: the prediction above is reused rather than computed again).
	cached := func(in *tensor.Tensor) (*tensor.Tensor, error) {
		if slices.Equal(in.Data, x.Data) {
			return got, nil
		}
		return mdl(in)
	}
	res, err := Run(cached, Options{Sequences: 1, Seed: ref.Seed, GIF: filepath.Join(t.TempDir(), "demo.gif")})
	if err != nil {
		t.Fatal(err)
	}
	if w := ref.ModelPerSeq[0]; math.Abs(res.ModelMSE-w) > 1e-4*w {
		t.Fatalf("model MSE on sequence 0: Go %.6f, PyTorch %.6f", res.ModelMSE, w)
	}
	t.Logf("sequence 0: model MSE %.3f (PyTorch %.3f), copy-last %.1f", res.ModelMSE, ref.ModelPerSeq[0], res.CopyLastMSE)
}
