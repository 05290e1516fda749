package main

import (
	"github.com/convlstm-go/convlstm-go/tensor"

	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/runtime"
)

type runFlags struct {
	weights, input, output string
	gates, prefix, stateIn string
	timeFirst, allLayers   bool
	threads                int
}

func init() {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a ConvLSTM on an input sequence and write its outputs and final states",
		Long: `Run a ConvLSTM on an input sequence.

The weights may be a PyTorch .pt/.pth (state_dict, checkpoint dict, DataParallel
or nested model, single ConvLSTMCell, whole pickled module; zip or legacy
format), a safetensors file or an ONNX graph; the format is told from the
content. The input is a .npy array (B,T,C,H,W), or (T,B,C,H,W) with
--time-first. OUT.npz holds "output" (the last layer's sequence in the input's
layout), "h_0".."h_{L-1}" and "c_0".."c_{L-1}" (final states, (B,hidden,H,W))
and, with --all-layers, "output_0".."output_{L-1}".

With neither --weights nor --input it runs a small bundled example.`,
		Example: `  convlstm-run run
  convlstm-run run --weights model.pt --input x.npy --output out.npz
  convlstm-run run --weights ckpt.pth --prefix enc1 --gates fiog --input x.npy --output out.npz --state-in s.npz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRun(cmd.OutOrStdout(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.weights, "weights", "", "weights file (.pt/.pth, safetensors or ONNX; detected from content)")
	fl.StringVar(&f.input, "input", "", "input .npy, (B,T,C,H,W) or with --time-first (T,B,C,H,W)")
	fl.StringVar(&f.output, "output", "", "write outputs and final states to this .npz")
	fl.StringVar(&f.gates, "gates", "", "gate order of the conv's output blocks, a permutation of ifog (default ifog, or the file's metadata)")
	fl.BoolVar(&f.timeFirst, "time-first", false, "input (and output) are (T,B,C,H,W)")
	fl.BoolVar(&f.allLayers, "all-layers", false, "also write every layer's output sequence as output_0..")
	fl.StringVar(&f.stateIn, "state-in", "", "initial state .npz with h_l and c_l (B,hidden,H,W) for every layer")
	fl.StringVar(&f.prefix, "prefix", "", "which ConvLSTM in the file: the key prefix before cell_list. or before .conv.weight")
	fl.IntVar(&f.threads, "threads", 0, "worker threads (0: all cores)")
	rootCmd.AddCommand(cmd)
}

func runRun(out io.Writer, f runFlags) error {
	if (f.weights == "") != (f.input == "") {
		if f.weights == "" {
			return fmt.Errorf("--input given without --weights: give both, or neither to run the bundled example")
		}
		return fmt.Errorf("--weights given without --input: give the input sequence as a .npy (B,T,C,H,W)")
	}
	if f.weights != "" {
		if format, err := loader.DetectFile(f.weights); err == nil && format == loader.FormatONNX {
			return runONNX(out, f.weights, f.input, f.output, f.threads)
		}
	}
	m, err := loadModel(f.weights, f.prefix, f.gates)
	if err != nil {
		return err
	}
	x, err := readInput(f.input)
	if err != nil {
		return err
	}
	var initial []runtime.LayerState
	if f.stateIn != "" {
		if initial, err = readState(f.stateIn, len(m.Layers)); err != nil {
			return err
		}
	}
	r, err := runtime.New(m, runtime.Options{Threads: f.threads})
	if err != nil {
		return err
	}
	defer r.Close()
	start := time.Now()
	res, err := r.Forward(x, runtime.ForwardOptions{TimeFirst: f.timeFirst, AllLayers: f.allLayers, Initial: initial})
	if err != nil {
		where := "input " + inputName(f.input)
		if f.stateIn != "" {
			where += ", initial state " + f.stateIn
		}
		return fmt.Errorf("%w (%s)", err, where)
	}
	elapsed := time.Since(start)

	if f.output != "" {
		keys, ts := resultTensors(res, f.allLayers)
		if err := loader.WriteNPZ(f.output, keys, ts); err != nil {
			return err
		}
	}
	printSummary(out, m, f, x, res, elapsed, r.Threads())
	return nil
}

func inputName(p string) string {
	if p == "" {
		return exampleInputName
	}
	return p
}

// resultTensors lays a result out as the CLI's npz: output, h_l, c_l and,
// with all layers, output_l.
func resultTensors(res *runtime.Result, allLayers bool) ([]string, map[string]*tensor.Tensor) {
	ts := map[string]*tensor.Tensor{"output": res.Output}
	keys := []string{"output"}
	for l, s := range res.Final {
		hk, ck := fmt.Sprintf("h_%d", l), fmt.Sprintf("c_%d", l)
		ts[hk], ts[ck] = s.H, s.C
		keys = append(keys, hk, ck)
	}
	if allLayers {
		for l, o := range res.Layers {
			k := fmt.Sprintf("output_%d", l)
			ts[k] = o
			keys = append(keys, k)
		}
	}
	return keys, ts
}

// readState reads h_l and c_l for every layer from an npz.
func readState(path string, layers int) ([]runtime.LayerState, error) {
	ts, _, err := loader.ReadNPZ(path)
	if err != nil {
		return nil, err
	}
	st := make([]runtime.LayerState, layers)
	for l := range st {
		hk, ck := fmt.Sprintf("h_%d", l), fmt.Sprintf("c_%d", l)
		for _, k := range []string{hk, ck} {
			if ts[k] == nil {
				return nil, fmt.Errorf("%s: the initial state needs %s and %s for each of the model's %d layers; %s is missing", path, hk, ck, layers, k)
			}
		}
		st[l] = runtime.LayerState{H: ts[hk], C: ts[ck]}
	}
	return st, nil
}

func printSummary(out io.Writer, m *convlstm.Model, f runFlags, x *tensor.Tensor, res *runtime.Result, elapsed time.Duration, threads int) {
	name := f.weights
	if name == "" {
		name = exampleModelName
	}
	fmt.Fprintf(out, "model:  %s (%s", name, m.Source.Format)
	if m.Source.Prefix != "" {
		fmt.Fprintf(out, ", prefix %q", m.Source.Prefix)
	}
	fmt.Fprintf(out, "), %d layer(s), gates %s, %d parameters\n", len(m.Layers), m.Gates, m.Params())
	for i, l := range m.Layers {
		fmt.Fprintf(out, "  layer %d: %d -> %d channels, kernel %dx%d, bias %v\n", i, l.InputDim, l.HiddenDim, l.KernelH, l.KernelW, l.HasBias)
	}
	layout := "B,T,C,H,W"
	if f.timeFirst {
		layout = "T,B,C,H,W"
	}
	fmt.Fprintf(out, "input:  %s %s (%s)\n", inputName(f.input), tensor.ShapeString(x.Shape), layout)
	lo, hi, mean := stats(res.Output.Data)
	fmt.Fprintf(out, "output: %s  min %.4f  max %.4f  mean %.4f\n", tensor.ShapeString(res.Output.Shape), lo, hi, mean)
	fmt.Fprintf(out, "time:   %.2f ms on %d thread(s)\n", float64(elapsed.Microseconds())/1000, threads)
	if f.output != "" {
		fmt.Fprintf(out, "wrote:  %s (output, h_0..h_%d, c_0..c_%d", f.output, len(m.Layers)-1, len(m.Layers)-1)
		if f.allLayers {
			fmt.Fprintf(out, ", output_0..output_%d", len(m.Layers)-1)
		}
		fmt.Fprintln(out, ")")
	}
}

func stats(v []float32) (lo, hi, mean float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	s := 0.0
	for _, x := range v {
		f := float64(x)
		lo, hi = math.Min(lo, f), math.Max(hi, f)
		s += f
	}
	return lo, hi, s / float64(max(1, len(v)))
}
