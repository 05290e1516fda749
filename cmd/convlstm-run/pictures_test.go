package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/frames"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

const (
	rgbModel = "../../fixtures/forward/single-cell/weights.pt" // 3 channels in, 4 out
	demoONNX = "demo/moving-mnist.onnx"
)

// rampModel writes a one-layer ConvLSTM state_dict (.npz) with 1 input
// channel and `hidden` output channels whose output spans a visible range
// of grey levels: 1×1 kernel, input and output gates open, forget gate
// shut, candidate g_k = tanh(a_k·x + b_k), so h_k ≈ tanh(g_k). (The
// fixtures' models answer pictures with values near 0: all black.)
func rampModel(t *testing.T, dir string, hidden int) string {
	t.Helper()
	a, b := []float32{4, -4, 6}, []float32{-1, 3, -3}
	w := tensor.New(4*hidden, 1+hidden, 1, 1)
	bias := tensor.New(4 * hidden)
	for j := 0; j < hidden; j++ {
		bias.Data[0*hidden+j] = 10  // i
		bias.Data[1*hidden+j] = -10 // f
		bias.Data[2*hidden+j] = 10  // o
		w.Data[(3*hidden+j)*(1+hidden)] = a[j]
		bias.Data[3*hidden+j] = b[j]
	}
	path := filepath.Join(dir, fmt.Sprintf("ramp%d.npz", hidden))
	if err := loader.WriteNPZ(path, []string{"cell_list.0.conv.weight", "cell_list.0.conv.bias"},
		map[string]*tensor.Tensor{"cell_list.0.conv.weight": w, "cell_list.0.conv.bias": bias}); err != nil {
		t.Fatal(err)
	}
	return path
}

// pattern returns deterministic frames (B, T, C, H, W) on the 8-bit grid,
// values k/255, so that writing them as pictures loses nothing.
func pattern(B, T, C, H, W int) *tensor.Tensor {
	x := tensor.New(B, T, C, H, W)
	for i := range x.Data {
		x.Data[i] = float32((i*37+i/7*11)%256) / 255
	}
	return x
}

// to8 is the mapping the picture writers promise: v/pixelMax·255, rounded
// to nearest and clipped.
func to8(v float32, pixelMax float64) uint8 {
	f := float64(v) / pixelMax * 255
	switch {
	case !(f > 0):
		return 0
	case f >= 255:
		return 255
	}
	return uint8(math.Round(f))
}

// readPictures reads pictures back as 8-bit values (B, T, C, H, W).
func readPictures(t *testing.T, path string) ([]uint8, []int) {
	t.Helper()
	x, _, err := frames.Read(path, frames.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]uint8, len(x.Data))
	for i, v := range x.Data {
		out[i] = uint8(math.Round(float64(v) * 255))
	}
	return out, x.Shape
}

// writeFrames writes x as pictures at path (a folder/ or a .gif).
func writeFrames(t *testing.T, path string, x *tensor.Tensor) string {
	t.Helper()
	if err := frames.Write(path, x, frames.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func readNPZ(t *testing.T, path string) map[string]*tensor.Tensor {
	t.Helper()
	ts, _, err := loader.ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	text, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("convlstm-run %s: %v", strings.Join(args, " "), err)
	}
	return text
}

// checkPictures compares pictures read back from path with y (B, T, C, H,
// W) mapped through pixelMax.
func checkPictures(t *testing.T, label, path string, y *tensor.Tensor, pixelMax float64) {
	t.Helper()
	got, shape := readPictures(t, path)
	if !slices.Equal(shape, y.Shape) {
		t.Fatalf("%s: pictures %v, want %v", label, shape, y.Shape)
	}
	for i, v := range y.Data {
		if want := to8(v, pixelMax); got[i] != want {
			t.Fatalf("%s: value %d (of %v) is %d, want %d (model value %v)", label, i, shape, got[i], want, v)
		}
	}
}

// Frames in a folder of PNGs or in a GIF reach a native model exactly as
// frames.Read gives them, and its output comes back as pictures mapped
// through --pixel-max.
func TestPicturesInOut(t *testing.T) {
	dir := t.TempDir()
	ramp := rampModel(t, dir, 1)
	p := func(n string) string { return filepath.Join(dir, n) }
	x := pattern(1, 4, 1, 16, 16)
	seq := writeFrames(t, p("seq")+"/", x)
	anim := writeFrames(t, p("seq.gif"), x)
	if err := loader.WriteNPY(p("x.npy"), x); err != nil {
		t.Fatal(err)
	}

	text := mustRun(t, "run", "--weights", ramp, "--input", seq, "--output", p("png.npz"))
	if !strings.Contains(text, "(frames: 1 sequence of 4 grey 16×16) (1, 4, 1, 16, 16)") {
		t.Errorf("summary does not describe the frames:\n%s", text)
	}
	mustRun(t, "run", "--weights", ramp, "--input", p("x.npy"), "--output", p("npy.npz"))
	mustRun(t, "run", "--weights", ramp, "--input", anim, "--output", p("gif.npz"))
	want := readNPZ(t, p("npy.npz"))
	for _, got := range []string{"png.npz", "gif.npz"} {
		res := readNPZ(t, p(got))
		for k, w := range want {
			if !slices.Equal(res[k].Data, w.Data) {
				t.Errorf("%s: %s differs from the run on the same values as .npy", got, k)
			}
		}
	}

	// Out as a GIF and as PNGs, at two pixel maxima.
	y := want["output"]
	for _, pm := range []string{"1", "0.5"} {
		out := mustRun(t, "run", "--weights", ramp, "--input", seq, "--pixel-max", pm, "--output", p("y"+pm+".gif"))
		if !strings.Contains(out, "wrote:  "+p("y"+pm+".gif")+" (output; 4 frames of 16×16)") {
			t.Errorf("summary:\n%s", out)
		}
		mustRun(t, "run", "--weights", ramp, "--input", seq, "--pixel-max", pm, "--output", p("y"+pm)+"/")
		ypm := y
		if pm == "0.5" { // the input is halved too: run on that
			half := x.Clone()
			for i := range half.Data {
				half.Data[i] /= 2
			}
			loader.WriteNPY(p("half.npy"), half)
			mustRun(t, "run", "--weights", ramp, "--input", p("half.npy"), "--output", p("half.npz"))
			ypm = readNPZ(t, p("half.npz"))["output"]
		}
		checkPictures(t, "GIF pixel-max "+pm, p("y"+pm+".gif"), ypm, map[string]float64{"1": 1, "0.5": 0.5}[pm])
		checkPictures(t, "PNGs pixel-max "+pm, p("y"+pm), ypm, map[string]float64{"1": 1, "0.5": 0.5}[pm])
	}
	names, _ := filepath.Glob(p("y1/*"))
	if len(names) != 4 || filepath.Base(names[0]) != "000.png" || filepath.Base(names[3]) != "003.png" {
		t.Errorf("PNG folder holds %v, want 000.png..003.png", names)
	}

	// --time-first: frames are still read in order; the model sees (T, B, ...).
	mustRun(t, "run", "--weights", ramp, "--input", seq, "--time-first", "--output", p("tf.gif"))
	checkPictures(t, "time-first", p("tf.gif"), y, 1) // B = 1: the same sequence
}

// A folder of sequence folders is a batch: stacked in one GIF, a subfolder
// each in a PNG folder, read with a progress bar.
func TestPicturesBatch(t *testing.T) {
	dir := t.TempDir()
	ramp := rampModel(t, dir, 1)
	p := func(n string) string { return filepath.Join(dir, n) }
	x := pattern(2, 3, 1, 16, 16)
	batch := writeFrames(t, p("batch")+"/", x) // 000/, 001/
	loader.WriteNPY(p("x.npy"), x)

	var calls [][2]int
	finished := 0
	defer func(f func(string) progressBar) { newProgress = f }(newProgress)
	newProgress = func(string) progressBar { return &recorder{&calls, &finished} }

	mustRun(t, "run", "--weights", ramp, "--input", p("x.npy"), "--output", p("want.npz"))
	y := readNPZ(t, p("want.npz"))["output"]
	if len(calls) != 0 {
		t.Errorf("a progress bar for a .npy input: %v", calls)
	}
	text := mustRun(t, "run", "--weights", ramp, "--input", batch, "--output", p("out.gif"))
	if !strings.Contains(text, "2 sequences stacked") {
		t.Errorf("summary:\n%s", text)
	}
	if len(calls) == 0 || calls[len(calls)-1] != [2]int{6, 6} || finished != 1 {
		t.Errorf("progress calls %v, finished %d: want up to (6, 6) and one Finish", calls, finished)
	}
	// The GIF: one frame per step, the two sequences stacked Gap rows apart.
	got, shape := readPictures(t, p("out.gif"))
	H := 16
	if !slices.Equal(shape, []int{1, 3, 1, 2*H + frames.Gap, 16}) {
		t.Fatalf("GIF of a batch of 2: %v", shape)
	}
	for b := 0; b < 2; b++ {
		for s := 0; s < 3; s++ {
			for i := 0; i < H*16; i++ {
				g := got[s*shape[3]*16+(b*(H+frames.Gap))*16+i]
				if w := to8(y.Data[(b*3+s)*H*16+i], 1); g != w {
					t.Fatalf("sequence %d step %d pixel %d: %d, want %d", b, s, i, g, w)
				}
			}
		}
	}
	calls = nil
	mustRun(t, "run", "--weights", ramp, "--input", batch, "--output", p("out")+"/")
	checkPictures(t, "batch PNGs", p("out"), y, 1)
	if _, err := os.Stat(p("out/001/002.png")); err != nil {
		t.Errorf("batch PNGs: %v", err)
	}
	calls = nil
	mustRun(t, "run", "--weights", ramp, "--input", p("batch/001"), "--output", p("one.npz"))
	if len(calls) != 0 {
		t.Errorf("a progress bar for one sequence: %v", calls)
	}
}

type recorder struct {
	calls    *[][2]int
	finished *int
}

func (r *recorder) Update(done, total int) { *r.calls = append(*r.calls, [2]int{done, total}) }
func (r *recorder) Finish()                { *r.finished++ }

// --strip: input | prediction (| truth) in each frame, aligned by default;
// --strip future (both spellings) plays the input, then the prediction
// beside the truth.
func TestPicturesStrip(t *testing.T) {
	dir := t.TempDir()
	ramp := rampModel(t, dir, 1)
	p := func(n string) string { return filepath.Join(dir, n) }
	const T, S = 3, 16
	x := pattern(1, T, 1, S, S)
	seq := writeFrames(t, p("seq")+"/", x)
	truthX := pattern(1, T, 1, S, S)
	for i := range truthX.Data {
		truthX.Data[i] = 1 - truthX.Data[i]
	}
	truth := writeFrames(t, p("truth")+"/", truthX)
	loader.WriteNPY(p("x.npy"), x)
	mustRun(t, "run", "--weights", ramp, "--input", p("x.npy"), "--output", p("want.npz"))
	y := readNPZ(t, p("want.npz"))["output"]

	text := mustRun(t, "run", "--weights", ramp, "--input", seq, "--output", p("a.gif"), "--strip", "--truth", truth)
	if !strings.Contains(text, "strip: input | output | truth; 3 frames of 52×16") {
		t.Errorf("summary:\n%s", text)
	}
	got, shape := readPictures(t, p("a.gif"))
	W := 3*S + 2*frames.Gap
	if !slices.Equal(shape, []int{1, T, 1, S, W}) {
		t.Fatalf("aligned strip with truth: %v, want (1, %d, 1, %d, %d)", shape, T, S, W)
	}
	at := func(s, y, x int) uint8 { return got[(s*S+y)*W+x] }
	for s := 0; s < T; s++ {
		for yy := 0; yy < S; yy++ {
			for xx := 0; xx < S; xx++ {
				i := (s*S+yy)*S + xx
				panels := []uint8{to8(x.Data[i], 1), to8(y.Data[i], 1), to8(truthX.Data[i], 1)}
				for k, w := range panels {
					if g := at(s, yy, k*(S+frames.Gap)+xx); g != w {
						t.Fatalf("step %d panel %d (%d, %d): %d, want %d", s, k, xx, yy, g, w)
					}
				}
			}
		}
	}

	for _, args := range [][]string{{"--strip", "future"}, {"--strip=future"}} {
		out := p("f.gif")
		os.Remove(out)
		text := mustRun(t, append([]string{"run", "--weights", ramp, "--input", seq, "--output", out, "--truth", truth}, args...)...)
		if !strings.Contains(text, "strip: input, then output | truth; 6 frames of 34×16") {
			t.Errorf("%v: summary:\n%s", args, text)
		}
		_, shape := readPictures(t, out)
		if !slices.Equal(shape, []int{1, 2 * T, 1, S, 2*S + frames.Gap}) {
			t.Errorf("%v: future strip %v", args, shape)
		}
	}
	// Without truth, aligned: input | prediction.
	mustRun(t, "run", "--weights", ramp, "--input", seq, "--output", p("n.gif"), "--strip")
	if _, shape := readPictures(t, p("n.gif")); !slices.Equal(shape, []int{1, T, 1, S, 2*S + frames.Gap}) {
		t.Errorf("strip without truth: %v", shape)
	}
	// A truth of another length beside an aligned strip is refused by name.
	short := writeFrames(t, p("short")+"/", pattern(1, 2, 1, S, S))
	_, err := runCLI(t, "run", "--weights", ramp, "--input", seq, "--output", p("bad.gif"), "--strip", "--truth", short)
	if err == nil || !strings.Contains(err.Error(), "truth has 2 steps") {
		t.Errorf("truth of 2 steps beside 3: %v", err)
	}
	if _, serr := os.Stat(p("bad.gif")); serr == nil {
		t.Error("bad.gif left behind")
	}
}

// --channel picks one channel of an output with neither 1 nor 3; colour
// frames go to a 3-channel model, grey frames are widened for it, colour
// frames are made grey for a 1-channel one.
func TestPicturesChannels(t *testing.T) {
	dir := t.TempDir()
	ramp := rampModel(t, dir, 1)
	p := func(n string) string { return filepath.Join(dir, n) }

	// The bundled example: 1 channel in, 8 out.
	_, err := runCLI(t, "run", "--output", p("ex.gif"))
	if err == nil || !strings.Contains(err.Error(), "8 channels") || !strings.Contains(err.Error(), "--channel K (0..7)") {
		t.Errorf("8 channels to a GIF: %v", err)
	}
	_, err = runCLI(t, "run", "--output", p("ex.gif"), "--channel", "8")
	if err == nil || !strings.Contains(err.Error(), "--channel 8") || !strings.Contains(err.Error(), "0..7") {
		t.Errorf("--channel 8 of 8: %v", err)
	}
	if _, serr := os.Stat(p("ex.gif")); serr == nil {
		t.Error("ex.gif left behind after a failed run")
	}
	mustRun(t, "run", "--output", p("ex.npz"))
	y := readNPZ(t, p("ex.npz"))["output"]
	text := mustRun(t, "run", "--output", p("ex3")+"/", "--channel", "3")
	if !strings.Contains(text, "(output channel 3; 10 frames of 32×32)") {
		t.Errorf("summary:\n%s", text)
	}
	y3, err := frames.SelectChannel(y, 3)
	if err != nil {
		t.Fatal(err)
	}
	checkPictures(t, "channel 3", p("ex3"), y3, 1)

	// Three output channels are written as RGB (exact in PNGs).
	ramp3 := rampModel(t, dir, 3)
	g3 := pattern(1, 2, 1, 8, 8)
	loader.WriteNPY(p("g3.npy"), g3)
	mustRun(t, "run", "--weights", ramp3, "--input", p("g3.npy"), "--output", p("r3.npz"))
	mustRun(t, "run", "--weights", ramp3, "--input", writeFrames(t, p("g3")+"/", g3), "--output", p("r3")+"/")
	checkPictures(t, "RGB output", p("r3"), readNPZ(t, p("r3.npz"))["output"], 1)

	// RGB frames for a 3-channel model, as if given as .npy.
	rgb := pattern(1, 3, 3, 6, 6)
	seq := writeFrames(t, p("rgb")+"/", rgb)
	loader.WriteNPY(p("rgb.npy"), rgb)
	mustRun(t, "run", "--weights", rgbModel, "--input", seq, "--output", p("rgb-png.npz"))
	mustRun(t, "run", "--weights", rgbModel, "--input", p("rgb.npy"), "--output", p("rgb-npy.npz"))
	if a, b := readNPZ(t, p("rgb-png.npz"))["output"], readNPZ(t, p("rgb-npy.npz"))["output"]; !slices.Equal(a.Data, b.Data) {
		t.Error("RGB frames and the same values as .npy give different outputs")
	}
	// A strip of RGB input beside one grey output channel.
	mustRun(t, "run", "--weights", rgbModel, "--input", seq, "--output", p("rgb-strip")+"/", "--channel", "1", "--strip")
	if _, shape := readPictures(t, p("rgb-strip")); !slices.Equal(shape, []int{1, 3, 3, 6, 12 + frames.Gap}) {
		t.Errorf("RGB | grey strip: %v", shape)
	}

	// Grey frames to the 3-channel model are replicated.
	grey := pattern(1, 3, 1, 6, 6)
	gseq := writeFrames(t, p("grey")+"/", grey)
	wide := tensor.New(1, 3, 3, 6, 6)
	for s := 0; s < 3; s++ {
		for c := 0; c < 3; c++ {
			copy(wide.Data[(s*3+c)*36:][:36], grey.Data[s*36:][:36])
		}
	}
	loader.WriteNPY(p("wide.npy"), wide)
	mustRun(t, "run", "--weights", rgbModel, "--input", gseq, "--output", p("g.npz"))
	mustRun(t, "run", "--weights", rgbModel, "--input", p("wide.npy"), "--output", p("w.npz"))
	if a, b := readNPZ(t, p("g.npz"))["output"], readNPZ(t, p("w.npz"))["output"]; !slices.Equal(a.Data, b.Data) {
		t.Error("grey frames for a 3-channel model are not the replicated grey")
	}

	// RGB frames to a 1-channel model become BT.601 luma (frames.Read's).
	lseq := writeFrames(t, p("rgb16")+"/", pattern(1, 2, 3, 16, 16))
	luma, _, err := frames.Read(lseq, frames.ReadOptions{Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	loader.WriteNPY(p("luma.npy"), luma)
	mustRun(t, "run", "--weights", ramp, "--input", lseq, "--output", p("l1.npz"))
	mustRun(t, "run", "--weights", ramp, "--input", p("luma.npy"), "--output", p("l2.npz"))
	if a, b := readNPZ(t, p("l1.npz"))["output"], readNPZ(t, p("l2.npz"))["output"]; !slices.Equal(a.Data, b.Data) {
		t.Error("RGB frames for a 1-channel model are not their luma")
	}
}

// 16-bit and paletted PNGs are read at their precision (v/65535, the
// palette's colours); the model sees exactly those values.
func TestPictures16BitAndPaletted(t *testing.T) {
	dir := t.TempDir()
	ramp := rampModel(t, dir, 1)
	p := func(n string) string { return filepath.Join(dir, n) }
	const T, S = 2, 16
	want16 := tensor.New(1, T, 1, S, S)
	wantPal := tensor.New(1, T, 1, S, S)
	pal := color.Palette{color.Gray{0}, color.Gray{60}, color.Gray{200}, color.Gray{255}}
	os.Mkdir(p("g16"), 0o755)
	os.Mkdir(p("pal"), 0o755)
	for s := 0; s < T; s++ {
		g16 := image.NewGray16(image.Rect(0, 0, S, S))
		pm := image.NewPaletted(image.Rect(0, 0, S, S), pal)
		for i := 0; i < S*S; i++ {
			v := uint16((i*2311 + s*977) % 65536)
			g16.Pix[2*i], g16.Pix[2*i+1] = uint8(v>>8), uint8(v)
			want16.Data[s*S*S+i] = float32(float64(v) * (1.0 / 65535))
			k := uint8((i + s) % 4)
			pm.Pix[i] = k
			wantPal.Data[s*S*S+i] = float32(float64(uint16(pal[k].(color.Gray).Y)*257) * (1.0 / 65535))
		}
		for name, m := range map[string]image.Image{"g16": g16, "pal": pm} {
			var buf bytes.Buffer
			if err := png.Encode(&buf, m); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(p(name), []string{"a.png", "b.png"}[s]), buf.Bytes(), 0o644)
		}
	}
	for name, want := range map[string]*tensor.Tensor{"g16": want16, "pal": wantPal} {
		loader.WriteNPY(p(name+".npy"), want)
		mustRun(t, "run", "--weights", ramp, "--input", p(name), "--output", p(name+"-png.npz"))
		mustRun(t, "run", "--weights", ramp, "--input", p(name+".npy"), "--output", p(name+"-npy.npz"))
		a, b := readNPZ(t, p(name+"-png.npz"))["output"], readNPZ(t, p(name+"-npy.npz"))["output"]
		worst := 0.0
		for i := range a.Data {
			worst = math.Max(worst, math.Abs(float64(a.Data[i]-b.Data[i])))
		}
		// The reader scales the 16-bit value by pixelMax/65535 in float64
		// before rounding to float32, as the test does: the inputs, hence
		// the outputs, are identical.
		if worst != 0 {
			t.Errorf("%s: output differs from the run on the exact values by %g", name, worst)
		}
	}
}

// Bad pictures and misplaced picture flags are errors that name the file,
// flag or count at fault, and leave no output behind.
func TestPicturesErrors(t *testing.T) {
	dir := t.TempDir()
	ramp := rampModel(t, dir, 1)
	p := func(n string) string { return filepath.Join(dir, n) }
	writeFrames(t, p("mixed")+"/", pattern(1, 2, 1, 16, 16))
	writeFrames(t, p("small")+"/", pattern(1, 1, 1, 8, 8))
	os.Rename(p("small/000.png"), p("mixed/002.png"))
	good := writeFrames(t, p("good")+"/", pattern(1, 2, 1, 16, 16))
	writeFrames(t, p("trunc")+"/", pattern(1, 2, 1, 16, 16))
	data, _ := os.ReadFile(p("trunc/001.png"))
	os.WriteFile(p("trunc/001.png"), data[:len(data)/2], 0o644)
	writeFrames(t, p("notes")+"/", pattern(1, 2, 1, 16, 16))
	os.WriteFile(p("notes/notes.txt"), []byte("frames of a ramp ball"), 0o644)
	os.Mkdir(p("empty"), 0o755)
	os.WriteFile(p("x.npy"), nil, 0o644)
	writeFrames(t, p("busy")+"/", pattern(1, 1, 1, 4, 4))
	os.Rename(p("busy/000.png"), p("busy/keep.png"))
	enc1 := "../../fixtures/real/moving-mnist-encdec.pt"
	nhwc := "../../fixtures/models/openstl-nhwc-op17-static/model.onnx"

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"mixed sizes", []string{"--weights", ramp, "--input", p("mixed"), "--output", p("o.gif")}, []string{"002.png", "8×8", "000.png", "16×16"}},
		{"truncated PNG", []string{"--weights", ramp, "--input", p("trunc"), "--output", p("o.gif")}, []string{"trunc/001.png"}},
		{"not a frame", []string{"--weights", ramp, "--input", p("notes"), "--output", p("o.gif")}, []string{"notes.txt"}},
		{"empty folder", []string{"--weights", ramp, "--input", p("empty"), "--output", p("o.gif")}, []string{"empty", "empty folder"}},
		{"32-channel model", []string{"--weights", enc1, "--prefix", "enc1", "--input", good, "--output", p("o.npz")}, []string{"32 input channels", "1 (grey) or 3 (RGB)"}},
		{"graph wants 2 channels", []string{"--weights", nhwc, "--input", good, "--output", p("o.npz")}, []string{good, "frames", "(1, 3, 12, 12, 2)"}},
		{"frames for a state", []string{"--weights", ramp, "--input", "h_0=" + good, "--output", p("o.npz")}, []string{"h_0", "state"}},
		{"two picture inputs", []string{"--weights", ramp, "--input", good, "--input", "input=" + good, "--output", p("o.npz")}, []string{"already given"}},
		{"pixel-max without pictures", []string{"--weights", ramp, "--input", "../../fixtures/forward/real-ramp/input.npy", "--pixel-max", "255", "--output", p("o.npz")}, []string{"--pixel-max", "pictures"}},
		{"pixel-max zero", []string{"--weights", ramp, "--input", good, "--pixel-max", "0", "--output", p("o.gif")}, []string{"--pixel-max 0", "positive"}},
		{"channel without pictures", []string{"--channel", "1", "--output", p("o.npz")}, []string{"--channel", "--output X.gif"}},
		{"strip without pictures", []string{"--weights", ramp, "--input", good, "--strip", "--output", p("o.npz")}, []string{"--strip", "--output X.gif"}},
		{"truth without strip", []string{"--weights", ramp, "--input", good, "--truth", good, "--output", p("o.gif")}, []string{"--truth", "--strip"}},
		{"strip sideways", []string{"--weights", ramp, "--input", good, "--strip=sideways", "--output", p("o.gif")}, []string{"sideways", "aligned", "future"}},
		{"png output", []string{"--weights", ramp, "--input", good, "--output", p("o.png")}, []string{"o.png", "NAME.gif", "NAME/"}},
		{"stray argument", []string{"--weights", ramp, "--input", good, "sideways", "--output", p("o.gif")}, []string{`"sideways"`}},
		{"truth unreadable", []string{"--weights", ramp, "--input", good, "--strip", "--truth", p("trunc"), "--output", p("o.gif")}, []string{"--truth", "trunc/001.png"}},
		{"output folder in use", []string{"--weights", ramp, "--input", good, "--output", p("busy") + "/"}, []string{"busy", "keep.png"}},
		{"output folder cannot be made", []string{"--weights", ramp, "--input", good, "--output", p("x.npy") + "/sub/"}, []string{"x.npy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCLI(t, append([]string{"run"}, tc.args...)...)
			if err == nil {
				t.Fatalf("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, left := range []string{"o.gif", "o.npz", "o.png", "busy/000.png"} {
				if _, serr := os.Stat(p(left)); serr == nil {
					t.Errorf("%s left behind", left)
				}
			}
			if m, _ := filepath.Glob(p("*.tmp*")); len(m) > 0 {
				t.Errorf("temporary files left behind: %v", m)
			}
		})
	}
	if names, _ := filepath.Glob(p("busy/*")); len(names) != 1 {
		t.Errorf("the busy folder now holds %v", names)
	}
}

// tinyGraph writes a one-node ONNX graph y = op(x, k) with the given input
// and output dims (-1: dynamic) and float initializers by name.
func tinyGraph(t *testing.T, path string, in, out []int64, nodes []*onnxpb.NodeProto, inits ...*onnxpb.TensorProto) {
	t.Helper()
	vi := func(name string, dims []int64) *onnxpb.ValueInfoProto {
		var ds []*onnxpb.TensorShapeProto_Dimension
		for i, d := range dims {
			if d < 0 {
				ds = append(ds, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: []string{"b", "t", "h", "w", "c"}[i]}})
			} else {
				ds = append(ds, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
			}
		}
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(1), Shape: &onnxpb.TensorShapeProto{Dim: ds}}}}}
	}
	mp := &onnxpb.ModelProto{IrVersion: proto.Int64(8), OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("g"), Node: nodes, Initializer: inits,
			Input: []*onnxpb.ValueInfoProto{vi("x", in)}, Output: []*onnxpb.ValueInfoProto{vi("y", out)}}}
	data, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A graph's input decides the layout: channels-last RGB (B, T, H, W, 3)
// frames go in and come back as pictures; a rank-4 graph that returns one
// step fewer makes a strip play the input, then the prediction.
func TestPicturesGraphLayouts(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	one := &onnxpb.TensorProto{Name: proto.String("one"), DataType: proto.Int32(1), FloatData: []float32{1}}
	// y = 1 - x on channels-last frames.
	tinyGraph(t, p("nhwc.onnx"), []int64{-1, -1, -1, -1, 3}, []int64{-1, -1, -1, -1, 3},
		[]*onnxpb.NodeProto{{OpType: proto.String("Sub"), Name: proto.String("invert"), Input: []string{"one", "x"}, Output: []string{"y"}}}, one)
	rgb := pattern(1, 2, 3, 8, 8)
	seq := writeFrames(t, p("rgb")+"/", rgb)
	text := mustRun(t, "run", "--weights", p("nhwc.onnx"), "--input", seq, "--output", p("inv")+"/")
	if !strings.Contains(text, "input:  x float32 (1, 2, 8, 8, 3)") {
		t.Errorf("channels-last input not laid out (B, T, H, W, C):\n%s", text)
	}
	inv := rgb.Clone()
	for i := range inv.Data {
		inv.Data[i] = 1 - inv.Data[i]
	}
	checkPictures(t, "channels-last", p("inv"), inv, 1)
	// A graph's output channels are checked once it has run.
	_, err := runCLI(t, "run", "--weights", p("nhwc.onnx"), "--input", seq, "--output", p("inv.gif"), "--channel", "3")
	if err == nil || !strings.Contains(err.Error(), "--channel 3") || !strings.Contains(err.Error(), "0..2") {
		t.Errorf("--channel 3 of 3: %v", err)
	}
	mustRun(t, "run", "--weights", p("nhwc.onnx"), "--input", seq, "--output", p("inv2")+"/", "--channel", "2")
	inv2, err := frames.SelectChannel(inv, 2)
	if err != nil {
		t.Fatal(err)
	}
	checkPictures(t, "channels-last, channel 2", p("inv2"), inv2, 1)

	// y = x[:, 1:] on (B, T, H, W): T-1 steps.
	i64 := func(name string, v int64) *onnxpb.TensorProto {
		return &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(7), Dims: []int64{1}, Int64Data: []int64{v}}
	}
	tinyGraph(t, p("next.onnx"), []int64{-1, -1, 8, 8}, []int64{-1, -1, 8, 8},
		[]*onnxpb.NodeProto{{OpType: proto.String("Slice"), Name: proto.String("drop_first"), Input: []string{"x", "start", "end", "axis"}, Output: []string{"y"}}},
		i64("start", 1), i64("end", 1<<40), i64("axis", 1))
	grey := pattern(1, 3, 1, 8, 8)
	gseq := writeFrames(t, p("grey")+"/", grey)
	text = mustRun(t, "run", "--weights", p("next.onnx"), "--input", gseq, "--output", p("next.gif"), "--strip")
	if !strings.Contains(text, "input:  x float32 (1, 3, 8, 8)") || !strings.Contains(text, "strip: input, then y; 5 frames of 8×8") {
		t.Errorf("summary:\n%s", text)
	}
	got, shape := readPictures(t, p("next.gif"))
	if !slices.Equal(shape, []int{1, 5, 1, 8, 8}) {
		t.Fatalf("future strip of 3 in, 2 out: %v", shape)
	}
	// Frames 0-2 the input, 3-4 the prediction (input steps 1-2).
	for f := 0; f < 5; f++ {
		src := f
		if f >= 3 {
			src = f - 2
		}
		for i := 0; i < 64; i++ {
			if w := to8(grey.Data[src*64+i], 1); got[f*64+i] != w {
				t.Fatalf("strip frame %d pixel %d: %d, want %d", f, i, got[f*64+i], w)
			}
		}
	}
	// A graph fed .npy still writes pictures (layout from the output's dims).
	loader.WriteNPY(p("g.npy"), tensor.FromFloats(grey.Data, 1, 3, 8, 8))
	mustRun(t, "run", "--weights", p("next.onnx"), "--input", p("g.npy"), "--output", p("npy")+"/")
	if _, shape := readPictures(t, p("npy")); !slices.Equal(shape, []int{1, 2, 1, 8, 8}) {
		t.Errorf("graph output from .npy input: %v", shape)
	}
}

// The real model on frames written as PNGs gives PyTorch's prediction on
// the same frames within one grey level, through the command line.
func TestPicturesRealModel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real model")
	}
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	// demo --frames writes sequence 0 of seed 1, the one PyTorch predicted
	// in demo/testdata/pytorch-prediction.npz (scripts/moving_mnist_check.py).
	mustRun(t, "demo", "--sequences", "1", "--seed", "1", "--output", "", "--frames", p("mm"))
	want := readNPZ(t, "../../demo/testdata/pytorch-prediction.npz")["prediction"]
	mustRun(t, "run", "--weights", demoONNX, "--pixel-max", "255", "--input", p("mm/input"), "--output", p("pred.npz"))
	got := readNPZ(t, p("pred.npz"))["prediction"]
	if !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("prediction %v, PyTorch %v", got.Shape, want.Shape)
	}
	worst := 0.0
	for i, v := range got.Data {
		worst = math.Max(worst, math.Abs(float64(v-want.Data[i])))
	}
	t.Logf("max |CLI - PyTorch| = %.4f grey levels", worst)
	if worst > 1 {
		t.Fatalf("the prediction is %.3f grey levels from PyTorch's", worst)
	}
	// As pictures: within a grey level after rounding too.
	mustRun(t, "run", "--weights", demoONNX, "--pixel-max", "255", "--input", p("mm/input"), "--output", p("pred")+"/")
	pics, _ := readPictures(t, p("pred"))
	for i, v := range want.Data {
		if d := math.Abs(float64(pics[i]) - float64(v)); d > 1 {
			t.Fatalf("PNG value %d is %d, PyTorch %.3f", i, pics[i], v)
		}
	}
}

// GIFs the command writes are animations a browser plays: one frame per
// step, looping.
func TestPicturesGIFLoops(t *testing.T) {
	dir := t.TempDir()
	ramp := rampModel(t, dir, 1)
	seq := writeFrames(t, filepath.Join(dir, "seq")+"/", pattern(1, 3, 1, 16, 16))
	out := filepath.Join(dir, "o.gif")
	mustRun(t, "run", "--weights", ramp, "--input", seq, "--output", out)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := gif.DecodeAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Image) != 3 || g.LoopCount != 0 {
		t.Errorf("%d frames, loop count %d: want 3 frames looping forever (0)", len(g.Image), g.LoopCount)
	}
}
