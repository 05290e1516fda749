package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/frames"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/model"
	"github.com/convlstm-go/convlstm-go/tensor"
)

type runFlags struct {
	weights, output        string
	inputs                 []string
	gates, prefix, stateIn string
	precision              string
	timeFirst, allLayers   bool
	threads                int
	pics                   pictureFlags
}

func init() {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a model on its inputs and write every output",
		Long: `Run a model on its inputs and write its outputs: every output to an
.npz, or the first one as pictures.

The weights may be a PyTorch .pt/.pth (state_dict, checkpoint dict, DataParallel
or nested model, single ConvLSTMCell, whole pickled module; zip or legacy
format), a safetensors file or an .npz state_dict holding a ConvLSTM, or an
ONNX graph; the format is told from the content.

A ConvLSTM's input is a .npy array (B,T,C,H,W), or (T,B,C,H,W) with
--time-first. OUT.npz holds "output" (the last layer's sequence in the input's
layout), "h_0".."h_{L-1}" and "c_0".."c_{L-1}" (final states, (B,hidden,H,W))
and, with --all-layers, "output_0".."output_{L-1}". --state-in starts from a
saved state instead of zeros.

A graph's inputs are given by name: --input NAME=FILE.npy (repeatable), or one
.npz holding an array per input, or a plain FILE.npy when the graph has one
input; float, int64 and bool arrays are accepted as the graph declares them.
OUT.npz holds every graph output under its name, integers and booleans in
their own dtype.

Pictures in: --input DIR/ reads the frames of one sequence (PNG, JPEG or GIF
files in natural name order: 2.png before 10.png), --input FILE.gif an
animated GIF, and a folder of such folders or GIFs is a batch (a progress bar
shows on a terminal). A pixel becomes pixel/255 x --pixel-max (the model's
white: 1 by default, 255 for models on raw pixels; 16-bit PNGs /65535). The
frames feed the model's first input (NAME=DIR for another): a ConvLSTM takes
them as (B,T,C,H,W), grey or RGB converted to its input channels (1 or 3); a
graph's input decides the layout from its rank and static dims: (B,T,H,W),
(B,T,C,H,W) or channels-last (B,T,H,W,C).

Pictures out: --output X.gif writes the first output ("output" for a
ConvLSTM) as an animated GIF, one frame per step, a batch stacked top to
bottom; --output DIR/ writes one PNG per step (000.png, ...; a batch in
000/, 001/, ...). Values map back through --pixel-max to 0..255, clipped.
The output must have 1 (grey) or 3 (RGB) channels, or --channel K picks one.
--strip lays input | prediction side by side in each frame (| truth with
--truth DIR, pictures of the true frames): aligned, step t beside step t,
unless the lengths differ or --strip future is given, when the input plays
first and the prediction (beside the truth) continues it. A failed write
leaves nothing behind.

--gates, --prefix, --time-first, --all-layers and --state-in apply to ConvLSTM
weights only: on a graph they are errors, not ignored; so are the picture
flags without pictures.

With neither --weights nor --input it runs a small bundled example.`,
		Example: `  convlstm-run run
  convlstm-run run --weights model.pt --input x.npy --output out.npz
  convlstm-run run --weights ckpt.pth --prefix enc1 --gates fiog --input x.npy --output out.npz --state-in s.npz
  convlstm-run run --weights model.onnx --input frames=x.npy --input mask=m.npy --output out.npz
  convlstm-run run --weights model.onnx --input inputs.npz --output out.npz
  convlstm-run run --weights model.pt --input frames/ --output pred.gif --strip
  convlstm-run run --weights mnist.onnx --pixel-max 255 --input seq.gif --output pred.gif --strip future --truth truth/
  convlstm-run run --weights model.pt --input batch/ --output pred/ --channel 0`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			// --strip takes an optional value, so "--strip future" reaches
			// here as --strip and an argument "future".
			if len(args) > 0 {
				if len(args) == 1 && fl.Changed("strip") && f.pics.strip == "aligned" && (args[0] == "aligned" || args[0] == "future") {
					f.pics.strip = args[0]
				} else {
					return fmt.Errorf("unexpected argument %q: run takes flags only (see run --help)", args[0])
				}
			}
			f.pics.pixelMaxSet, f.pics.channelSet = fl.Changed("pixel-max"), fl.Changed("channel")
			return runRun(cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.weights, "weights", "", "model file (.pt/.pth, safetensors, .npz state_dict or ONNX; detected from content)")
	fl.StringArrayVar(&f.inputs, "input", nil, "input: X.npy, NAME=X.npy (repeatable), an .npz of arrays by input name, or pictures: DIR/ of frames, X.gif, a folder of those")
	fl.StringVar(&f.output, "output", "", "write every output to this .npz, or the first as pictures: X.gif or DIR/ (PNGs)")
	fl.StringVar(&f.gates, "gates", "", "ConvLSTM: gate order of the conv's output blocks, a permutation of ifog (default ifog, or the file's metadata)")
	fl.BoolVar(&f.timeFirst, "time-first", false, "ConvLSTM: input (and output) are (T,B,C,H,W)")
	fl.BoolVar(&f.allLayers, "all-layers", false, "ConvLSTM: also write every layer's output sequence as output_0..")
	fl.StringVar(&f.stateIn, "state-in", "", "ConvLSTM: initial state .npz with h_l and c_l (B,hidden,H,W) for every layer")
	fl.StringVar(&f.prefix, "prefix", "", "ConvLSTM: which one in the file: the key prefix before cell_list. or before .conv.weight")
	fl.IntVar(&f.threads, "threads", 0, "worker threads (0: all cores)")
	fl.StringVar(&f.precision, "precision", "float32", precisionFlagHelp)
	fl.Float64Var(&f.pics.pixelMax, "pixel-max", 1, "pictures: the model's value for white (1; 255 for models on raw pixels)")
	fl.IntVar(&f.pics.channel, "channel", 0, "pictures: write this output channel (from 0) as grey, for outputs with neither 1 nor 3 channels")
	fl.StringVar(&f.pics.strip, "strip", "", "pictures: lay input | prediction (| truth) side by side: aligned (default) or future")
	fl.Lookup("strip").NoOptDefVal = "aligned"
	fl.StringVar(&f.pics.truth, "truth", "", "pictures: the true frames (folder or GIF) shown right of the prediction in a --strip")
	rootCmd.AddCommand(cmd)
}

func runRun(out io.Writer, f runFlags) error {
	if f.weights == "" && len(f.inputs) > 0 {
		return fmt.Errorf("--input given without --weights: give both, or neither to run the bundled example")
	}
	picturesIn := false
	for _, spec := range f.inputs {
		path := spec
		if _, err := os.Stat(spec); err != nil {
			if i := strings.IndexByte(spec, '='); i > 0 {
				path = spec[i+1:]
			}
		}
		picturesIn = picturesIn || isPictures(path)
	}
	if err := checkPictureFlags(f, picturesIn); err != nil {
		return err
	}
	prec, err := parsePrecision(f.precision)
	if err != nil {
		return err
	}
	opts := model.Options{Prefix: f.prefix, Gates: f.gates, Threads: f.threads, Precision: prec}
	ropts := model.RunOptions{TimeFirst: f.timeFirst, AllLayers: f.allLayers}
	m, err := openModel(f.weights, opts)
	if oe := (*model.OptionError)(nil); errors.As(err, &oe) {
		// Name every flag that does not apply, not only Open's.
		return flagError(model.CheckOptions(oe.File, oe.Kind, opts, ropts))
	}
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.CheckRunOptions(ropts); err != nil {
		return flagError(err)
	}
	if err := checkOutputChannels(m, f); err != nil {
		return err
	}
	if f.stateIn != "" && m.Kind != model.KindConvLSTM {
		return fmt.Errorf("%s is an ONNX graph: --state-in does not apply (it gives a native ConvLSTM's h_l/c_l); give the graph's inputs with --input NAME=FILE.npy or an .npz: %s", m.File, ioNames(m.Inputs()))
	}
	if f.weights != "" && len(f.inputs) == 0 {
		if m.Kind == model.KindConvLSTM {
			return fmt.Errorf("--weights given without --input: give the input sequence as a .npy (B,T,C,H,W)")
		}
		return fmt.Errorf("--weights given without --input: %s takes %s; give each as --input NAME=FILE.npy, or all in one .npz keyed by name", m.File, ioNames(m.Inputs()))
	}
	in, err := bindInputs(m, f.inputs, f.pics, f.timeFirst)
	if err != nil {
		return err
	}
	var truth *tensor.Tensor
	if f.pics.truth != "" {
		if truth, _, err = frames.Read(f.pics.truth, frames.ReadOptions{PixelMax: f.pics.pixelMax}); err != nil {
			return fmt.Errorf("--truth: %w", err)
		}
	}
	var extra []string
	if f.stateIn != "" {
		if extra, err = addState(in, m, f.stateIn); err != nil {
			return err
		}
	}
	if err := m.CheckInputs(in.ts); err != nil {
		return fmt.Errorf("%w (inputs: %s)", err, in.where())
	}
	if len(extra) > 0 {
		return fmt.Errorf("%s: %s are for layers the model does not have (it has %d): is this the state of another model?", f.stateIn, strings.Join(extra, ", "), len(m.Native.Layers))
	}
	start := time.Now()
	res, err := m.Run(in.ts, ropts)
	if err != nil {
		return fmt.Errorf("%w (inputs: %s)", err, in.where())
	}
	elapsed := time.Since(start)

	var keys []string
	for _, o := range m.Outputs() {
		if res[o.Name] != nil {
			keys = append(keys, o.Name)
		}
	}
	wrote := ""
	switch {
	case f.output != "" && frames.IsOutputPath(f.output):
		if wrote, err = writePictures(m, f, in, res, truth); err != nil {
			return err
		}
	case f.output != "":
		if err := loader.WriteNPZ(f.output, keys, res); err != nil {
			return err
		}
		wrote = abbreviate(keys)
	}
	printSummary(out, m, f, in, res, keys, elapsed, wrote)
	return nil
}

func printSummary(out io.Writer, m *model.Model, f runFlags, in *inputSet, res map[string]*tensor.Tensor, keys []string, elapsed time.Duration, wrote string) {
	if m.Kind == model.KindConvLSTM {
		cm := m.Native
		fmt.Fprintf(out, "model:  %s (%s", m.File, m.Format)
		if cm.Source.Prefix != "" {
			fmt.Fprintf(out, ", prefix %q", cm.Source.Prefix)
		}
		fmt.Fprintf(out, "), %d layer(s), gates %s, %d parameters\n", len(cm.Layers), cm.Gates, cm.Params())
		for i, l := range cm.Layers {
			fmt.Fprintf(out, "  layer %d: %d -> %d channels, kernel %dx%d, bias %v\n", i, l.InputDim, l.HiddenDim, l.KernelH, l.KernelW, l.HasBias)
		}
		layout := "B,T,C,H,W"
		if f.timeFirst {
			layout = "T,B,C,H,W"
		}
		fmt.Fprintf(out, "input:  %s %s (%s)\n", in.from["input"], tensor.ShapeString(in.ts["input"].Shape), layout)
		if f.stateIn != "" {
			fmt.Fprintf(out, "state:  %s (h_0..h_%d, c_0..c_%d)\n", f.stateIn, len(cm.Layers)-1, len(cm.Layers)-1)
		}
		o := res["output"]
		lo, hi, mean := stats(o)
		fmt.Fprintf(out, "output: %s  min %.4f  max %.4f  mean %.4f\n", tensor.ShapeString(o.Shape), lo, hi, mean)
	} else {
		g := m.Graph
		producer := g.Producer
		if producer == "" {
			producer = "unknown producer"
		}
		fmt.Fprintf(out, "model:  %s (ONNX graph, opset %d, %s)\n", m.File, g.Opset, producer)
		for _, io := range m.Inputs() {
			if t := in.ts[io.Name]; t != nil {
				fmt.Fprintf(out, "input:  %s %s %s from %s\n", io.Name, t.DType, tensor.ShapeString(t.Shape), in.from[io.Name])
			}
		}
		for _, k := range keys {
			t := res[k]
			lo, hi, mean := stats(t)
			fmt.Fprintf(out, "output: %s %s %s  min %.4f  max %.4f  mean %.4f\n", k, dtypeOf(t), tensor.ShapeString(t.Shape), lo, hi, mean)
		}
	}
	fmt.Fprintf(out, "time:   %.2f ms on %d thread(s)\n", float64(elapsed.Microseconds())/1000, m.Threads())
	if m.Precision() != engine.Float32 {
		fmt.Fprintf(out, "precision: %s\n", m.PrecisionPath())
	}
	if f.output != "" {
		fmt.Fprintf(out, "wrote:  %s (%s)\n", f.output, wrote)
	}
}

func dtypeOf(t *tensor.Tensor) tensor.DType {
	if t.DType == "" {
		return tensor.Float32
	}
	return t.DType
}

// abbreviate lists output names, runs of h_l, c_l and output_l shortened to
// "h_0..h_2".
func abbreviate(keys []string) string {
	var parts []string
	groups := map[string][]string{}
	var order []string
	for _, k := range keys {
		var prefix string
		var l int
		for _, p := range []string{"h", "c", "output"} {
			if n, _ := fmt.Sscanf(k, p+"_%d", &l); n == 1 && k == fmt.Sprintf("%s_%d", p, l) {
				prefix = p
			}
		}
		if prefix == "" {
			parts = append(parts, k)
			order = append(order, "")
			continue
		}
		if groups[prefix] == nil {
			order = append(order, prefix)
		}
		groups[prefix] = append(groups[prefix], k)
	}
	out := []string{}
	pi := 0
	for _, o := range order {
		if o == "" {
			out = append(out, parts[pi])
			pi++
			continue
		}
		g := groups[o]
		if len(g) == 1 {
			out = append(out, g[0])
		} else {
			out = append(out, g[0]+".."+g[len(g)-1])
		}
	}
	return strings.Join(out, ", ")
}

func stats(t *tensor.Tensor) (lo, hi, mean float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	s := 0.0
	n := t.Len()
	for i := 0; i < n; i++ {
		var f float64
		if t.IsFloat() {
			f = float64(t.Data[i])
		} else {
			f = float64(t.Ints[i])
		}
		lo, hi = math.Min(lo, f), math.Max(hi, f)
		s += f
	}
	return lo, hi, s / float64(max(1, n))
}
