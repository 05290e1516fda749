package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/model"
	"github.com/convlstm-go/convlstm-go/ops"
	"github.com/convlstm-go/convlstm-go/runtime"
	"github.com/convlstm-go/convlstm-go/tensor"
)

type benchFlags struct {
	weights, shape, prefix, gates string
	precision                     string
	inputs                        []string
	threads, runs, warmup         int
	asJSON, randomState, direct   bool
	stream                        bool
}

func init() {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Time a model on random input",
		Long: `Time a model on a random input of the given shape: --warmup untimed runs,
then --runs timed runs; prints the median, min and max in milliseconds.

For a ConvLSTM, --shape is B,T,C,H,W and the report adds the model's GFLOP/s
(the convolution work PyTorch does: 2·4·hidden·(input+hidden)·kh·kw
multiply-adds per pixel, layer and step). --random-state starts every layer
from a random non-zero state, as a streaming step does; --stream times
Stream.Step, the streaming API, where the state stays inside the runtime from
one call to the next; --direct disables Winograd. --precision bf16 times the
bfloat16 option; the report says which path ran (VDPBF16PS, or float32
kernels on rounded weights where the CPU has no AVX512_BF16).

For an ONNX graph, --shape is the shape of its input (any rank; with several
inputs, give each as --input NAME=D1,D2,... or NAME=FILE.npy). Float inputs
are random normal values, integer inputs zeros and bool inputs false (give a
file for anything else). GFLOP is not counted for graphs (reported as 0).`,
		Example: `  convlstm-run bench --weights model.pt --shape 1,10,1,64,64 --threads 2 --runs 5 --json
  convlstm-run bench --weights model.onnx --shape 1,10,64,64
  convlstm-run bench --weights model.onnx --input frames=1,10,64,64 --input mask=m.npy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd.OutOrStdout(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.weights, "weights", "", "model file (default: the bundled example model)")
	fl.StringVar(&f.shape, "shape", "", "input shape: B,T,C,H,W for a ConvLSTM, the input's shape for a graph")
	fl.StringArrayVar(&f.inputs, "input", nil, "graph: NAME=D1,D2,... (a random input of that shape) or NAME=FILE.npy (repeatable)")
	fl.StringVar(&f.prefix, "prefix", "", "ConvLSTM: which one in the file")
	fl.StringVar(&f.gates, "gates", "", "ConvLSTM: gate order")
	fl.IntVar(&f.threads, "threads", 0, "worker threads (0: all cores)")
	fl.IntVar(&f.runs, "runs", 5, "timed runs")
	fl.IntVar(&f.warmup, "warmup", 1, "untimed runs first")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	fl.BoolVar(&f.randomState, "random-state", false, "ConvLSTM: start from a random non-zero state")
	fl.BoolVar(&f.direct, "direct", false, "ConvLSTM: direct convolution only (no Winograd), for comparison")
	fl.StringVar(&f.precision, "precision", "float32", precisionFlagHelp)
	fl.BoolVar(&f.stream, "stream", false, "ConvLSTM: time streaming steps (Stream.Step, state carried inside the runtime) on frames of the shape's B,C,H,W; needs T=1")
	rootCmd.AddCommand(cmd)
}

type benchReport struct {
	Weights string           `json:"weights"`
	Shape   []int            `json:"shape"`
	Inputs  map[string][]int `json:"inputs,omitempty"` // graphs: every input's shape
	Threads int              `json:"threads"`
	Kernel  string           `json:"kernel"`
	// Precision is the convolutions' precision ("float32" or "bf16");
	// PrecisionPath how it ran here (engine.PrecisionPath).
	Precision     string    `json:"precision"`
	PrecisionPath string    `json:"precision_path"`
	Runs          int       `json:"runs"`
	Mode          string    `json:"mode"` // "forward", "stream-step" or "graph"
	MedianMS      float64   `json:"median_ms"`
	MinMS         float64   `json:"min_ms"`
	MaxMS         float64   `json:"max_ms"`
	TimesMS       []float64 `json:"times_ms"`
	GFLOP         float64   `json:"gflop"`
	GFLOPS        float64   `json:"gflops"`
	// PeakGFLOPS is this CPU's measured FMA peak per core at the register
	// width of Kernel (ops.Peak); PeakFraction is GFLOPS over the peak of
	// the threads used. GFLOP counts a direct convolution's work, so with
	// Winograd (fewer multiplications) the fraction can pass 1.
	PeakGFLOPS   float64 `json:"peak_gflops_per_core"`
	PeakBits     int     `json:"peak_bits"`
	PeakOf       string  `json:"peak_of"` // the kernel set, or VDPBF16PS for native bf16
	PeakFraction float64 `json:"peak_fraction,omitempty"`
}

// parseShape reads "D1,D2,..." (want sizes, 0 for any rank).
func parseShape(flag, s string, want int) ([]int, error) {
	parts := strings.Split(s, ",")
	if want > 0 && len(parts) != want {
		return nil, fmt.Errorf("%s%q: want five sizes B,T,C,H,W", sep(flag), s)
	}
	if len(parts) > 16 {
		return nil, fmt.Errorf("%s%q: more than 16 dimensions", sep(flag), s)
	}
	shape := make([]int, len(parts))
	n := 1
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 || v > 1<<20 {
			return nil, fmt.Errorf("%s%q: %q is not a size from 1 to 1048576", sep(flag), s, p)
		}
		if n > (1<<31)/v {
			return nil, fmt.Errorf("%s%q: more than 2^31 values", sep(flag), s)
		}
		shape[i], n = v, n*v
	}
	return shape, nil
}

// sep joins a flag and its value as typed: "--shape " or "--input x=".
func sep(flag string) string {
	if strings.HasSuffix(flag, "=") {
		return flag
	}
	return flag + " "
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
	if f.shape == "" && len(f.inputs) == 0 {
		return fmt.Errorf("bench needs --shape B,T,C,H,W (a ConvLSTM) or the graph input's shape")
	}
	if f.runs < 1 {
		return fmt.Errorf("--runs %d: need at least 1", f.runs)
	}
	prec, err := parsePrecision(f.precision)
	if err != nil {
		return err
	}
	m, err := openModel(f.weights, model.Options{Prefix: f.prefix, Gates: f.gates, Threads: f.threads, Direct: f.direct, Precision: prec})
	if err != nil {
		return flagError(err)
	}
	defer m.Close()
	rep := benchReport{Weights: m.File, Threads: m.Threads(), Kernel: ops.KernelName(), Runs: f.runs,
		Precision: string(m.Precision()), PrecisionPath: m.PrecisionPath()}
	var run func() error
	if m.Kind == model.KindConvLSTM {
		var done func()
		run, done, err = benchNative(m, f, &rep)
		if done != nil {
			defer done()
		}
	} else {
		run, err = benchGraph(m, f, &rep)
	}
	if err != nil {
		return err
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
	rep.MedianMS, rep.MinMS, rep.MaxMS, rep.TimesMS = sorted[len(sorted)/2], sorted[0], sorted[len(sorted)-1], times
	if len(sorted)%2 == 0 {
		rep.MedianMS = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	peak := ops.Peak()
	rep.PeakGFLOPS, rep.PeakBits, rep.PeakOf = peak.GFLOPS, peak.Bits, rep.Kernel
	if m.Precision() == engine.BFloat16 && engine.BF16Native() {
		// The yardstick of the bfloat16 GEMMs is VDPBF16PS's rate.
		rep.PeakGFLOPS, rep.PeakBits, rep.PeakOf = ops.PeakBF16(), 512, "VDPBF16PS"
	}
	if rep.GFLOP > 0 {
		rep.GFLOPS = rep.GFLOP / (rep.MedianMS / 1e3)
		if rep.PeakGFLOPS > 0 {
			rep.PeakFraction = rep.GFLOPS / (rep.PeakGFLOPS * float64(rep.Threads))
		}
	}
	if f.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	shapes := tensor.ShapeString(rep.Shape)
	if len(rep.Inputs) > 0 {
		var parts []string
		for _, k := range sortedKeys(rep.Inputs) {
			parts = append(parts, k+" "+tensor.ShapeString(rep.Inputs[k]))
		}
		shapes = strings.Join(parts, ", ")
	}
	fmt.Fprintf(out, "model %s, input %s, %d thread(s), kernel %s, precision %s\n", rep.Weights, shapes, rep.Threads, rep.Kernel, rep.PrecisionPath)
	fmt.Fprintf(out, "median %.2f ms  min %.2f  max %.2f  (%d runs)", rep.MedianMS, rep.MinMS, rep.MaxMS, rep.Runs)
	if rep.GFLOPS > 0 {
		fmt.Fprintf(out, "  %.1f GFLOP/s", rep.GFLOPS)
	}
	fmt.Fprintln(out)
	if rep.PeakGFLOPS > 0 {
		fmt.Fprintf(out, "peak   %.1f GFLOP/s per core measured at %d bits (%s)", rep.PeakGFLOPS, rep.PeakBits, rep.PeakOf)
		if rep.PeakFraction > 0 {
			fmt.Fprintf(out, "; this run %.0f%% of %d core(s), counted as direct-convolution work", 100*rep.PeakFraction, rep.Threads)
		}
		fmt.Fprintln(out)
	}
	return nil
}

// benchNative prepares timing a ConvLSTM: Run on random input, or
// Stream.Step; done (may be nil) releases what it started.
func benchNative(m *model.Model, f benchFlags, rep *benchReport) (run func() error, done func(), err error) {
	if len(f.inputs) > 0 {
		return nil, nil, fmt.Errorf("%s is a native ConvLSTM: --input does not apply to bench (it names graph inputs); give --shape B,T,C,H,W", m.File)
	}
	shape, err := parseShape("--shape", f.shape, 5)
	if err != nil {
		return nil, nil, err
	}
	cm := m.Native
	B, T, C, H, W := shape[0], shape[1], shape[2], shape[3], shape[4]
	if C != cm.InputDim() {
		return nil, nil, fmt.Errorf("--shape %s: the model takes %d input channels, not %d", f.shape, cm.InputDim(), C)
	}
	rng := rand.New(rand.NewSource(1))
	x := randomTensor(rng, shape...)
	inputs := map[string]*tensor.Tensor{"input": x}
	var initial []runtime.LayerState
	if f.randomState {
		for l, ly := range cm.Layers {
			s := runtime.LayerState{H: randomTensor(rng, B, ly.HiddenDim, H, W), C: randomTensor(rng, B, ly.HiddenDim, H, W)}
			initial = append(initial, s)
			inputs[fmt.Sprintf("h_%d", l)], inputs[fmt.Sprintf("c_%d", l)] = s.H, s.C
		}
	}
	rep.Shape, rep.Mode, rep.GFLOP = shape, "forward", modelFLOPs(cm, B, T, H, W)/1e9
	if !f.stream {
		// Each run's outputs go back to the model for the next, as a
		// service looping over requests would do: PyTorch's and ONNX
		// Runtime's allocators reuse freed memory the same way.
		return func() error {
			out, err := m.Run(inputs, model.RunOptions{})
			m.Recycle(out)
			return err
		}, nil, nil
	}
	if T != 1 {
		return nil, nil, fmt.Errorf("--stream times one step at a time: give --shape B,1,C,H,W")
	}
	// The streaming API belongs to the runtime: time it there.
	r, err := runtime.New(cm, runtime.Options{Threads: f.threads, Direct: f.direct, Precision: m.Precision()})
	if err != nil {
		return nil, nil, err
	}
	s, err := r.NewStream(B, H, W, initial)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	frame := &tensor.Tensor{Shape: []int{B, C, H, W}, Data: x.Data, DType: tensor.Float32}
	rep.Mode = "stream-step"
	return func() error {
		_, err := s.Step(frame)
		return err
	}, r.Close, nil
}

// benchGraph prepares timing a graph on random (or given) inputs.
func benchGraph(m *model.Model, f benchFlags, rep *benchReport) (func() error, error) {
	var bad []string
	if f.stream {
		bad = append(bad, "--stream (the streaming API of the native runtime)")
	}
	if f.randomState {
		bad = append(bad, "--random-state (a native ConvLSTM's initial state; give a graph's state inputs with --input)")
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s is an ONNX graph: %s do(es) not apply", m.File, strings.Join(bad, ", "))
	}
	var required []model.IO
	byName := map[string]model.IO{}
	for _, in := range m.Inputs() {
		byName[in.Name] = in
		if !in.Optional {
			required = append(required, in)
		}
	}
	rng := rand.New(rand.NewSource(1))
	inputs := map[string]*tensor.Tensor{}
	rep.Inputs = map[string][]int{}
	add := func(in model.IO, spec, flag string) error {
		if _, dup := inputs[in.Name]; dup {
			return fmt.Errorf("input %q is given twice", in.Name)
		}
		var t *tensor.Tensor
		if _, err := os.Stat(spec); err == nil {
			if t, err = loader.ReadNPY(spec); err != nil {
				return err
			}
		} else {
			shape, err := parseShape(flag, spec, 0)
			if err != nil {
				return err
			}
			if t, err = randomInput(rng, in, shape); err != nil {
				return err
			}
		}
		inputs[in.Name] = t
		rep.Inputs[in.Name] = t.Shape
		return nil
	}
	for _, spec := range f.inputs {
		i := strings.IndexByte(spec, '=')
		if i <= 0 {
			return nil, fmt.Errorf("--input %q: want NAME=D1,D2,... or NAME=FILE.npy; the graph takes %s", spec, ioNames(m.Inputs()))
		}
		in, ok := byName[spec[:i]]
		if !ok {
			return nil, fmt.Errorf("--input %s: the graph has no input %q; it takes %s", spec, spec[:i], ioNames(m.Inputs()))
		}
		if err := add(in, spec[i+1:], "--input "+in.Name+"="); err != nil {
			return nil, err
		}
	}
	if f.shape != "" {
		var missing []model.IO
		for _, in := range required {
			if inputs[in.Name] == nil {
				missing = append(missing, in)
			}
		}
		if len(missing) != 1 {
			return nil, fmt.Errorf("--shape %s: which input is it? The graph takes %s; with --input for all but one, --shape gives the last", f.shape, ioNames(required))
		}
		if err := add(missing[0], f.shape, "--shape"); err != nil {
			return nil, err
		}
	}
	if err := m.CheckInputs(inputs); err != nil {
		return nil, err
	}
	for _, in := range m.Inputs() {
		if t := inputs[in.Name]; t != nil && rep.Shape == nil {
			rep.Shape = t.Shape
		}
	}
	rep.Mode = "graph"
	return func() error {
		_, err := m.Run(inputs, model.RunOptions{})
		return err
	}, nil
}

// randomInput makes a graph input: normal values for floats, zeros for
// integers (shapes and indices must be meaningful), false for bools.
func randomInput(rng *rand.Rand, in model.IO, shape []int) (*tensor.Tensor, error) {
	switch {
	case in.DType.IsFloat():
		return randomTensor(rng, shape...), nil
	case in.DType.IsInt():
		return tensor.FromInts(in.DType, make([]int64, tensor.Numel(shape)), shape...), nil
	}
	return nil, fmt.Errorf("input %q has element type %s: bench cannot make one; give NAME=FILE.npy", in.Name, in.DType)
}

func randomTensor(rng *rand.Rand, shape ...int) *tensor.Tensor {
	t := &tensor.Tensor{Shape: shape, DType: "float32"}
	t.Data = make([]float32, t.NumElements())
	for i := range t.Data {
		t.Data[i] = float32(rng.NormFloat64())
	}
	return t
}
