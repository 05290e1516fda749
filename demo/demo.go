// Package demo is `convlstm-run demo` without the command line: it makes
// Moving MNIST sequences (package movingmnist), runs a video-prediction
// model on their first 10 frames, scores its prediction of the next 10
// against the truth beside the naive forecast that copies the last input
// frame, and draws the result as an animated GIF (package frames).
package demo

import (
	"fmt"
	"io"
	"time"

	"github.com/convlstm-go/convlstm-go/frames"
	"github.com/convlstm-go/convlstm-go/movingmnist"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Model predicts frames: given x (B, 10, 64, 64) in the model's units
// (see Options.PixelMax), it returns the next 10 frames as (B, 10, 64, 64)
// or (B, 10, 1, 64, 64), in the same units. The published Moving-MNIST
// model takes and returns raw pixel values 0..255.
type Model func(x *tensor.Tensor) (*tensor.Tensor, error)

// Options for Run. The zero value runs 8 sequences of seed 1 in batches of
// 8 for a model on raw pixels, and writes no GIF.
type Options struct {
	Sequences int    // how many sequences (default 8)
	Seed      uint64 // generator seed (0 is a seed like any other)
	Batch     int    // at most this many sequences per model call (default 8)
	// PixelMax is the model's white: inputs are pixel/255·PixelMax and
	// outputs are mapped back by 255/PixelMax before scoring (default 255).
	PixelMax float64
	GIF      string        // write the animation here ("" for none)
	Show     int           // sequences drawn in the GIF (default min(Sequences, 3))
	Delay    time.Duration // GIF frame time (default 100 ms)
	// Progress, when set, is called after each model call with the
	// sequences done and the total.
	Progress func(done, total int)
}

// Result is what Run measured. MSEs are per pixel on the 0..255 scale,
// averaged over every predicted frame of every sequence; the prediction is
// scored as the model returned it (not rounded or clipped).
type Result struct {
	Sequences                        int
	Seed                             uint64
	ModelMSE, CopyLastMSE            float64
	ModelMSEPerStep, CopyLastPerStep []float64 // one per predicted step
	// Input and Truth are (N, 10, 64, 64) pixels 0..255; Prediction is the
	// model's output on the same scale.
	Input, Truth, Prediction *tensor.Tensor
	ModelTime                time.Duration // total time inside the model
	GIF                      string        // the file written, if any
	Shown                    int           // sequences in the GIF
}

// Run generates the sequences, runs model on them and scores it (see the
// package comment); with Options.GIF set it writes the animation: for each
// shown sequence (stacked top to bottom), the 10 input frames, then the
// prediction (left) beside the truth (right) — frames.Strip's future
// layout.
func Run(model Model, opt Options) (*Result, error) {
	if opt.Sequences == 0 {
		opt.Sequences = 8
	}
	if opt.Batch == 0 {
		opt.Batch = 8
	}
	if opt.PixelMax == 0 {
		opt.PixelMax = 255
	}
	if opt.Batch < 1 {
		return nil, fmt.Errorf("demo: batch %d: want at least 1", opt.Batch)
	}
	if !(opt.PixelMax > 0) {
		return nil, fmt.Errorf("demo: pixel max %v: want a positive value", opt.PixelMax)
	}
	seqs, err := movingmnist.Generate(opt.Sequences, opt.Seed)
	if err != nil {
		return nil, fmt.Errorf("demo: %v", err)
	}
	input, truth, err := movingmnist.Split(seqs)
	if err != nil {
		return nil, fmt.Errorf("demo: %v", err)
	}
	N, T, S := opt.Sequences, movingmnist.Length-movingmnist.InputLength, movingmnist.Size
	frame := S * S
	per := movingmnist.InputLength * frame // values of one input sequence
	pred := tensor.New(N, T, S, S)
	res := &Result{Sequences: N, Seed: opt.Seed, Input: input, Truth: truth, Prediction: pred}
	toModel, fromModel := float32(opt.PixelMax/255), 255/opt.PixelMax
	for b0 := 0; b0 < N; b0 += opt.Batch {
		n := min(opt.Batch, N-b0)
		x := tensor.New(n, movingmnist.InputLength, S, S)
		for i, v := range input.Data[b0*per : (b0+n)*per] {
			x.Data[i] = v * toModel
		}
		start := time.Now()
		y, err := model(x)
		res.ModelTime += time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("demo: the model on sequences %d..%d: %w", b0, b0+n-1, err)
		}
		if err := checkOutput(y, n, T, S); err != nil {
			return nil, err
		}
		dst := pred.Data[b0*T*frame : (b0+n)*T*frame]
		for i, v := range y.Data {
			dst[i] = float32(float64(v) * fromModel)
		}
		if opt.Progress != nil {
			opt.Progress(b0+n, N)
		}
	}
	last, err := CopyLast(input)
	if err != nil {
		return nil, err
	}
	res.ModelMSEPerStep, res.ModelMSE = mse(pred, truth)
	res.CopyLastPerStep, res.CopyLastMSE = mse(last, truth)

	if opt.GIF != "" {
		show := opt.Show
		if show == 0 {
			show = min(N, 3)
		}
		if show < 1 || show > N {
			return nil, fmt.Errorf("demo: %d sequences to show of %d", show, N)
		}
		strip, err := frames.Strip(head(input, show), head(pred, show), head(truth, show), frames.StripOptions{Future: true, PixelMax: 255})
		if err != nil {
			return nil, fmt.Errorf("demo: %v", err)
		}
		if err := frames.Write(opt.GIF, strip, frames.WriteOptions{PixelMax: 255, Delay: opt.Delay}); err != nil {
			return nil, err
		}
		res.GIF, res.Shown = opt.GIF, show
	}
	return res, nil
}

func checkOutput(y *tensor.Tensor, n, T, S int) error {
	ok := y != nil && y.IsFloat() && y.Check() == nil &&
		(tensor.SameShape(y.Shape, []int{n, T, S, S}) || tensor.SameShape(y.Shape, []int{n, T, 1, S, S}))
	if ok {
		return nil
	}
	got := "nothing"
	if y != nil {
		got = tensor.ShapeString(y.Shape)
		if !y.IsFloat() {
			got += " " + string(y.DType)
		}
	}
	return fmt.Errorf("demo: the model returned %s; want the %d predicted frames as (%d, %d, %d, %d) or (%d, %d, 1, %d, %d) float values", got, T, n, T, S, S, n, T, S, S)
}

// CopyLast is the naive forecast as a Model: every predicted frame is the
// last input frame.
func CopyLast(x *tensor.Tensor) (*tensor.Tensor, error) {
	if len(x.Shape) != 4 || x.Shape[1] < 1 || len(x.Data) != x.NumElements() {
		return nil, fmt.Errorf("demo: copy-last: input %s, want (B, T, H, W)", tensor.ShapeString(x.Shape))
	}
	B, T, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	y := tensor.New(B, movingmnist.Length-movingmnist.InputLength, H, W)
	f := H * W
	for b := 0; b < B; b++ {
		last := x.Data[(b*T+T-1)*f:][:f]
		for t := 0; t < y.Shape[1]; t++ {
			copy(y.Data[(b*y.Shape[1]+t)*f:], last)
		}
	}
	return y, nil
}

// mse returns the mean squared error per step and overall of a against b,
// both (N, T, H, W).
func mse(a, b *tensor.Tensor) ([]float64, float64) {
	N, T := b.Shape[0], b.Shape[1]
	f := tensor.Numel(b.Shape[2:])
	per := make([]float64, T)
	total := 0.0
	for t := 0; t < T; t++ {
		sum := 0.0
		for n := 0; n < N; n++ {
			off := (n*T + t) * f
			for i, v := range b.Data[off : off+f] {
				d := float64(a.Data[off+i]) - float64(v)
				sum += d * d
			}
		}
		per[t] = sum / float64(N*f)
		total += sum
	}
	return per, total / float64(N*T*f)
}

// head returns the first n items of a batch (shared data).
func head(x *tensor.Tensor, n int) *tensor.Tensor {
	per := tensor.Numel(x.Shape[1:])
	return tensor.FromFloats(x.Data[:n*per], append([]int{n}, x.Shape[1:]...)...)
}

// WriteReport prints the result as `convlstm-run demo` does.
func (r *Result) WriteReport(w io.Writer) {
	fmt.Fprintf(w, "Moving MNIST: %d sequences (seed %d), %d frames in, %d predicted\n",
		r.Sequences, r.Seed, movingmnist.InputLength, len(r.ModelMSEPerStep))
	fmt.Fprintf(w, "per-pixel MSE on the 0..255 scale, over the predicted frames:\n")
	fmt.Fprintf(w, "  model      %8.1f\n", r.ModelMSE)
	fmt.Fprintf(w, "  copy-last  %8.1f   (repeating the last input frame)\n", r.CopyLastMSE)
	fmt.Fprintf(w, "model time  %.1f ms\n", float64(r.ModelTime.Microseconds())/1000)
	if r.GIF != "" {
		fmt.Fprintf(w, "wrote %s: %d sequence(s); input frames, then prediction (left) beside truth (right)\n", r.GIF, r.Shown)
	}
}
