//go:build unix

package graph

import (
	"math"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// BenchmarkGELU runs torch's exported GELU (Div, Erf, Add, Mul, Mul) on a
// (1, 32, 64, 64) activation, the size of the Moving-MNIST model's conv2
// output: node by node, as a generic fused chain (a divisor other than √2,
// so the GELU loop is not used) and as the recognised GELU. cpu-ns/value
// is the process's CPU time per value (steadier than wall time on a shared
// machine).
//
//	go test ./graph -run '^$' -bench GELU -count 5
func BenchmarkGELU(b *testing.B) {
	for _, c := range []struct {
		name string
		div  float32
		fuse bool
		thr  int
	}{{"unfused", float32(math.Sqrt2), false, 1}, {"chain", 1.5, true, 1}, {"gelu", float32(math.Sqrt2), true, 1}, {"gelu-2threads", float32(math.Sqrt2), true, 2}} {
		b.Run(c.name, func(b *testing.B) {
			m := testModel{opset: 17, inputs: []string{"x"}, shapes: map[string][]int{"x": {1, 32, 64, 64}},
				consts: map[string]*tensor.Tensor{"c": f32(nil, c.div), "one": f32(nil, 1), "half": f32(nil, 0.5)},
				nodes: []tnode{{"Div", []string{"x", "c"}, []string{"d"}, nil}, {"Erf", []string{"d"}, []string{"e"}, nil},
					{"Add", []string{"e", "one"}, []string{"a"}, nil}, {"Mul", []string{"x", "a"}, []string{"m"}, nil},
					{"Mul", []string{"m", "half"}, []string{"y"}, nil}},
				outputs: []string{"y"}}
			benchModel(b, m, Options{Threads: c.thr, NoFuse: !c.fuse})
		})
	}
}

// BenchmarkSigmoidScale: sigmoid(x)·255 on the model's (1, 10, 64, 64)
// output.
func BenchmarkSigmoidScale(b *testing.B) {
	for _, fuse := range []bool{false, true} {
		name := map[bool]string{false: "unfused", true: "fused"}[fuse]
		b.Run(name, func(b *testing.B) {
			m := testModel{opset: 17, inputs: []string{"x"}, shapes: map[string][]int{"x": {1, 10, 64, 64}},
				consts:  map[string]*tensor.Tensor{"k": f32(nil, 255)},
				nodes:   []tnode{{"Sigmoid", []string{"x"}, []string{"s"}, nil}, {"Mul", []string{"s", "k"}, []string{"y"}, nil}},
				outputs: []string{"y"}}
			benchModel(b, m, Options{Threads: 1, NoFuse: !fuse})
		})
	}
}

// BenchmarkScaleShiftReLU: an unfolded BatchNorm's per-channel ·γ + β
// and a ReLU on a (1, 32, 64, 64) activation: cheap ops, where the passes
// over memory and the intermediate buffers are the cost.
func BenchmarkScaleShiftReLU(b *testing.B) {
	for _, fuse := range []bool{false, true} {
		name := map[bool]string{false: "unfused", true: "fused"}[fuse]
		b.Run(name, func(b *testing.B) {
			m := testModel{opset: 13, inputs: []string{"x"}, shapes: map[string][]int{"x": {1, 32, 64, 64}},
				consts: map[string]*tensor.Tensor{"g": f32([]int{32, 1, 1}, ramp(32).Data...), "b": f32([]int{32, 1, 1}, ramp(32).Data...)},
				nodes: []tnode{{"Mul", []string{"x", "g"}, []string{"m"}, nil}, {"Add", []string{"m", "b"}, []string{"a"}, nil},
					{"Relu", []string{"a"}, []string{"y"}, nil}},
				outputs: []string{"y"}}
			benchModel(b, m, Options{Threads: 1, NoFuse: !fuse})
		})
	}
}

// BenchmarkErf compares the Erf kernel with the standard library's erf per
// value on normal inputs.
func BenchmarkErf(b *testing.B) {
	x := testModel{inputs: []string{"x"}, shapes: map[string][]int{"x": {4096}}}.feed(1)["x"].Data
	d := make([]float32, len(x))
	u := unary{k: uErf}
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"kernel", func() { u.apply(d, x) }},
		{"math.Erf", func() {
			for i, v := range x {
				d[i] = float32(math.Erf(float64(v)))
			}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			cpu0 := cpuTime()
			for range b.N {
				c.f()
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*len(x)), "cpu-ns/value")
		})
	}
}

func benchModel(b *testing.B, m testModel, opts Options) {
	g := m.load(b, opts)
	feed := m.feed(1)
	if _, err := g.Run(feed); err != nil {
		b.Fatal(err)
	}
	values := numel(m.shapes[m.inputs[0]])
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		if _, err := g.Run(feed); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*values), "cpu-ns/value")
}

// BenchmarkMovingMNISTChains runs the real Moving-MNIST export (the demo
// model: 30 GELUs, tanh·10, sigmoid·255 around 60 fused cell steps) on one
// of its fixture sequences with and without the chain fusion (every other
// fusion on).
func BenchmarkMovingMNISTChains(b *testing.B) {
	in, _, err := loader.ReadNPZ("../fixtures/models/moving-mnist-op17-dynamic/inputs.npz")
	if err != nil {
		b.Skip(err)
	}
	x := in["frames"]
	one := &tensor.Tensor{Shape: append([]int{1}, x.Shape[1:]...), DType: x.DType, Data: x.Data[:numel(x.Shape[1:])]}
	for _, fuse := range []bool{false, true} {
		b.Run(map[bool]string{false: "unfused-chains", true: "fused-chains"}[fuse], func(b *testing.B) {
			chainFusion = fuse
			defer func() { chainFusion = true }()
			g, err := Load("../cmd/convlstm-run/demo/moving-mnist.onnx", Options{Threads: 1})
			if err != nil {
				b.Fatal(err)
			}
			chainFusion = true
			feed := map[string]*tensor.Tensor{"frames": one}
			if _, err := g.Run(feed); err != nil {
				b.Fatal(err)
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				if _, err := g.Run(feed); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
