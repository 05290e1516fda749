//go:build unix

package graph

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// The benchmarks below compare variants side by side: every iteration runs
// each variant once, in rotating order, and each variant's median process
// CPU time per value is reported (steadier than wall time on a shared
// machine, and fair to variants measured minutes apart otherwise).
//
//	go test ./graph -run '^$' -bench 'GELU|SigmoidScale|ScaleShift|Erf|MovingMNIST' -benchtime 20x

type variant struct {
	name string
	run  func()
}

// interleave runs the variants b.N times each and reports their median
// cpu-ns per value (values: the work of one run).
func interleave(b *testing.B, values int, vs []variant) {
	for _, v := range vs {
		v.run() // warm: buffers, dry pass
	}
	times := make([][]time.Duration, len(vs))
	b.ResetTimer()
	for i := range b.N {
		for k := range vs {
			j := (i + k) % len(vs)
			c := cpuTime()
			vs[j].run()
			times[j] = append(times[j], cpuTime()-c)
		}
	}
	b.StopTimer()
	for j, v := range vs {
		slices.Sort(times[j])
		med := times[j][len(times[j])/2]
		b.ReportMetric(float64(med.Nanoseconds())/float64(values), v.name+"-cpu-ns/value")
	}
}

// modelVariant compiles m with opts and runs it on fixed inputs.
func modelVariant(b *testing.B, name string, m testModel, opts Options) variant {
	g := m.load(b, opts)
	feed := m.feed(1)
	return variant{name, func() {
		if _, err := g.Run(feed); err != nil {
			b.Fatal(err)
		}
	}}
}

func geluModel(div float32, shape []int) testModel {
	return testModel{opset: 17, inputs: []string{"x"}, shapes: map[string][]int{"x": shape},
		consts: map[string]*tensor.Tensor{"c": f32(nil, div), "one": f32(nil, 1), "half": f32(nil, 0.5)},
		nodes: []tnode{{"Div", []string{"x", "c"}, []string{"d"}, nil}, {"Erf", []string{"d"}, []string{"e"}, nil},
			{"Add", []string{"e", "one"}, []string{"a"}, nil}, {"Mul", []string{"x", "a"}, []string{"m"}, nil},
			{"Mul", []string{"m", "half"}, []string{"y"}, nil}},
		outputs: []string{"y"}}
}

// BenchmarkGELU: torch's exported GELU (Div, Erf, Add, Mul, Mul) on a
// (1, 32, 64, 64) activation, the Moving-MNIST model's conv2 output: node
// by node, as a generic fused chain (a divisor other than √2, so that the
// GELU loop is not used; same work) and as the recognised GELU.
func BenchmarkGELU(b *testing.B) {
	shape := []int{1, 32, 64, 64}
	interleave(b, numel(shape), []variant{
		modelVariant(b, "unfused", geluModel(float32(math.Sqrt2), shape), Options{Threads: 1, NoFuse: true}),
		modelVariant(b, "chain", geluModel(1.5, shape), Options{Threads: 1}),
		modelVariant(b, "gelu", geluModel(float32(math.Sqrt2), shape), Options{Threads: 1}),
	})
}

// BenchmarkSigmoidScale: sigmoid(x)·255 on the model's (1, 10, 64, 64)
// output.
func BenchmarkSigmoidScale(b *testing.B) {
	shape := []int{1, 10, 64, 64}
	m := testModel{opset: 17, inputs: []string{"x"}, shapes: map[string][]int{"x": shape},
		consts:  map[string]*tensor.Tensor{"k": f32(nil, 255)},
		nodes:   []tnode{{"Sigmoid", []string{"x"}, []string{"s"}, nil}, {"Mul", []string{"s", "k"}, []string{"y"}, nil}},
		outputs: []string{"y"}}
	interleave(b, numel(shape), []variant{
		modelVariant(b, "unfused", m, Options{Threads: 1, NoFuse: true}),
		modelVariant(b, "fused", m, Options{Threads: 1}),
	})
}

// BenchmarkScaleShiftReLU: an unfolded BatchNorm's per-channel ·γ + β
// and a ReLU, cheap ops where the passes over memory and the intermediate
// buffers are the cost: on a (1, 32, 64, 64) activation (512 KB, in L2)
// and a (1, 64, 128, 128) one (4 MB, beyond it).
func BenchmarkScaleShiftReLU(b *testing.B) {
	for _, shape := range [][]int{{1, 32, 64, 64}, {1, 64, 128, 128}} {
		b.Run(fmt.Sprintf("%dx%dx%d", shape[1], shape[2], shape[3]), func(b *testing.B) {
			c := shape[1]
			m := testModel{opset: 13, inputs: []string{"x"}, shapes: map[string][]int{"x": shape},
				consts: map[string]*tensor.Tensor{"g": f32([]int{c, 1, 1}, ramp(c).Data...), "b": f32([]int{c, 1, 1}, ramp(c).Data...)},
				nodes: []tnode{{"Mul", []string{"x", "g"}, []string{"m"}, nil}, {"Add", []string{"m", "b"}, []string{"a"}, nil},
					{"Relu", []string{"a"}, []string{"y"}, nil}},
				outputs: []string{"y"}}
			interleave(b, numel(shape), []variant{
				modelVariant(b, "unfused", m, Options{Threads: 1, NoFuse: true}),
				modelVariant(b, "fused", m, Options{Threads: 1}),
			})
		})
	}
}

// BenchmarkErf: the Erf kernel against the standard library's erf per
// value, on 128k normal values (too many for the branch predictor to learn).
func BenchmarkErf(b *testing.B) {
	x := testModel{inputs: []string{"x"}, shapes: map[string][]int{"x": {1 << 17}}}.feed(1)["x"].Data
	d := make([]float32, len(x))
	u := unary{k: uErf}
	interleave(b, len(x), []variant{
		{"kernel", func() { u.apply(d, x) }},
		{"math.Erf", func() {
			for i, v := range x {
				d[i] = float32(math.Erf(float64(v)))
			}
		}},
	})
}

// BenchmarkMovingMNISTChains runs the real Moving-MNIST export (the demo
// model: 30 GELUs, tanh·10, sigmoid·255 around 60 fused cell steps) on one
// of its fixture sequences with and without the chain fusion (every other
// fusion on). The metric is per input value (10·64·64).
func BenchmarkMovingMNISTChains(b *testing.B) {
	in, _, err := loader.ReadNPZ("../fixtures/models/moving-mnist-op17-dynamic/inputs.npz")
	if err != nil {
		b.Skip(err)
	}
	x := in["frames"]
	one := &tensor.Tensor{Shape: append([]int{1}, x.Shape[1:]...), DType: x.DType, Data: x.Data[:numel(x.Shape[1:])]}
	feed := map[string]*tensor.Tensor{"frames": one}
	var vs []variant
	for _, fuse := range []bool{false, true} {
		chainFusion = fuse
		g, err := Load("../cmd/convlstm-run/demo/moving-mnist.onnx", Options{Threads: 1})
		chainFusion = true
		if err != nil {
			b.Fatal(err)
		}
		vs = append(vs, variant{map[bool]string{false: "unfused-chains", true: "fused-chains"}[fuse], func() {
			if _, err := g.Run(feed); err != nil {
				b.Fatal(err)
			}
		}})
	}
	interleave(b, numel(one.Shape), vs)
}
