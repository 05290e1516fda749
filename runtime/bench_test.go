package runtime

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// forwardRows are the forward-pass rows of the comparison table
// (scripts/bench_compare.sh): mnist and radar.
var forwardRows = []struct {
	name          string
	hidden        []int
	kernels       [][2]int
	B, T, C, H, W int
}{
	{"mnist", []int{64, 64}, [][2]int{{3, 3}, {3, 3}}, 1, 10, 1, 64, 64},
	{"radar", []int{32, 64}, [][2]int{{5, 5}, {3, 3}}, 1, 12, 1, 128, 128},
}

// The rows of the comparison table (scripts/bench_compare.sh) with random
// weights of PyTorch's default scale: mnist (1,10,1,64,64; [64,64]; 3×3),
// radar (1,12,1,128,128; [32,64]; 5×5, 3×3) and one streaming step.
func BenchmarkForward(b *testing.B) {
	for _, bc := range forwardRows {
		for _, threads := range []int{1, 2} {
			for _, direct := range []bool{false, true} {
				name := fmt.Sprintf("%s/threads=%d/direct=%v", bc.name, threads, direct)
				b.Run(name, func(b *testing.B) {
					rng := rand.New(rand.NewSource(1))
					m := randomModel(rng, bc.C, bc.hidden, bc.kernels, true, "ifog")
					x := randomTensor(rng, bc.B, bc.T, bc.C, bc.H, bc.W)
					r, _ := New(m, Options{Threads: threads, Direct: direct})
					defer r.Close()
					r.Forward(x, ForwardOptions{})
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						r.Forward(x, ForwardOptions{})
					}
					flops := 0.0
					for _, l := range m.Layers {
						flops += 2 * float64(4*l.HiddenDim*(l.InputDim+l.HiddenDim)*l.KernelH*l.KernelW*bc.B*bc.T*bc.H*bc.W)
					}
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkStreamStep is one step of the stream row: a 64×64 frame through
// [64, 64] 3×3 layers with a carried state; B > 1 steps B streams at once
// (ms/frame is the time per stream).
func BenchmarkStreamStep(b *testing.B) {
	for _, B := range []int{1, 2, 4} {
		for _, threads := range []int{1, 2} {
			name := fmt.Sprintf("threads=%d", threads)
			if B > 1 {
				name = fmt.Sprintf("B=%d/threads=%d", B, threads)
			}
			b.Run(name, func(b *testing.B) {
				rng := rand.New(rand.NewSource(1))
				m := randomModel(rng, 1, []int{64, 64}, [][2]int{{3, 3}, {3, 3}}, true, "ifog")
				r, _ := New(m, Options{Threads: threads})
				defer r.Close()
				var st []LayerState
				for range m.Layers {
					st = append(st, LayerState{H: randomTensor(rng, B, 64, 64, 64), C: randomTensor(rng, B, 64, 64, 64)})
				}
				s, _ := r.NewStream(B, 64, 64, st)
				f := &tensor.Tensor{Shape: []int{B, 1, 64, 64}, Data: randomTensor(rng, B, 1, 1, 64, 64).Data}
				s.Step(f)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					s.Step(f)
				}
				b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N*B), "ms/frame")
			})
		}
	}
}

// BenchmarkForwardBF16 is BenchmarkForward's rows with the bf16 precision
// beside float32.
func BenchmarkForwardBF16(b *testing.B) {
	for _, bc := range forwardRows {
		for _, threads := range []int{1, 2} {
			for _, prec := range []engine.Precision{engine.Float32, engine.BFloat16} {
				b.Run(fmt.Sprintf("%s/threads=%d/%s", bc.name, threads, prec), func(b *testing.B) {
					rng := rand.New(rand.NewSource(1))
					m := randomModel(rng, bc.C, bc.hidden, bc.kernels, true, "ifog")
					x := randomTensor(rng, bc.B, bc.T, bc.C, bc.H, bc.W)
					r, _ := New(m, Options{Threads: threads, Precision: prec})
					defer r.Close()
					r.Forward(x, ForwardOptions{})
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						r.Forward(x, ForwardOptions{})
					}
				})
			}
		}
	}
}
