package frames

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// WriteOptions says how model values become pictures.
type WriteOptions struct {
	// PixelMax is the value that becomes white (255); 0 means 1. Values are
	// mapped to v/PixelMax·255, rounded to nearest and clipped to 0..255
	// (NaN becomes 0).
	PixelMax float64
	// UseChannel writes channel Channel (from 0) alone, as grey; without
	// it the tensor must have 1 channel (grey) or 3 (RGB).
	UseChannel bool
	Channel    int
	// Delay is each GIF frame's display time, in steps of 10 ms; 0 means
	// 100 ms (10 frames a second).
	Delay time.Duration
}

// writeAtomic is loader.WriteAtomic, replaced in a test to fail on demand.
var writeAtomic = loader.WriteAtomic

// Gap is the width in pixels of the separator between the panels of a strip
// and between the batch items stacked in one GIF; it is mid-grey.
const Gap = 2

// IsOutputPath reports whether path names a picture output Write takes: a
// .gif file or a folder (a trailing separator, or an existing directory).
func IsOutputPath(path string) bool {
	if isGIFName(path) || strings.HasSuffix(path, "/") || strings.HasSuffix(path, string(filepath.Separator)) {
		return true
	}
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// Write writes y, (B, T, C, H, W) or (B, T, H, W), to path: an animated GIF
// when path ends in .gif (WriteGIF), one PNG per step when path is a folder
// (WritePNGs). The GIF is written atomically.
func Write(path string, y *tensor.Tensor, opt WriteOptions) error {
	if isGIFName(path) {
		p, err := pictures(y, opt) // before anything is created
		if err == nil {
			err = loader.WriteAtomic(path, func(w io.Writer) error { return encodeGIF(w, p, opt) })
		}
		if err != nil {
			return fmt.Errorf("frames: writing %s: %v", path, err)
		}
		return nil
	}
	if IsOutputPath(path) {
		return WritePNGs(path, y, opt)
	}
	return fmt.Errorf("frames: %s: write frames to NAME.gif (an animation) or a folder NAME/ (one PNG per step)", path)
}

// pics is a tensor as 8-bit pictures: pix[b][t] holds C planes of H·W.
type pics struct {
	B, T, C, H, W int
	pix           [][][]uint8
}

// pictures maps y to 8-bit values (see WriteOptions).
func pictures(y *tensor.Tensor, opt WriteOptions) (*pics, error) {
	pm := opt.PixelMax
	if pm == 0 {
		pm = 1
	}
	if !(pm > 0) || math.IsInf(pm, 0) {
		return nil, fmt.Errorf("pixel max %v: want a positive value", opt.PixelMax)
	}
	B, T, C, H, W, err := dims5(y)
	if err != nil {
		return nil, err
	}
	c0, nc := 0, C
	switch {
	case opt.UseChannel:
		if opt.Channel < 0 || opt.Channel >= C {
			return nil, fmt.Errorf("channel %d asked of a tensor with %d (%s)", opt.Channel, C, tensor.ShapeString(y.Shape))
		}
		c0, nc = opt.Channel, 1
	case C != 1 && C != 3:
		return nil, fmt.Errorf("a tensor %s has %d channels; pictures take 1 (grey) or 3 (RGB): choose one channel to write", tensor.ShapeString(y.Shape), C)
	}
	if H > MaxSide || W > MaxSide {
		return nil, fmt.Errorf("%d×%d frames: at most %d pixels per side are written", W, H, MaxSide)
	}
	p := &pics{B: B, T: T, C: nc, H: H, W: W, pix: make([][][]uint8, B)}
	scale := 255 / pm
	plane := H * W
	for b := 0; b < B; b++ {
		p.pix[b] = make([][]uint8, T)
		for t := 0; t < T; t++ {
			src := y.Data[((b*T+t)*C+c0)*plane:][:nc*plane]
			dst := make([]uint8, len(src))
			for i, v := range src {
				dst[i] = to8(v, scale)
			}
			p.pix[b][t] = dst
		}
	}
	return p, nil
}

func to8(v float32, scale float64) uint8 {
	f := float64(v) * scale
	switch {
	case !(f > 0): // negative, zero or NaN
		return 0
	case f >= 255:
		return 255
	}
	return uint8(math.Round(f))
}

// dims5 reads (B, T, C, H, W) or (B, T, H, W) (C = 1) and checks the data.
func dims5(y *tensor.Tensor) (B, T, C, H, W int, err error) {
	if y == nil {
		return 0, 0, 0, 0, 0, errors.New("no tensor")
	}
	switch len(y.Shape) {
	case 4:
		B, T, C, H, W = y.Shape[0], y.Shape[1], 1, y.Shape[2], y.Shape[3]
	case 5:
		B, T, C, H, W = y.Shape[0], y.Shape[1], y.Shape[2], y.Shape[3], y.Shape[4]
	default:
		return 0, 0, 0, 0, 0, fmt.Errorf("a tensor of shape %s: pictures are written from (B, T, C, H, W) or (B, T, H, W)", tensor.ShapeString(y.Shape))
	}
	if !y.IsFloat() {
		return 0, 0, 0, 0, 0, fmt.Errorf("a %s tensor: pictures are written from float values", y.DType)
	}
	if err := y.Check(); err != nil {
		return 0, 0, 0, 0, 0, err
	}
	if B < 1 || T < 1 || C < 1 || H < 1 || W < 1 {
		return 0, 0, 0, 0, 0, fmt.Errorf("an empty tensor %s: no frames to write", tensor.ShapeString(y.Shape))
	}
	return B, T, C, H, W, nil
}

// WriteGIF writes y as an animated GIF, one frame per time step, looping
// forever. Batch items are stacked top to bottom, Gap grey rows apart.
// Grey frames (one channel, or three equal ones) use a 256-level grey
// palette and are exact; colour frames are quantized to the Plan 9
// 256-colour palette with Floyd–Steinberg error diffusion (image/draw), so
// they are approximate: write PNGs for exact colour.
func WriteGIF(w io.Writer, y *tensor.Tensor, opt WriteOptions) error {
	p, err := pictures(y, opt)
	if err == nil {
		err = encodeGIF(w, p, opt)
	}
	if err != nil {
		return fmt.Errorf("frames: %v", err)
	}
	return nil
}

func encodeGIF(w io.Writer, p *pics, opt WriteOptions) error {
	delay := opt.Delay
	if delay == 0 {
		delay = 100 * time.Millisecond
	}
	cs := int((delay + 5*time.Millisecond) / (10 * time.Millisecond))
	if cs < 1 || cs > 65535 {
		return fmt.Errorf("GIF frame delay %v: want 10 ms to 655 s", opt.Delay)
	}
	Hs := p.B*p.H + (p.B-1)*Gap
	if Hs > MaxSide {
		return fmt.Errorf("%d batch items of height %d stack to %d rows, more than %d; write a folder of PNGs instead", p.B, p.H, Hs, MaxSide)
	}
	grey := p.C == 1 || p.allGrey()
	var pal color.Palette
	if grey {
		pal = make(color.Palette, 256)
		for i := range pal {
			pal[i] = color.Gray{uint8(i)}
		}
	} else {
		pal = palette.Plan9
	}
	g := &gif.GIF{Config: image.Config{ColorModel: pal, Width: p.W, Height: Hs}}
	n := p.H * p.W
	for t := 0; t < p.T; t++ {
		m := image.NewPaletted(image.Rect(0, 0, p.W, Hs), pal)
		var rgba *image.RGBA
		if !grey {
			rgba = image.NewRGBA(m.Rect)
		}
		for b := 0; b < p.B; b++ {
			y0 := b * (p.H + Gap)
			if b > 0 {
				for y := y0 - Gap; y < y0; y++ {
					for x := 0; x < p.W; x++ {
						if grey {
							m.SetColorIndex(x, y, 128)
						} else {
							rgba.SetRGBA(x, y, color.RGBA{128, 128, 128, 255})
						}
					}
				}
			}
			src := p.pix[b][t]
			for yy := 0; yy < p.H; yy++ {
				for x := 0; x < p.W; x++ {
					i := yy*p.W + x
					if grey {
						m.Pix[(y0+yy)*m.Stride+x] = src[i]
					} else {
						rgba.SetRGBA(x, y0+yy, color.RGBA{src[i], src[n+i], src[2*n+i], 255})
					}
				}
			}
		}
		if !grey {
			draw.FloydSteinberg.Draw(m, m.Rect, rgba, image.Point{})
		}
		g.Image = append(g.Image, m)
		g.Delay = append(g.Delay, cs)
	}
	return gif.EncodeAll(w, g)
}

// allGrey reports whether three-channel pictures have R = G = B everywhere.
func (p *pics) allGrey() bool {
	if p.C != 3 {
		return p.C == 1
	}
	n := p.H * p.W
	for _, seq := range p.pix {
		for _, f := range seq {
			for i := 0; i < n; i++ {
				if f[i] != f[n+i] || f[i] != f[2*n+i] {
					return false
				}
			}
		}
	}
	return true
}

// WritePNGs writes one 8-bit PNG per time step into dir (created if need
// be): 000.png, 001.png, … (more digits when T > 1000), grey for one
// channel, RGB for three. With B > 1, batch item b goes into subfolder
// 000/, 001/, … (which Read reads back as a batch). The folder may not
// hold anything but the files being written, so that no frame of an
// earlier run is mistaken for part of this one. Each file is written
// atomically; if any write fails, the files and folders this call created
// are removed.
func WritePNGs(dir string, y *tensor.Tensor, opt WriteOptions) (err error) {
	p, err := pictures(y, opt)
	if err != nil {
		return fmt.Errorf("frames: writing %s: %v", dir, err)
	}
	steps, items := numbered(p.T, ".png"), numbered(p.B, "")
	type job struct {
		dir, name string
		b, t      int
	}
	var jobs []job
	if p.B == 1 {
		if err := checkOnly(dir, steps, false); err != nil {
			return err
		}
		for t, name := range steps {
			jobs = append(jobs, job{dir, name, 0, t})
		}
	} else {
		if err := checkOnly(dir, items, true); err != nil {
			return err
		}
		for b, item := range items {
			sub := filepath.Join(dir, item)
			if err := checkOnly(sub, steps, false); err != nil {
				return err
			}
			for t, name := range steps {
				jobs = append(jobs, job{sub, name, b, t})
			}
		}
	}

	var created []string // files and folders to remove on failure, innermost last
	defer func() {
		if err != nil {
			for i := len(created) - 1; i >= 0; i-- {
				os.Remove(created[i])
			}
		}
	}()
	for _, j := range jobs {
		if err := mkdirTracked(j.dir, &created); err != nil {
			return fmt.Errorf("frames: writing %s: %v", dir, err)
		}
		path := filepath.Join(j.dir, j.name)
		m := p.image(j.b, j.t)
		_, existed := os.Stat(path)
		if err := writeAtomic(path, func(w io.Writer) error { return png.Encode(w, m) }); err != nil {
			return fmt.Errorf("frames: writing %s: %v", path, err)
		}
		if existed != nil {
			created = append(created, path)
		}
	}
	return nil
}

// mkdirTracked creates d and its missing parents, recording each one made.
func mkdirTracked(d string, created *[]string) error {
	d = filepath.Clean(d)
	var missing []string
	for p := d; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil {
			return err
		}
		*created = append(*created, missing[i])
	}
	return nil
}

// image returns step t of batch item b as an 8-bit grey or RGB image.
func (p *pics) image(b, t int) image.Image {
	src := p.pix[b][t]
	r := image.Rect(0, 0, p.W, p.H)
	if p.C == 1 {
		return &image.Gray{Pix: src, Stride: p.W, Rect: r}
	}
	m := image.NewRGBA(r)
	n := p.H * p.W
	for i := 0; i < n; i++ {
		m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2], m.Pix[4*i+3] = src[i], src[n+i], src[2*n+i], 255
	}
	return m // opaque: image/png writes it as 8-bit RGB
}

// numbered returns 000ext, 001ext, … for n items (at least three digits).
func numbered(n int, ext string) []string {
	width := max(3, len(fmt.Sprint(n-1)))
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%0*d%s", width, i, ext)
	}
	return names
}

// checkOnly refuses a folder holding anything but the given names (files,
// or folders when dirs is set); a missing folder is fine.
func checkOnly(dir string, names []string, dirs bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("frames: writing %s: %v", dir, err)
	}
	ok := make(map[string]bool, len(names))
	for _, n := range names {
		ok[n] = true
	}
	for _, e := range entries {
		if !ok[e.Name()] || e.IsDir() != dirs {
			return fmt.Errorf("frames: writing %s: the folder already holds %s, which this output would not replace; use an empty or new folder", dir, e.Name())
		}
	}
	return nil
}
