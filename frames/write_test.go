package frames

import (
	"bytes"
	"errors"
	"image"
	"image/gif"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// randomPixels is a (B, T, C, H, W) tensor of whole values 0..255.
func randomPixels(seed uint64, shape ...int) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(seed, 9))
	x := tensor.New(shape...)
	for i := range x.Data {
		x.Data[i] = float32(rng.IntN(256))
	}
	return x
}

func listNames(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Written PNGs and grey GIFs read back exactly: at pixel max 255 the very
// values, at pixel max 1 values that write back to the same bytes.
func TestRoundTrips(t *testing.T) {
	for _, c := range []struct {
		name  string
		shape []int
		out   string
		names []string
	}{
		{"grey PNG", []int{1, 3, 1, 5, 7}, "pngs/", []string{"000.png", "001.png", "002.png"}},
		{"RGB PNG", []int{1, 2, 3, 4, 6}, "rgb", []string{"000.png", "001.png"}},
		{"batch PNG", []int{2, 2, 1, 3, 3}, "batch/", []string{"000", "000/000.png", "000/001.png", "001", "001/000.png", "001/001.png"}},
		{"grey GIF", []int{1, 4, 1, 6, 5}, "a.gif", nil},
		{"grey GIF, rank 4", []int{1, 4, 6, 5}, "b.gif", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			out := dir + "/" + c.out // Join would drop a trailing slash
			if c.name == "RGB PNG" {
				if err := os.Mkdir(out, 0o755); err != nil { // an existing empty folder
					t.Fatal(err)
				}
			}
			x := randomPixels(uint64(len(c.name)), c.shape...)
			if err := Write(out, x, WriteOptions{PixelMax: 255}); err != nil {
				t.Fatal(err)
			}
			if c.names != nil {
				if got := listNames(t, out); !reflect.DeepEqual(got, c.names) {
					t.Fatalf("wrote %q, want %q", got, c.names)
				}
			}
			back, _, err := Read(out, ReadOptions{PixelMax: 255})
			if err != nil {
				t.Fatal(err)
			}
			want := x
			if len(c.shape) == 4 {
				want = tensor.FromFloats(x.Data, c.shape[0], c.shape[1], 1, c.shape[2], c.shape[3])
			}
			if !tensor.SameShape(back.Shape, want.Shape) || !slices.Equal(back.Data, want.Data) {
				t.Fatalf("read back %v, want %v exactly", back.Shape, want.Shape)
			}
			// Pixel max 1: read back, write again, same bytes.
			unit, _, err := Read(out, ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range want.Data {
				if unit.Data[i] != float32(float64(v)/255) {
					t.Fatalf("pixel max 1: value %d is %v, want %d/255", i, unit.Data[i], int(v))
				}
			}
			again := t.TempDir() + "/" + c.out
			if !strings.HasSuffix(c.out, ".gif") {
				again += "/"
			}
			if err := Write(again, unit, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			back2, _, err := Read(again, ReadOptions{PixelMax: 255})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(back2.Data, want.Data) {
				t.Fatal("pixel max 1: writing the read values back changed them")
			}
		})
	}
}

// A 16-bit grey PNG whose values are 8-bit ones (v·257) writes back to
// those 8-bit values.
func TestRoundTrip16BitIn(t *testing.T) {
	m := image.NewGray16(image.Rect(0, 0, 16, 16))
	for i := 0; i < 256; i++ {
		m.Pix[2*i], m.Pix[2*i+1] = uint8(i), uint8(i) // i·257, big-endian
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "in", "0.png"), encodePNG(t, m))
	x, _, err := Read(filepath.Join(dir, "in"), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(dir+"/out/", x, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	y, _, err := Read(filepath.Join(dir, "out"), ReadOptions{PixelMax: 255})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range y.Data {
		if v != float32(i) {
			t.Fatalf("pixel %d: %v after the 16-bit → 8-bit round trip, want %d", i, v, i)
		}
	}
}

// Values are rounded to nearest and clipped; NaN is black.
func TestWriteMapping(t *testing.T) {
	vals := []float32{-3, 0, 0.4, 0.5, 1.49, 254.5, 255, 300, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	want := []uint8{0, 0, 0, 1, 1, 255, 255, 255, 0, 255, 0}
	for i, v := range vals {
		if got := to8(v, 1); got != want[i] {
			t.Errorf("%v → %d, want %d", v, got, want[i])
		}
	}
}

func TestWriteGIFDetails(t *testing.T) {
	x := randomPixels(7, 2, 3, 1, 4, 5) // B = 2: stacked
	var b bytes.Buffer
	if err := WriteGIF(&b, x, WriteOptions{PixelMax: 255, Delay: 40 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	g, err := gif.DecodeAll(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Image) != 3 || g.LoopCount != 0 || g.Delay[0] != 4 || g.Config.Width != 5 || g.Config.Height != 2*4+Gap {
		t.Fatalf("GIF: %d frames, loop %d, delay %v, %d×%d", len(g.Image), g.LoopCount, g.Delay, g.Config.Width, g.Config.Height)
	}
	m := g.Image[2]
	for y := 0; y < 4; y++ {
		for xx := 0; xx < 5; xx++ {
			top := x.Data[((0*3+2)*4+y)*5+xx]
			bottom := x.Data[((1*3+2)*4+y)*5+xx]
			if float32(m.Pix[y*m.Stride+xx]) != top || float32(m.Pix[(y+4+Gap)*m.Stride+xx]) != bottom {
				t.Fatalf("stacked frame 2 at (%d,%d) differs", xx, y)
			}
		}
	}
	if m.Pix[4*m.Stride] != 128 {
		t.Fatalf("separator %d, want 128", m.Pix[4*m.Stride])
	}

	// RGB: quantized (not exact) but close on average.
	rgb := randomPixels(8, 1, 2, 3, 8, 8)
	b.Reset()
	if err := WriteGIF(&b, rgb, WriteOptions{PixelMax: 255}); err != nil {
		t.Fatal(err)
	}
	back, _, err := Read(writeTemp(t, "c.gif", b.Bytes()), ReadOptions{PixelMax: 255})
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(back.Shape, rgb.Shape) {
		t.Fatalf("RGB GIF read back as %v", back.Shape)
	}
	sum := 0.0
	for i := range back.Data {
		sum += math.Abs(float64(back.Data[i] - rgb.Data[i]))
	}
	// Random colours dithered to a 256-colour palette: the mean error of a
	// channel stays well below the 128 of an unrelated picture.
	if mean := sum / float64(len(back.Data)); mean > 40 {
		t.Fatalf("RGB GIF: mean abs error %.1f levels", mean)
	}
}

func writeTemp(t *testing.T, name string, data []byte) string {
	p := filepath.Join(t.TempDir(), name)
	writeFile(t, p, data)
	return p
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	eight := randomPixels(1, 1, 2, 8, 3, 3)
	cases := []struct {
		name string
		path string
		y    *tensor.Tensor
		opt  WriteOptions
		want []string
	}{
		{"8 channels", "a.gif", eight, WriteOptions{}, []string{"a.gif", "8 channels", "choose one channel"}},
		{"channel out of range", "b.gif", eight, WriteOptions{UseChannel: true, Channel: 8}, []string{"channel 8", "with 8"}},
		{"rank 3", "c.gif", tensor.New(2, 3, 4), WriteOptions{}, []string{"(2, 3, 4)", "(B, T, C, H, W) or (B, T, H, W)"}},
		{"empty", "d.gif", tensor.New(1, 0, 1, 2, 2), WriteOptions{}, []string{"no frames"}},
		{"not an output", "e.png", eight, WriteOptions{}, []string{"e.png", "NAME.gif", "NAME/"}},
		{"missing folder", "no/such/f.gif", tensor.New(1, 1, 1, 2, 2), WriteOptions{}, []string{"f.gif", "no such file"}},
		{"bad delay", "g.gif", tensor.New(1, 1, 1, 2, 2), WriteOptions{Delay: -time.Second}, []string{"g.gif", "delay"}},
		{"short data", "h.gif", &tensor.Tensor{Shape: []int{1, 1, 1, 2, 2}, DType: tensor.Float32, Data: make([]float32, 3)}, WriteOptions{}, []string{"3 values for shape"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Write(filepath.Join(dir, c.path), c.y, c.opt)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if left := listNames(t, dir); len(left) != 0 {
		t.Fatalf("failed writes left %q", left)
	}

	// A folder with other files is refused before anything is written.
	out := filepath.Join(dir, "seq")
	writeFile(t, filepath.Join(out, "020.png"), []byte("from an earlier run"))
	err := Write(out+"/", tensor.New(1, 2, 1, 2, 2), WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "already holds 020.png") {
		t.Fatalf("stale folder: %v", err)
	}
	if got := listNames(t, out); !reflect.DeepEqual(got, []string{"020.png"}) {
		t.Fatalf("refused write changed the folder: %q", got)
	}

	// The one channel asked for is written as grey.
	if err := Write(filepath.Join(dir, "k.gif"), eight, WriteOptions{PixelMax: 255, UseChannel: true, Channel: 5}); err != nil {
		t.Fatal(err)
	}
	back, _, err := Read(filepath.Join(dir, "k.gif"), ReadOptions{PixelMax: 255})
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := SelectChannel(eight, 5)
	if !slices.Equal(back.Data, sel.Data) {
		t.Fatal("channel 5 written as grey does not read back as channel 5")
	}
}

// A write that fails half-way removes what it created.
func TestWritePNGsCleansUp(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	x := tensor.New(2, 2, 1, 2, 2)
	if err := os.MkdirAll(filepath.Join(out, "001"), 0o755); err != nil { // there before: kept
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(out, "001", "000.png"), []byte("old")) // replaced, so kept
	calls := 0
	defer func() { writeAtomic = loader.WriteAtomic }()
	writeAtomic = func(path string, fill func(io.Writer) error) error {
		if calls++; calls == 4 { // 000/000.png 000/001.png 001/000.png, then a full disk
			return errors.New("no space left on device")
		}
		return loader.WriteAtomic(path, fill)
	}
	err := WritePNGs(out, x, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "001.png: no space left") {
		t.Fatalf("injected failure: %v", err)
	}
	if got := listNames(t, out); !reflect.DeepEqual(got, []string{"001", "001/000.png"}) {
		t.Fatalf("failed write left %q, want only what was there before", got)
	}
}

func TestStrip(t *testing.T) {
	in := randomPixels(1, 1, 3, 1, 2, 2)
	pred := randomPixels(2, 1, 3, 2, 2)     // rank 4
	truth := randomPixels(3, 1, 3, 3, 2, 2) // RGB: everything widens

	s, err := Strip(in, pred, truth, StripOptions{PixelMax: 255})
	if err != nil {
		t.Fatal(err)
	}
	W := 3*2 + 2*Gap
	if !tensor.SameShape(s.Shape, []int{1, 3, 3, 2, W}) {
		t.Fatalf("aligned strip %v", s.Shape)
	}
	at := func(s *tensor.Tensor, t, c, y, x int) float32 {
		return s.Data[((t*s.Shape[2]+c)*s.Shape[3]+y)*s.Shape[4]+x]
	}
	// step 1, channel 2, row 1: input (grey, replicated) | sep | prediction | sep | truth
	if at(s, 1, 2, 1, 0) != in.Data[1*4+2] || at(s, 1, 2, 1, 2) != 127.5 || at(s, 1, 2, 1, 5) != pred.Data[1*4+3] || at(s, 1, 2, 1, 8) != truth.Data[(1*3+2)*4+2] {
		t.Fatal("aligned strip: panels misplaced")
	}

	// Future: 3 input steps then 3 predicted; truth given whole (6 steps).
	whole := randomPixels(4, 1, 6, 1, 2, 2)
	f, err := Strip(in, pred, whole, StripOptions{Future: true, PixelMax: 255})
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(f.Shape, []int{1, 6, 1, 2, 2*2 + Gap}) {
		t.Fatalf("future strip %v", f.Shape)
	}
	if at(f, 1, 0, 0, 1) != in.Data[4+1] || at(f, 1, 0, 0, 5) != in.Data[4+1] || at(f, 4, 0, 1, 0) != pred.Data[4+2] || at(f, 4, 0, 1, 4) != whole.Data[4*4+2] {
		t.Fatal("future strip: panels misplaced")
	}
	// Without truth: one panel, input then prediction.
	f, err = Strip(in, pred, nil, StripOptions{Future: true})
	if err != nil || !tensor.SameShape(f.Shape, []int{1, 6, 1, 2, 2}) || f.Data[5*4] != pred.Data[2*4] {
		t.Fatalf("future strip without truth: %v %v", f, err)
	}
	// Different lengths imply the future layout.
	short := randomPixels(5, 1, 2, 1, 2, 2)
	if f, err = Strip(in, short, nil, StripOptions{}); err != nil || f.Shape[1] != 5 {
		t.Fatalf("3 in, 2 out: %v %v", f, err)
	}
	if _, err := Strip(in, pred, short, StripOptions{Future: true}); err == nil || !strings.Contains(err.Error(), "truth has 2 steps") {
		t.Fatalf("bad truth length: %v", err)
	}
	if _, err := Strip(in, randomPixels(6, 2, 3, 1, 2, 2), nil, StripOptions{}); err == nil || !strings.Contains(err.Error(), "2 batch items") {
		t.Fatalf("batch mismatch: %v", err)
	}
}

func TestForGraph(t *testing.T) {
	x := randomPixels(1, 2, 3, 1, 4, 5)
	rgb := randomPixels(2, 2, 3, 3, 4, 5)
	cases := []struct {
		x      *tensor.Tensor
		dims   []int
		layout Layout
		shape  []int
		err    string
	}{
		{x, nil, BTCHW, []int{2, 3, 1, 4, 5}, ""},
		{x, []int{-1, -1, -1, -1}, BTHW, []int{2, 3, 4, 5}, ""},
		{x, []int{-1, 3, 4, 5}, BTHW, []int{2, 3, 4, 5}, ""},
		{x, []int{-1, -1, 1, -1, -1}, BTCHW, []int{2, 3, 1, 4, 5}, ""},
		{x, []int{-1, -1, -1, -1, 1}, BTHWC, []int{2, 3, 4, 5, 1}, ""},
		{x, []int{-1, -1, -1, -1, -1}, BTCHW, []int{2, 3, 1, 4, 5}, ""},
		{x, []int{-1, -1, 4, 5, 1}, BTHWC, []int{2, 3, 4, 5, 1}, ""},
		{rgb, []int{-1, -1, -1, -1, 3}, BTHWC, []int{2, 3, 4, 5, 3}, ""},
		{rgb, []int{1, -1, 3, -1, 3}, BTCHW, nil, "wants B = 1"},
		{rgb, []int{-1, 10, 3, 4, 5}, BTCHW, nil, "wants T = 10"},
		{rgb, []int{-1, -1, 1, -1, -1}, BTCHW, nil, "wants C = 1; the frames give 3 (frames (2, 3, 3, 4, 5)); convert the frames to 1 channel(s)"},
		{rgb, []int{-1, -1, -1, -1}, BTHW, nil, "one channel, but the frames have 3"},
		{x, []int{-1, -1, -1}, 0, nil, "rank 3"},
		{x, []int{}, 0, nil, "rank 0"},
	}
	for _, c := range cases {
		y, l, err := ForGraph(c.x, c.dims)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("dims %v: error %v, want %q", c.dims, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("dims %v: %v", c.dims, err)
			continue
		}
		if l != c.layout || !tensor.SameShape(y.Shape, c.shape) {
			t.Errorf("dims %v: %v %v, want %v %v", c.dims, l, y.Shape, c.layout, c.shape)
		}
		back, err := FromLayout(y, l)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(back.Data, c.x.Data) {
			t.Errorf("dims %v: FromLayout does not undo ForGraph", c.dims)
		}
	}
	// Channels last really moves channels last.
	y, _, _ := ForGraph(rgb, []int{-1, -1, -1, -1, 3})
	if y.Data[1*3+2] != rgb.Data[2*20+1] {
		t.Fatal("channels-last element (0,0,0,1,2) is not channel 2 of pixel 1")
	}
}
