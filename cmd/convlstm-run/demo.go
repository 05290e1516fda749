package main

import (
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/convlstm-go/convlstm-go/demo"
	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/frames"
	"github.com/convlstm-go/convlstm-go/model"
	"github.com/convlstm-go/convlstm-go/movingmnist"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// The real Moving-MNIST predictor (MIT; provenance and licence in demo/).
//
//go:embed demo/moving-mnist.onnx
var demoModel []byte

const demoModelName = "(bundled moving-mnist.onnx)"

type demoFlags struct {
	sequences, show, threads int
	seed                     uint64
	output, frames           string
	precision                string
}

func init() {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Predict Moving MNIST with a real trained model and score it",
		Long: `Make Moving MNIST sequences (two real MNIST digits bouncing in a 64x64
frame, 20 frames: 10 in, 10 to predict), run the real published Moving-MNIST
ConvLSTM model embedded in the binary (an encoder-decoder of four 5x5
ConvLSTM cells, MIT licence; see cmd/convlstm-run/demo/README.md) on the
first 10 frames, and print the per-pixel mean squared error of its 10
predicted frames against the true ones, on the 0..255 scale, step by step and
overall, beside the naive forecast that repeats the last input frame
(copy-last).

--output writes an animated GIF (--output "" for none): for each of the
first --show sequences, stacked top to bottom, the 10 input frames, then the
prediction (left) beside the truth (right). --frames DIR also writes the
sequences as PNG folders, DIR/input/ and DIR/truth/ (000.png, ...; a
subfolder per sequence when there are several), which run reads back:

  convlstm-run run --weights cmd/convlstm-run/demo/moving-mnist.onnx \
      --pixel-max 255 --input DIR/input --output pred.gif --strip future --truth DIR/truth

The sequences depend only on --seed and their index. A progress bar shows on
stderr when it is a terminal.`,
		Example: `  convlstm-run demo
  convlstm-run demo --sequences 64 --seed 1 --output demo.gif --show 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.OutOrStdout(), f) },
	}
	fl := cmd.Flags()
	fl.IntVar(&f.sequences, "sequences", 8, "how many sequences to predict and score")
	fl.Uint64Var(&f.seed, "seed", 1, "the sequences' random seed")
	fl.StringVar(&f.output, "output", "demo.gif", `the animated GIF to write ("" for none)`)
	fl.IntVar(&f.show, "show", 3, "sequences drawn in the GIF (at most --sequences)")
	fl.StringVar(&f.frames, "frames", "", "also write the input and true frames as PNGs in DIR/input/ and DIR/truth/")
	fl.IntVar(&f.threads, "threads", 0, "worker threads (0: all cores)")
	fl.StringVar(&f.precision, "precision", "float32", precisionFlagHelp)
	rootCmd.AddCommand(cmd)
}

func runDemo(out io.Writer, f demoFlags) error {
	if f.sequences < 1 || f.sequences > movingmnist.MaxSequences {
		return fmt.Errorf("--sequences %d: want 1 to %d", f.sequences, movingmnist.MaxSequences)
	}
	show := min(f.show, f.sequences)
	if f.output != "" {
		if show < 1 {
			return fmt.Errorf("--show %d: want at least 1 sequence in the GIF (or --output \"\" for no GIF)", f.show)
		}
		if !frames.IsOutputPath(f.output) {
			return fmt.Errorf("--output %s: the demo writes an animated GIF (NAME.gif) or a folder of PNGs (NAME/)", f.output)
		}
	}
	var frameDirs []string
	if f.frames != "" {
		for _, d := range []string{"input", "truth"} {
			p := filepath.Join(f.frames, d)
			if entries, err := os.ReadDir(p); err == nil && len(entries) > 0 {
				return fmt.Errorf("--frames %s: %s already holds files; give a new or empty folder", f.frames, p)
			}
			frameDirs = append(frameDirs, p+string(filepath.Separator))
		}
	}
	prec, err := parsePrecision(f.precision)
	if err != nil {
		return err
	}
	start := time.Now()
	m, err := model.OpenBytes(demoModelName, demoModel, model.Options{Threads: f.threads, Precision: prec})
	if err != nil {
		return err
	}
	defer m.Close()
	bar := newProgress("predicting")
	res, err := demo.Run(demo.GraphModel(m), demo.Options{
		Sequences: f.sequences, Seed: f.seed, PixelMax: 255, GIF: f.output, Show: show,
		Progress: bar.Update,
	})
	bar.Finish()
	if err != nil {
		return err
	}
	if f.frames != "" {
		for i, t := range []*tensor.Tensor{res.Input, res.Truth} {
			if err := frames.Write(frameDirs[i], t, frames.WriteOptions{PixelMax: 255}); err != nil {
				if i == 1 {
					os.RemoveAll(frameDirs[0]) // checked empty or absent above
				}
				return err
			}
		}
	}
	total := time.Since(start)

	fmt.Fprintf(out, "model:     %s (ONNX graph, opset %d): Moving-MNIST encoder-decoder, 4 ConvLSTM cells, MIT\n", m.File, m.Graph.Opset)
	fmt.Fprintf(out, "sequences: %d Moving MNIST (seed %d), %d frames in, %d predicted, 64×64\n",
		res.Sequences, res.Seed, movingmnist.InputLength, len(res.ModelMSEPerStep))
	fmt.Fprintf(out, "per-pixel MSE against the true frames (0..255 scale):\n")
	fmt.Fprintf(out, "  step      model  copy-last\n")
	for k := range res.ModelMSEPerStep {
		fmt.Fprintf(out, "  %4d  %9.1f  %9.1f\n", movingmnist.InputLength+k+1, res.ModelMSEPerStep[k], res.CopyLastPerStep[k])
	}
	fmt.Fprintf(out, "  all   %9.1f  %9.1f\n", res.ModelMSE, res.CopyLastMSE)
	ms := float64(res.ModelTime.Microseconds()) / 1000
	fmt.Fprintf(out, "time:      model %.1f ms on %d thread(s) (%.1f ms a sequence); %.1f ms in all\n",
		ms, m.Threads(), ms/float64(res.Sequences), float64(total.Microseconds())/1000)
	if m.Precision() != engine.Float32 {
		fmt.Fprintf(out, "precision: %s\n", m.PrecisionPath())
	}
	if res.GIF != "" {
		fmt.Fprintf(out, "wrote:     %s (%d sequence(s): the input frames, then prediction left, truth right)\n", res.GIF, res.Shown)
	}
	if f.frames != "" {
		fmt.Fprintf(out, "wrote:     %s and %s (the sequences as PNG frames)\n", frameDirs[0], frameDirs[1])
	}
	return nil
}
