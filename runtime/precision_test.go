package runtime

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// With Precision bf16 a sequence run at once and frame by frame through a
// Stream agree exactly at 1 and 2 threads, the outputs stay within 2e-2 of
// float32's (h is in (-1, 1); measured 1.6e-4, a broken kernel errs by 0.1
// or more) yet differ from them (the option reached the cells), and an
// unknown precision is refused.
func TestPrecisionBF16(t *testing.T) {
	if _, err := New(randomModel(rand.New(rand.NewSource(1)), 1, []int{4}, [][2]int{{3, 3}}, true, "ifog"), Options{Precision: "fp8"}); err == nil || !strings.Contains(err.Error(), "fp8") {
		t.Errorf("Precision fp8: error %v", err)
	}
	rng := rand.New(rand.NewSource(3))
	m := randomModel(rng, 3, []int{16, 8}, [][2]int{{3, 3}, {5, 3}}, true, "ifog")
	B, T, C, H, W := 2, 4, 3, 12, 10
	x := randomTensor(rng, B, T, C, H, W)
	r32, _ := New(m, Options{Threads: 1})
	defer r32.Close()
	ref, err := r32.Forward(x, ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r32.Precision() != engine.Float32 || r32.PrecisionPath() != "float32" {
		t.Errorf("default precision %q, path %q", r32.Precision(), r32.PrecisionPath())
	}
	var first *Result
	for _, threads := range []int{1, 2} {
		r, err := New(m, Options{Threads: threads, Precision: engine.BFloat16})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Precision() != engine.BFloat16 || !strings.HasPrefix(r.PrecisionPath(), "bf16 (") {
			t.Errorf("precision %q, path %q", r.Precision(), r.PrecisionPath())
		}
		full, err := r.Forward(x, ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = full
			worst := 0.0
			for i, v := range full.Output.Data {
				worst = max(worst, math.Abs(float64(v-ref.Output.Data[i])))
			}
			t.Logf("%s: max |h_bf16 − h_f32| %.2e", r.PrecisionPath(), worst)
			if worst == 0 || worst > 2e-2 {
				t.Errorf("max |h_bf16 − h_f32| = %.3g: want in (0, 2e-2]", worst)
			}
		} else {
			assertSame(t, "bf16 threads 2 vs 1", full.Output.Data, first.Output.Data)
		}
		s, err := r.NewStream(B, H, W, nil)
		if err != nil {
			t.Fatal(err)
		}
		hd := m.Layers[1].HiddenDim
		for step := 0; step < T; step++ {
			f := &tensor.Tensor{Shape: []int{B, C, H, W}, DType: "float32", Data: make([]float32, B*C*H*W)}
			for b := 0; b < B; b++ {
				copy(f.Data[b*C*H*W:(b+1)*C*H*W], x.Data[(b*T+step)*C*H*W:])
			}
			h, err := s.Step(f)
			if err != nil {
				t.Fatal(err)
			}
			for b := 0; b < B; b++ {
				assertSame(t, fmt.Sprintf("bf16 threads %d stream step %d batch %d", threads, step, b), h.Data[b*hd*H*W:(b+1)*hd*H*W], full.Output.Data[(b*T+step)*hd*H*W:(b*T+step+1)*hd*H*W])
			}
		}
	}
}
