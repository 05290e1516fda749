package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/convlstm-go/convlstm-go/frames"
	"github.com/convlstm-go/convlstm-go/model"
	"github.com/convlstm-go/convlstm-go/progress"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Pictures in and out of `run`: frames read for a model's input (package
// frames decides the grey/RGB channels and, for a graph, the layout) and
// its first output written back as a GIF or a folder of PNGs.

// pictureFlags are run's flags for pictures.
type pictureFlags struct {
	pixelMax    float64
	pixelMaxSet bool
	channel     int
	channelSet  bool
	strip       string // "", "aligned" or "future"
	truth       string
}

// framesInput is the one --input given as pictures.
type framesInput struct {
	name   string         // the model input they feed
	path   string         // as given
	frames *tensor.Tensor // (B, T, C, H, W) as read, in the model's units
	layout frames.Layout  // how the model takes them
}

// progressBar is what the CLI needs of package progress; a test replaces
// newProgress to see the calls.
type progressBar interface {
	Update(done, total int)
	Finish()
}

var newProgress = func(description string) progressBar {
	return progress.New(os.Stderr, 0, description)
}

var imageMagics = [][]byte{[]byte("\x89PNG\r\n\x1a\n"), []byte("GIF87a"), []byte("GIF89a"), {0xff, 0xd8, 0xff}}

// isPictures reports whether an --input path names frames: a folder, or a
// PNG, JPEG or GIF file (told by its name or its first bytes).
func isPictures(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	if st.IsDir() {
		return true
	}
	if isImageName(path) {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	for _, m := range imageMagics {
		if bytes.HasPrefix(head[:n], m) {
			return true
		}
	}
	return false
}

func isImageName(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png", ".gif", ".jpg", ".jpeg":
		return true
	}
	return false
}

// isBatchFolder reports whether dir looks like a folder of sequences (a
// subfolder, or several GIFs), the reads long enough for a progress bar.
func isBatchFolder(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	gifs := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if e.IsDir() {
			return true
		}
		if strings.EqualFold(filepath.Ext(e.Name()), ".gif") {
			gifs++
		}
	}
	return gifs > 1
}

// framesChannels is the channel count to read frames in for a model input:
// a native ConvLSTM's input channels; for a graph, 1 for a rank-4 input and
// a static 1 or 3 where the layout puts channels (0: as the pictures are).
func framesChannels(m *model.Model, in model.IO) (int, error) {
	if m.Kind == model.KindConvLSTM {
		c := in.Dims[2]
		if c != 1 && c != 3 {
			return 0, fmt.Errorf("%s takes %d input channels; pictures give 1 (grey) or 3 (RGB): give its input as a .npy (B,T,%d,H,W)", m.File, c, c)
		}
		return c, nil
	}
	switch d := in.Dims; len(d) {
	case 4:
		return 1, nil
	case 5:
		ch := func(n int) bool { return n == 1 || n == 3 }
		switch {
		case ch(d[2]) && !ch(d[4]):
			return d[2], nil
		case ch(d[4]) && !ch(d[2]):
			return d[4], nil
		}
	}
	return 0, nil
}

// readFrames reads the pictures at path for model input in: (B, T, C, H, W)
// for a native ConvLSTM ((T, B, C, H, W) with --time-first), laid out by
// frames.ForGraph for a graph.
func readFrames(m *model.Model, in model.IO, path string, pf pictureFlags, timeFirst bool) (*tensor.Tensor, *framesInput, error) {
	if m.Kind == model.KindConvLSTM && in.Name != "input" {
		return nil, nil, fmt.Errorf("--input %s: pictures feed a ConvLSTM's input sequence, not its state %s", path, in.Name)
	}
	chans, err := framesChannels(m, in)
	if err != nil {
		return nil, nil, fmt.Errorf("--input %s: %v", path, err)
	}
	opt := frames.ReadOptions{PixelMax: pf.pixelMax, Channels: chans}
	if isBatchFolder(path) {
		bar := newProgress("reading frames")
		defer bar.Finish()
		opt.Progress = bar.Update
	}
	x, _, err := frames.Read(path, opt)
	if err != nil {
		return nil, nil, err
	}
	fi := &framesInput{name: in.Name, path: path, frames: x, layout: frames.BTCHW}
	if m.Kind == model.KindConvLSTM {
		if timeFirst {
			return swapBT(x), fi, nil
		}
		return x, fi, nil
	}
	xin, layout, err := frames.ForGraph(x, in.Dims)
	if err != nil {
		return nil, nil, fmt.Errorf("--input %s for the graph's input %s: %v", path, in, strings.TrimPrefix(err.Error(), "frames: "))
	}
	fi.layout = layout
	return xin, fi, nil
}

// describe says what was read, for the summary: "seqs/ (frames: 2 sequences)".
func (fi *framesInput) describe() string {
	n := fi.frames.Shape[0]
	s := "sequence"
	if n != 1 {
		s = "sequences"
	}
	kind := "grey"
	if fi.frames.Shape[2] == 3 {
		kind = "RGB"
	}
	return fmt.Sprintf("%s (frames: %d %s of %d %s %d×%d)", fi.path, n, s, fi.frames.Shape[1], kind, fi.frames.Shape[4], fi.frames.Shape[3])
}

// swapBT swaps the first two axes of x: (B, T, …) ↔ (T, B, …).
func swapBT(x *tensor.Tensor) *tensor.Tensor {
	A, B := x.Shape[0], x.Shape[1]
	inner := tensor.Numel(x.Shape[2:])
	y := tensor.New(append([]int{B, A}, x.Shape[2:]...)...)
	for a := 0; a < A; a++ {
		for b := 0; b < B; b++ {
			copy(y.Data[(b*A+a)*inner:][:inner], x.Data[(a*B+b)*inner:][:inner])
		}
	}
	return y
}

// checkPictureFlags refuses picture flags that have nothing to act on,
// before anything is opened or read.
func checkPictureFlags(f runFlags, picturesIn bool) error {
	pf := f.pics
	out := f.output != "" && frames.IsOutputPath(f.output)
	if f.output != "" && !out && isImageName(f.output) {
		return fmt.Errorf("--output %s: pictures are written as one animated GIF (NAME.gif) or a folder of PNGs, one per step (NAME/); arrays as an .npz", f.output)
	}
	if pf.pixelMaxSet {
		if !(pf.pixelMax > 0) || math.IsInf(pf.pixelMax, 0) {
			return fmt.Errorf("--pixel-max %v: want a positive value, the model's white (1, or 255 for models on raw pixels)", pf.pixelMax)
		}
		if !picturesIn && !out {
			return fmt.Errorf("--pixel-max applies to pictures: frames read with --input DIR/ or FILE.gif, or written with --output X.gif or DIR/")
		}
	}
	if pf.channelSet && !out {
		return fmt.Errorf("--channel picks the output channel written as pictures: give --output X.gif or DIR/")
	}
	if pf.channelSet && pf.channel < 0 {
		return fmt.Errorf("--channel %d: channels count from 0", pf.channel)
	}
	switch pf.strip {
	case "", "aligned", "future":
	default:
		return fmt.Errorf("--strip %s: want aligned (input step t beside prediction step t, the default) or future (the prediction continues the input)", pf.strip)
	}
	if pf.strip != "" && !out {
		return fmt.Errorf("--strip lays input | prediction side by side in pictures: give --output X.gif or DIR/")
	}
	if pf.truth != "" && pf.strip == "" {
		return fmt.Errorf("--truth is shown beside the prediction in a strip: add --strip")
	}
	return nil
}

// checkOutputChannels refuses, before a native ConvLSTM runs, pictures of
// an output whose channel count (its last layer's hidden size) they cannot
// show; a graph's output is checked once it exists.
func checkOutputChannels(m *model.Model, f runFlags) error {
	if f.output == "" || !frames.IsOutputPath(f.output) || m.Kind != model.KindConvLSTM {
		return nil
	}
	out := m.Outputs()[0]
	C := out.Dims[2]
	switch {
	case f.pics.channelSet && f.pics.channel >= C:
		return fmt.Errorf("--channel %d: output %q %s has %d channel(s), 0..%d", f.pics.channel, out.Name, out.DimString(), C, C-1)
	case !f.pics.channelSet && C != 1 && C != 3:
		return fmt.Errorf("output %q %s has %d channels; pictures show 1 (grey) or 3 (RGB): pick one with --channel K (0..%d)", out.Name, out.DimString(), C, C-1)
	}
	return nil
}

// pictureOutput is the model output written as pictures: a native
// ConvLSTM's "output", a graph's first output.
func pictureOutput(m *model.Model) string {
	if m.Kind == model.KindConvLSTM {
		return "output"
	}
	return m.Outputs()[0].Name
}

// asFrames returns a model tensor as (B, T, C, H, W) or (B, T, H, W)
// frames: back from --time-first for a native ConvLSTM, back from the
// input's layout for a graph fed with frames, and otherwise channels first
// unless only the last dim looks like channels (frames.ChooseLayout).
func asFrames(m *model.Model, t *tensor.Tensor, timeFirst bool, fi *framesInput, what string) (*tensor.Tensor, error) {
	if !t.IsFloat() {
		return nil, fmt.Errorf("%s is %s %s: pictures are written from float values", what, t.DType, tensor.ShapeString(t.Shape))
	}
	if r := len(t.Shape); r != 4 && r != 5 {
		return nil, fmt.Errorf("%s has shape %s: pictures need (B, T, C, H, W) or (B, T, H, W); write it to an .npz instead", what, tensor.ShapeString(t.Shape))
	}
	if m.Kind == model.KindConvLSTM {
		if timeFirst {
			return swapBT(t), nil
		}
		return t, nil
	}
	layout := frames.BTCHW
	switch {
	case fi != nil:
		layout = fi.layout
	case len(t.Shape) == 5:
		layout, _ = frames.ChooseLayout(t.Shape, 0)
	}
	if layout == frames.BTHWC && len(t.Shape) != 5 {
		layout = frames.BTHW
	}
	y, err := frames.FromLayout(t, layout)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, strings.TrimPrefix(err.Error(), "frames: "))
	}
	return y, nil
}

func channelsOf(t *tensor.Tensor) int {
	if len(t.Shape) == 4 {
		return 1
	}
	return t.Shape[2]
}

// writePictures writes the model's first output as pictures (see run's
// help) and says what it wrote. truth is --truth's frames, or nil.
func writePictures(m *model.Model, f runFlags, in *inputSet, res map[string]*tensor.Tensor, truth *tensor.Tensor) (string, error) {
	pf := f.pics
	name := pictureOutput(m)
	t := res[name]
	if t == nil {
		return "", fmt.Errorf("%s: the model gave no output %q to write as pictures", m.File, name)
	}
	y, err := asFrames(m, t, f.timeFirst, in.pics, fmt.Sprintf("output %q", name))
	if err != nil {
		return "", err
	}
	C := channelsOf(y)
	what := name
	switch {
	case pf.channelSet:
		if pf.channel >= C {
			return "", fmt.Errorf("--channel %d: output %q %s has %d channel(s), 0..%d", pf.channel, name, tensor.ShapeString(y.Shape), C, C-1)
		}
		if y, err = frames.SelectChannel(y, pf.channel); err != nil {
			return "", err
		}
		what = fmt.Sprintf("%s channel %d", name, pf.channel)
	case C != 1 && C != 3:
		return "", fmt.Errorf("output %q %s has %d channels; pictures show 1 (grey) or 3 (RGB): pick one with --channel K (0..%d)", name, tensor.ShapeString(y.Shape), C, C-1)
	}
	if pf.strip != "" {
		predT := y.Shape[1]
		x, err := stripInput(m, f, in)
		if err != nil {
			return "", err
		}
		if y, err = frames.Strip(x, y, truth, frames.StripOptions{Future: pf.strip == "future", PixelMax: pf.pixelMax}); err != nil {
			return "", fmt.Errorf("--strip: %v", strings.TrimPrefix(err.Error(), "frames: strip: "))
		}
		panels := "input | " + what
		if truth != nil {
			panels += " | truth"
		}
		if x.Shape[1] != predT || pf.strip == "future" {
			panels = "input, then " + what
			if truth != nil {
				panels += " | truth"
			}
		}
		what = "strip: " + panels
	}
	if err := frames.Write(f.output, y, frames.WriteOptions{PixelMax: pf.pixelMax}); err != nil {
		return "", err
	}
	B, T := y.Shape[0], y.Shape[1]
	H, W := y.Shape[len(y.Shape)-2], y.Shape[len(y.Shape)-1]
	s := fmt.Sprintf("%s; %d frames of %d×%d", what, T, W, H)
	if B > 1 {
		if strings.HasSuffix(strings.ToLower(f.output), ".gif") {
			s += fmt.Sprintf(", %d sequences stacked", B)
		} else {
			s += fmt.Sprintf(", %d sequences in 000/..%03d/", B, B-1)
		}
	}
	return s, nil
}

// stripInput is the input sequence shown in a strip: the frames as read,
// or the first input's array as frames.
func stripInput(m *model.Model, f runFlags, in *inputSet) (*tensor.Tensor, error) {
	first := m.Inputs()[0].Name
	if in.pics != nil && in.pics.name == first {
		return in.pics.frames, nil
	}
	x := in.ts[first]
	if x == nil {
		return nil, fmt.Errorf("--strip shows the input %q beside the prediction, and it was not given", first)
	}
	y, err := asFrames(m, x, f.timeFirst, nil, fmt.Sprintf("--strip: input %q (from %s)", first, in.from[first]))
	if err != nil {
		return nil, err
	}
	if c := channelsOf(y); c != 1 && c != 3 {
		return nil, fmt.Errorf("--strip: input %q %s has %d channels; a strip shows grey or RGB frames (1 or 3 channels)", first, tensor.ShapeString(x.Shape), c)
	}
	return y, nil
}
