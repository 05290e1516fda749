package movingmnist

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/tensor"
)

func TestDigits(t *testing.T) {
	ds, err := Digits()
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1000 {
		t.Fatalf("%d digits, want 1000", len(ds))
	}
	// The MNIST test set begins 7, 2, 1, 0, 4.
	var labels []uint8
	counts := make([]int, 10)
	for i, d := range ds {
		if i < 5 {
			labels = append(labels, d.Label)
		}
		if d.Label > 9 {
			t.Fatalf("digit %d has label %d", i, d.Label)
		}
		counts[d.Label]++
		if slices.Max(d.Pix[:]) < 200 {
			t.Fatalf("digit %d is faint (max %d)", i, slices.Max(d.Pix[:]))
		}
	}
	if !slices.Equal(labels, []uint8{7, 2, 1, 0, 4}) {
		t.Fatalf("first labels %v, want the test set's 7 2 1 0 4", labels)
	}
	for l, c := range counts {
		if c < 50 {
			t.Errorf("only %d digits %d among 1000", c, l)
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a, err := Generate(5, 42)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(5, 42)
	c, _ := Generate(3, 42)
	d, _ := Generate(5, 43)
	if !tensor.SameShape(a.Shape, []int{5, Length, Size, Size}) {
		t.Fatalf("shape %v", a.Shape)
	}
	if !slices.Equal(a.Data, b.Data) {
		t.Fatal("same seed, different sequences")
	}
	if !slices.Equal(a.Data[:len(c.Data)], c.Data) {
		t.Fatal("sequence i depends on how many sequences were asked")
	}
	if slices.Equal(a.Data, d.Data) {
		t.Fatal("seeds 42 and 43 give the same sequences")
	}
}

// Every frame is the pixel-wise max of the two digits at their course's
// positions, courses stay in the frame and move 0.1 of the 36-pixel
// square per frame along each axis's velocity (3.6·|v| pixels, ±1 for
// truncation), reversing only at a border.
func TestGenerateCourses(t *testing.T) {
	ds, err := Digits()
	if err != nil {
		t.Fatal(err)
	}
	const n, seed = 50, 7
	x, err := Generate(n, seed)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		ps := paths(ds, seed, i)
		for t0 := 0; t0 < Length; t0++ {
			want := make([]float32, Size*Size)
			for _, p := range ps {
				top, left := p.top[t0], p.left[t0]
				if top < 0 || left < 0 || top > Size-DigitSize || left > Size-DigitSize {
					t.Fatalf("sequence %d frame %d: digit at (%d, %d) leaves the frame", i, t0, top, left)
				}
				if t0 > 0 {
					if dy, dx := abs(top-p.top[t0-1]), abs(left-p.left[t0-1]); dy > 4 || dx > 4 || dy+dx == 0 && top%36 != 0 && left%36 != 0 {
						t.Fatalf("sequence %d frame %d: moved by (%d, %d) pixels", i, t0, dy, dx)
					}
				}
				for r := 0; r < DigitSize; r++ {
					for c := 0; c < DigitSize; c++ {
						k := (top+r)*Size + left + c
						want[k] = max(want[k], float32(p.digit.Pix[r*DigitSize+c]))
					}
				}
			}
			got := x.Data[(i*Length+t0)*Size*Size:][:Size*Size]
			if !slices.Equal(got, want) {
				t.Fatalf("sequence %d frame %d is not the max of its two placed digits", i, t0)
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// testdata/pytorch-check.json was written by scripts/moving_mnist_check.py
// (the command is in the file) from sequences this generator made: their
// bytes must not have changed, and the copy-last MSE computed here must be
// PyTorch's. (The file also holds the real model's MSE on them, which the
// demo will be checked against once the Go interpreter runs that model.)
func TestMatchesPyTorchCheck(t *testing.T) {
	raw, err := os.ReadFile("testdata/pytorch-check.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		N                  int
		Seed               uint64
		SHA256             string    `json:"sha256_uint8"`
		CopyLastMSE        float64   `json:"copy_last_mse"`
		CopyLastMSEPerStep []float64 `json:"copy_last_mse_per_step"`
		ModelMSE           float64   `json:"model_mse"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	x, err := Generate(ref.N, ref.Seed)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, len(x.Data))
	for i, v := range x.Data {
		b[i] = uint8(v)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != ref.SHA256 {
		t.Fatalf("Generate(%d, %d) made other sequences than the ones PyTorch scored (sha256 %s, want %s)", ref.N, ref.Seed, got, ref.SHA256)
	}
	in, target, err := Split(x)
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(in.Shape, []int{ref.N, 10, 64, 64}) || !tensor.SameShape(target.Shape, []int{ref.N, 10, 64, 64}) {
		t.Fatalf("split %v %v", in.Shape, target.Shape)
	}
	f := Size * Size
	total := 0.0
	for k := 0; k < 10; k++ {
		sum := 0.0
		for i := 0; i < ref.N; i++ {
			last := in.Data[(i*10+9)*f:][:f]
			for j, v := range target.Data[(i*10+k)*f:][:f] {
				d := float64(v - last[j])
				sum += d * d
			}
		}
		mse := sum / float64(ref.N*f)
		total += sum
		if want := ref.CopyLastMSEPerStep[k]; math.Abs(mse-want) > 1e-9*want {
			t.Errorf("copy-last MSE at step %d: %.6f, PyTorch %.6f", k+1, mse, want)
		}
	}
	mse := total / float64(len(target.Data))
	if math.Abs(mse-ref.CopyLastMSE) > 1e-9*ref.CopyLastMSE {
		t.Errorf("copy-last MSE %.6f, PyTorch %.6f", mse, ref.CopyLastMSE)
	}
	t.Logf("copy-last MSE %.1f (PyTorch %.1f); the real model scored %.1f on these sequences in PyTorch", mse, ref.CopyLastMSE, ref.ModelMSE)
}

func TestErrors(t *testing.T) {
	for _, n := range []int{0, -1, MaxSequences + 1} {
		if _, err := Generate(n, 1); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d sequences", n)) {
			t.Errorf("Generate(%d): %v", n, err)
		}
	}
	if _, _, err := Split(tensor.New(2, 10, 4)); err == nil || !strings.Contains(err.Error(), "(2, 10, 4)") {
		t.Errorf("Split of 10 frames: %v", err)
	}
	if _, err := readIDX([]byte("not gzip"), "images", 3); err == nil || !strings.Contains(err.Error(), "embedded images") {
		t.Errorf("readIDX: %v", err)
	}
}
