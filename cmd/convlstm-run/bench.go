package main

import (
	"github.com/convlstm-go/convlstm-go/tensor"

	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/ops"
	"github.com/convlstm-go/convlstm-go/runtime"
)

type benchFlags struct {
	weights, shape, prefix, gates string
	threads, runs, warmup         int
	asJSON, randomState, direct   bool
	stream                        bool
}

func init() {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Time the forward pass on random input",
		Long: `Time the forward pass of a model on a random input of the given shape:
one warm-up run, then --runs timed runs; prints the median, min and max in
milliseconds and the model's GFLOP/s (the convolution work PyTorch does:
2·4·hidden·(input+hidden)·kh·kw multiply-adds per pixel, layer and step).
--random-state starts every layer from a random non-zero state, as a
streaming step does; --stream times Stream.Step, the streaming API, where
the state stays inside the runtime from one call to the next.`,
		Example: "  convlstm-run bench --weights model.pt --shape 1,10,1,64,64 --threads 2 --runs 5 --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runBench(cmd.OutOrStdout(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.weights, "weights", "", "weights file (default: the bundled example model)")
	fl.StringVar(&f.shape, "shape", "", "input shape B,T,C,H,W (required)")
	fl.StringVar(&f.prefix, "prefix", "", "which ConvLSTM in the file")
	fl.StringVar(&f.gates, "gates", "", "gate order")
	fl.IntVar(&f.threads, "threads", 0, "worker threads (0: all cores)")
	fl.IntVar(&f.runs, "runs", 5, "timed runs")
	fl.IntVar(&f.warmup, "warmup", 1, "untimed runs first")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	fl.BoolVar(&f.randomState, "random-state", false, "start from a random non-zero state")
	fl.BoolVar(&f.direct, "direct", false, "direct convolution only (no Winograd), for comparison")
	fl.BoolVar(&f.stream, "stream", false, "time streaming steps (Stream.Step, state carried inside the runtime) on frames of the shape's B,C,H,W; needs T=1")
	rootCmd.AddCommand(cmd)
}

type benchReport struct {
	Weights  string    `json:"weights"`
	Shape    []int     `json:"shape"`
	Threads  int       `json:"threads"`
	Kernel   string    `json:"kernel"`
	Runs     int       `json:"runs"`
	Mode     string    `json:"mode"`
	MedianMS float64   `json:"median_ms"`
	MinMS    float64   `json:"min_ms"`
	MaxMS    float64   `json:"max_ms"`
	TimesMS  []float64 `json:"times_ms"`
	GFLOP    float64   `json:"gflop"`
	GFLOPS   float64   `json:"gflops"`
}

func parseShape(s string) ([]int, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 5 {
		return nil, fmt.Errorf("--shape %q: want five sizes B,T,C,H,W", s)
	}
	shape := make([]int, 5)
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 || v > 1<<20 {
			return nil, fmt.Errorf("--shape %q: %q is not a size from 1 to 1048576", s, p)
		}
		shape[i] = v
	}
	return shape, nil
}

// modelFLOPs is the convolution work of a forward pass, as PyTorch does it.
func modelFLOPs(m *convlstm.Model, B, T, H, W int) float64 {
	f := 0.0
	for _, l := range m.Layers {
		f += 2 * float64(4*l.HiddenDim*(l.InputDim+l.HiddenDim)*l.KernelH*l.KernelW) * float64(B*T*H*W)
	}
	return f
}

func runBench(out io.Writer, f benchFlags) error {
	if f.shape == "" {
		return fmt.Errorf("bench needs --shape B,T,C,H,W")
	}
	shape, err := parseShape(f.shape)
	if err != nil {
		return err
	}
	if f.runs < 1 {
		return fmt.Errorf("--runs %d: need at least 1", f.runs)
	}
	m, err := loadModel(f.weights, f.prefix, f.gates)
	if err != nil {
		return err
	}
	B, T, C, H, W := shape[0], shape[1], shape[2], shape[3], shape[4]
	if C != m.InputDim() {
		return fmt.Errorf("--shape %s: the model takes %d input channels, not %d", f.shape, m.InputDim(), C)
	}
	rng := rand.New(rand.NewSource(1))
	x := randomTensor(rng, shape...)
	var initial []runtime.LayerState
	if f.randomState {
		for _, l := range m.Layers {
			initial = append(initial, runtime.LayerState{H: randomTensor(rng, B, l.HiddenDim, H, W), C: randomTensor(rng, B, l.HiddenDim, H, W)})
		}
	}
	r, err := runtime.New(m, runtime.Options{Threads: f.threads, Direct: f.direct})
	if err != nil {
		return err
	}
	defer r.Close()
	run := func() error {
		_, err := r.Forward(x, runtime.ForwardOptions{Initial: initial})
		return err
	}
	if f.stream {
		if T != 1 {
			return fmt.Errorf("--stream times one step at a time: give --shape B,1,C,H,W")
		}
		s, err := r.NewStream(B, H, W, initial)
		if err != nil {
			return err
		}
		frame := &tensor.Tensor{Shape: []int{B, C, H, W}, Data: x.Data}
		run = func() error {
			_, err := s.Step(frame)
			return err
		}
	}
	for i := 0; i < f.warmup; i++ {
		if err := run(); err != nil {
			return err
		}
	}
	times := make([]float64, f.runs)
	for i := range times {
		start := time.Now()
		if err := run(); err != nil {
			return err
		}
		times[i] = float64(time.Since(start).Nanoseconds()) / 1e6
	}
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	mode := "forward"
	if f.stream {
		mode = "stream-step"
	}
	rep := benchReport{Weights: f.weights, Shape: shape, Threads: r.Threads(), Kernel: ops.KernelName(), Runs: f.runs, Mode: mode,
		MedianMS: sorted[len(sorted)/2], MinMS: sorted[0], MaxMS: sorted[len(sorted)-1], TimesMS: times,
		GFLOP: modelFLOPs(m, B, T, H, W) / 1e9}
	if len(sorted)%2 == 0 {
		rep.MedianMS = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	rep.GFLOPS = rep.GFLOP / (rep.MedianMS / 1e3)
	if rep.Weights == "" {
		rep.Weights = exampleModelName
	}
	if f.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(out, "model %s, input %s, %d thread(s), kernel %s\n", rep.Weights, tensor.ShapeString(shape), rep.Threads, rep.Kernel)
	fmt.Fprintf(out, "median %.2f ms  min %.2f  max %.2f  (%d runs)  %.1f GFLOP/s\n", rep.MedianMS, rep.MinMS, rep.MaxMS, rep.Runs, rep.GFLOPS)
	return nil
}

func randomTensor(rng *rand.Rand, shape ...int) *tensor.Tensor {
	t := &tensor.Tensor{Shape: shape, DType: "float32"}
	t.Data = make([]float32, t.NumElements())
	for i := range t.Data {
		t.Data[i] = float32(rng.NormFloat64())
	}
	return t
}
