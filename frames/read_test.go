package frames

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/tensor"
)

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomGray(rng *rand.Rand, w, h int) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(rng.IntN(256))
	}
	return m
}

func TestNaturalSort(t *testing.T) {
	got := []string{"10.png", "2.png", "frame_010.png", "frame_9.png", "1.png", "b", "a10", "a9", "a09", "x0001", "x1"}
	naturalSort(got)
	want := []string{"1.png", "2.png", "10.png", "a09", "a9", "a10", "b", "frame_9.png", "frame_010.png", "x0001", "x1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("natural order %q, want %q", got, want)
	}
}

// A folder of 8-bit grey PNGs, read at pixel max 1 and 255.
func TestReadGreyFolder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	var ims []*image.Gray
	// Names out of lexical order: 2 before 10.
	for _, k := range []int{0, 1, 2, 10} {
		m := randomGray(rng, 7, 5)
		ims = append(ims, m)
		writeFile(t, filepath.Join(dir, "f"+strconv.Itoa(k)+".png"), encodePNG(t, m))
	}
	writeFile(t, filepath.Join(dir, ".DS_Store"), []byte("junk that is skipped"))
	for _, pm := range []float64{1, 255} {
		x, src, err := Read(dir, ReadOptions{PixelMax: pm})
		if err != nil {
			t.Fatal(err)
		}
		if !tensor.SameShape(x.Shape, []int{1, 4, 1, 5, 7}) || !reflect.DeepEqual(src, []string{dir}) {
			t.Fatalf("shape %v sources %q", x.Shape, src)
		}
		for k, m := range ims {
			for i, v := range m.Pix {
				want := float32(float64(v) * 257 * pm / 65535)
				if got := x.Data[k*35+i]; got != want {
					t.Fatalf("pm %g frame %d pixel %d: %v, want %v", pm, k, i, got, want)
				}
				if pm == 255 && x.Data[k*35+i] != float32(v) {
					t.Fatalf("pm 255: %v, want the raw pixel %d", x.Data[k*35+i], v)
				}
			}
		}
	}
}

// 16-bit PNGs keep their precision (v/65535) and stay grey.
func TestRead16BitPNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	m := image.NewGray16(image.Rect(0, 0, 6, 4))
	for i := 0; i < 24; i++ {
		m.SetGray16(i%6, i/6, color.Gray16{uint16(rng.IntN(65536))})
	}
	writeFile(t, filepath.Join(dir, "a.png"), encodePNG(t, m))
	x, _, err := Read(dir, ReadOptions{PixelMax: 65535})
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(x.Shape, []int{1, 1, 1, 4, 6}) {
		t.Fatalf("shape %v", x.Shape)
	}
	for i := 0; i < 24; i++ {
		if want := float32(m.Gray16At(i%6, i/6).Y); x.Data[i] != want {
			t.Fatalf("pixel %d: %v, want %v", i, x.Data[i], want)
		}
	}
	// RGB 16-bit too.
	c := image.NewRGBA64(image.Rect(0, 0, 2, 1))
	c.SetRGBA64(0, 0, color.RGBA64{1, 2, 65535, 65535})
	c.SetRGBA64(1, 0, color.RGBA64{40000, 3, 4, 65535})
	file := filepath.Join(t.TempDir(), "c.png")
	writeFile(t, file, encodePNG(t, c))
	x, _, err = Read(file, ReadOptions{PixelMax: 65535})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, 40000, 2, 3, 65535, 4}; !tensor.SameShape(x.Shape, []int{1, 1, 3, 1, 2}) || !reflect.DeepEqual(x.Data, want) {
		t.Fatalf("16-bit RGB: %v %v, want %v", x.Shape, x.Data, want)
	}
}

// Channels: content decides; forcing converts (luma, replication); a batch
// that disagrees is widened to RGB.
func TestReadChannels(t *testing.T) {
	dir := t.TempDir()
	rgb := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	rgb.Set(0, 0, color.NRGBA{255, 0, 0, 255})
	rgb.Set(1, 0, color.NRGBA{0, 0, 255, 128}) // half transparent: over black
	greyAsRGB := image.NewRGBA(image.Rect(0, 0, 2, 1))
	greyAsRGB.Set(0, 0, color.RGBA{7, 7, 7, 255})
	greyAsRGB.Set(1, 0, color.RGBA{200, 200, 200, 255})
	writeFile(t, filepath.Join(dir, "colour", "0.png"), encodePNG(t, rgb))
	writeFile(t, filepath.Join(dir, "grey", "0.png"), encodePNG(t, greyAsRGB))

	x, _, err := Read(filepath.Join(dir, "grey"), ReadOptions{PixelMax: 255})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{7, 200}; x.Shape[2] != 1 || !reflect.DeepEqual(x.Data, want) {
		t.Fatalf("grey content in an RGB PNG: %v %v, want C=1 %v", x.Shape, x.Data, want)
	}

	x, src, err := Read(dir, ReadOptions{PixelMax: 255})
	if err != nil {
		t.Fatal(err)
	}
	blue := float32(float64(128*257) * 255 / 65535) // premultiplied 255·128/255
	if want := []float32{255, 0, 0, 0, 0, blue, 7, 200, 7, 200, 7, 200}; !tensor.SameShape(x.Shape, []int{2, 1, 3, 1, 2}) || !reflect.DeepEqual(x.Data, want) {
		t.Fatalf("mixed batch: %v %v, want %v", x.Shape, x.Data, want)
	}
	if !reflect.DeepEqual(src, []string{filepath.Join(dir, "colour"), filepath.Join(dir, "grey")}) {
		t.Fatalf("sources %q", src)
	}

	x, _, err = Read(dir, ReadOptions{PixelMax: 1, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	luma0 := float32(0.299 * 65535 / 65535)
	luma1 := float32(0.114 * float64(128*257) / 65535)
	if want := []float32{luma0, luma1, 7.0 / 255, 200.0 / 255}; !tensor.SameShape(x.Shape, []int{2, 1, 1, 1, 2}) || !reflect.DeepEqual(x.Data, want) {
		t.Fatalf("forced grey: %v %v, want %v", x.Shape, x.Data, want)
	}
}

// gifFile builds a GIF from frames over a screen of w×h.
func gifFile(t testing.TB, w, h int, ims []*image.Paletted, disposal []byte) []byte {
	t.Helper()
	g := &gif.GIF{Image: ims, Delay: make([]int, len(ims)), Disposal: disposal, Config: image.Config{Width: w, Height: h}}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The disposal methods and partial frames of an animated GIF: the expected
// screens were worked out by hand from the GIF89a rules (see composite).
func TestReadGIFDisposal(t *testing.T) {
	pal := color.Palette{color.Gray{0}, color.Gray{255}, color.Gray{128}, color.RGBA{}} // 3: transparent
	fr := func(x0, x1 int, idx ...uint8) *image.Paletted {
		m := image.NewPaletted(image.Rect(x0, 0, x1, 1), pal)
		copy(m.Pix, idx)
		return m
	}
	ims := []*image.Paletted{
		fr(0, 3, 1, 2, 0), // shows [255 128 0]; none
		fr(1, 2, 1),       // shows [255 255 0]; previous: back to [255 128 0]
		fr(0, 2, 3, 0),    // transparent keeps 255: [255 0 0]; background clears x 0..1
		fr(2, 3, 1),       // [0 0 255]
	}
	disposal := []byte{gif.DisposalNone, gif.DisposalPrevious, gif.DisposalBackground, gif.DisposalNone}
	file := filepath.Join(t.TempDir(), "anim.gif")
	writeFile(t, file, gifFile(t, 3, 1, ims, disposal))
	x, _, err := Read(file, ReadOptions{PixelMax: 255})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{255, 128, 0, 255, 255, 0, 255, 0, 0, 0, 0, 255}
	if !tensor.SameShape(x.Shape, []int{1, 4, 1, 1, 3}) || !reflect.DeepEqual(x.Data, want) {
		t.Fatalf("composited GIF: %v %v, want (1, 4, 1, 1, 3) %v", x.Shape, x.Data, want)
	}
}

// A folder of animated GIFs is a batch; one of one-frame GIFs a sequence.
func TestReadGIFFolders(t *testing.T) {
	pal := color.Palette{color.Gray{0}, color.Gray{255}, color.RGBA{255, 0, 0, 255}}
	full := func(idx ...uint8) *image.Paletted {
		m := image.NewPaletted(image.Rect(0, 0, 2, 1), pal)
		copy(m.Pix, idx)
		return m
	}
	batch := t.TempDir()
	writeFile(t, filepath.Join(batch, "10.gif"), gifFile(t, 2, 1, []*image.Paletted{full(0, 1), full(1, 2)}, nil))
	writeFile(t, filepath.Join(batch, "9.gif"), gifFile(t, 2, 1, []*image.Paletted{full(1, 1), full(0, 0)}, nil))
	x, src, err := Read(batch, ReadOptions{PixelMax: 255})
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(x.Shape, []int{2, 2, 3, 1, 2}) || filepath.Base(src[0]) != "9.gif" {
		t.Fatalf("batch of GIFs: %v %q", x.Shape, src)
	}
	// 10.gif step 1: [white, red] as R, G, B planes.
	if got, want := x.Data[(1*2+1)*6:][:6], []float32{255, 255, 255, 0, 255, 0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("10.gif step 1: %v, want %v", got, want)
	}

	seq := t.TempDir()
	for i := 0; i < 3; i++ {
		writeFile(t, filepath.Join(seq, strconv.Itoa(i)+".gif"), gifFile(t, 2, 1, []*image.Paletted{full(uint8(i%2), 1)}, nil))
	}
	x, _, err = Read(seq, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(x.Shape, []int{1, 3, 1, 1, 2}) {
		t.Fatalf("folder of one-frame GIFs: %v, want one sequence (1, 3, 1, 1, 2)", x.Shape)
	}
}

func TestReadJPEGAndProgress(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 3; i++ {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, randomGray(rand.New(rand.NewPCG(uint64(i), 0)), 16, 8), nil); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "s", strconv.Itoa(i)+".jpg"), b.Bytes())
	}
	var calls [][2]int
	x, _, err := Read(dir, ReadOptions{Progress: func(d, n int) { calls = append(calls, [2]int{d, n}) }})
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(x.Shape, []int{1, 3, 1, 8, 16}) || !reflect.DeepEqual(calls, [][2]int{{1, 3}, {2, 3}, {3, 3}}) {
		t.Fatalf("shape %v, progress %v", x.Shape, calls)
	}
}

// pngWithSize is a valid 1×1 PNG whose header is rewritten to declare w×h.
func pngWithSize(t testing.TB, w, h uint32) []byte {
	b := encodePNG(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// bigPNG declares 16384×16384 pixels and is long enough to hold them
// (padding after the header): it passes every check made before decoding.
func bigPNG(t testing.TB) []byte {
	return append(pngWithSize(t, 16384, 16384), make([]byte, 250<<10)...)
}

// Hostile and malformed inputs: each gives an error naming the file and
// what was expected.
func TestReadErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	good := encodePNG(t, randomGray(rng, 4, 4))
	emptyGIF := []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\x3b")
	pal := color.Palette{color.Gray{0}, color.Gray{255}}
	tiny := func() *image.Paletted { return image.NewPaletted(image.Rect(0, 0, 1, 1), pal) }
	bigScreen := gifFile(t, 16384, 16384, []*image.Paletted{tiny(), tiny(), tiny(), tiny(), tiny()}, nil)

	cases := []struct {
		name  string
		files map[string][]byte // relative path → content; "" key: the read path is a file
		path  string            // relative path to read ("" = the folder)
		want  []string
	}{
		{"truncated PNG", map[string][]byte{"0.png": good, "1.png": good[:len(good)/2]}, "", []string{"1.png", "cannot decode png", "not enough pixel data"}},
		{"huge declared size", map[string][]byte{"0.png": pngWithSize(t, 100000, 100000)}, "", []string{"0.png", "declares 100000×100000", "16384 per side"}},
		{"too many pixels", map[string][]byte{"0.png": pngWithSize(t, 16384, 16385)}, "", []string{"0.png", "16384 per side"}},
		{"short for its size", map[string][]byte{"0.png": pngWithSize(t, 16384, 16384)}, "", []string{"0.png", "bytes cannot hold the 16384×16384 pixels", "truncated or hostile"}},
		{"too many pixels in all", map[string][]byte{"0.png": bigPNG(t), "1.png": bigPNG(t), "2.png": bigPNG(t)}, "", []string{"1 sequence(s) of 3 frames of 3×16384×16384", "at most 1073741824"}},
		{"mixed sizes", map[string][]byte{"0.png": good, "1.png": encodePNG(t, randomGray(rng, 5, 4))}, "", []string{"1.png is 5×4", "0.png is 4×4", "one size"}},
		{"empty folder", map[string][]byte{}, "", []string{"an empty folder", "PNG, JPEG or GIF"}},
		{"zero-frame GIF", map[string][]byte{"a.gif": emptyGIF}, "a.gif", []string{"a.gif", "no frames"}},
		{"GIF declaring too much", map[string][]byte{"a.gif": bigScreen}, "a.gif", []string{"a.gif", "5 frames of 16384×16384"}},
		{"text file", map[string][]byte{"0.png": good, "notes.txt": []byte("hello")}, "", []string{"notes.txt", "not a PNG, JPEG or GIF image; every file in", "must be a frame"}},
		{"WebP", map[string][]byte{"0.webp": []byte("RIFF\x00\x00\x00\x00WEBPVP8 ")}, "", []string{"0.webp", "a WebP image, which is not read"}},
		{"empty file", map[string][]byte{"0.png": nil}, "", []string{"0.png", "an empty file"}},
		{"animated GIF among frames", map[string][]byte{"0.png": good, "1.gif": gifFile(t, 4, 4, []*image.Paletted{image.NewPaletted(image.Rect(0, 0, 4, 4), pal), image.NewPaletted(image.Rect(0, 0, 4, 4), pal)}, nil)}, "", []string{"1.gif", "an animated GIF (2 frames)"}},
		{"batch lengths", map[string][]byte{"a/0.png": good, "a/1.png": good, "b/0.png": good}, "", []string{"b has 1 frames", "a has 2", "same length"}},
		{"batch with a PNG", map[string][]byte{"a/0.png": good, "x.png": good}, "", []string{"x.png", "a file among sequence folders"}},
		{"nested folders", map[string][]byte{"a/b/0.png": good}, "", []string{"b", "a folder inside a sequence folder"}},
		{"empty sequence folder", map[string][]byte{"a/0.png": good, "b/.keep": nil}, "", []string{"b", "an empty sequence folder"}},
		{"missing", map[string][]byte{}, "nothing-here", []string{"nothing-here", "no such file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range c.files {
				writeFile(t, filepath.Join(dir, name), data)
			}
			x, _, err := Read(filepath.Join(dir, c.path), ReadOptions{})
			if err == nil {
				t.Fatalf("no error; read %v", x.Shape)
			}
			if !strings.HasPrefix(err.Error(), "frames: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, _, err := Read(t.TempDir(), ReadOptions{Channels: 2}); err == nil || !strings.Contains(err.Error(), "1 (grey) or 3 (RGB)") {
		t.Errorf("2 channels: %v", err)
	}
	if _, _, err := Read(t.TempDir(), ReadOptions{PixelMax: -1}); err == nil || !strings.Contains(err.Error(), "positive") {
		t.Errorf("pixel max -1: %v", err)
	}
}

func TestGuardRecoversPanics(t *testing.T) {
	err := guard("x.png", func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("guard: %v", err)
	}
}
