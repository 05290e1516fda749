package frames

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	_ "image/jpeg" // registers the JPEG decoder
	_ "image/png"  // registers the PNG decoder
)

// Limits on what a file may declare, checked before any pixel is decoded.
const (
	MaxSide        = 16384   // pixels per side of a frame
	MaxFramePixels = 1 << 28 // pixels in one frame
	// MaxValues bounds the tensor Read returns (B·T·C·H·W, 4 GiB of
	// float32), counted with the file's declared sizes and frame counts.
	MaxValues    = 1 << 30
	MaxFileBytes = 1 << 30 // bytes of one image file
)

// frame is one decoded picture at full precision: 16-bit values (8-bit
// ones scaled by 257, as image/color does), alpha composited over black.
type frame struct {
	w, h int
	grey bool     // pix is one plane; otherwise three (R, G, B), each w·h
	pix  []uint16 // row-major planes
}

// fileInfo is what probe learns from a file's header.
type fileInfo struct {
	format string // "png", "jpeg" or "gif"
	w, h   int
	frames int // 1, or a GIF's image descriptors
}

// probe reads the header of one image file: its format, declared size and,
// for a GIF, its frame count (from the block structure, no pixels decoded).
func probe(name string, data []byte) (fileInfo, error) {
	var cfg image.Config
	var format string
	err := guard(name, func() (err error) {
		cfg, format, err = image.DecodeConfig(bytes.NewReader(data))
		return err
	})
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return fileInfo{}, fmt.Errorf("frames: %s: %s", name, notAnImage(data))
		}
		return fileInfo{}, fmt.Errorf("frames: %s: unreadable header: %v", name, err)
	}
	info := fileInfo{format: format, w: cfg.Width, h: cfg.Height, frames: 1}
	if err := checkSize(name, info.w, info.h); err != nil {
		return fileInfo{}, err
	}
	// A compressed stream expands by a bounded factor, so a file too short
	// for the pixels it declares is truncated or hostile: refused before
	// the decoder allocates the image.
	switch format {
	case "png":
		if raw := pngMinRaw(data); raw > int64(len(data))*1100 { // deflate: at most 1032:1
			return fileInfo{}, fmt.Errorf("frames: %s: %d bytes cannot hold the %d×%d pixels the header declares; the file is truncated or hostile", name, len(data), info.w, info.h)
		}
	case "gif":
		var pixels int64
		if info.frames, pixels, err = gifFrameCount(data); err != nil {
			return fileInfo{}, fmt.Errorf("frames: %s: %v", name, err)
		}
		// LZW: every code of at least 3 bits yields at most 4096 pixels.
		if pixels > int64(len(data))*8/3*4096 {
			return fileInfo{}, fmt.Errorf("frames: %s: %d bytes cannot hold the %d pixels its frames declare; the file is truncated or hostile", name, len(data), pixels)
		}
	}
	if format == "gif" {
		if info.frames == 0 {
			return fileInfo{}, fmt.Errorf("frames: %s: a GIF with no frames", name)
		}
		if int64(info.frames)*int64(info.w)*int64(info.h) > MaxValues {
			return fileInfo{}, fmt.Errorf("frames: %s: %d frames of %d×%d is more than the %d pixels a read may hold", name, info.frames, info.w, info.h, MaxValues)
		}
	}
	return info, nil
}

// pngMinRaw is the least number of bytes a PNG's decompressed image data
// can have (non-interlaced; interlacing only adds filter bytes), from its
// header, which DecodeConfig has already checked.
func pngMinRaw(data []byte) int64 {
	if len(data) < 26 {
		return 0
	}
	w, h := int64(binary.BigEndian.Uint32(data[16:])), int64(binary.BigEndian.Uint32(data[20:]))
	channels := map[byte]int64{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[data[25]]
	bits := int64(data[24]) * max(channels, 1)
	return h * (1 + (w*bits+7)/8)
}

func checkSize(name string, w, h int) error {
	switch {
	case w < 1 || h < 1:
		return fmt.Errorf("frames: %s: declares an empty %d×%d image", name, w, h)
	case w > MaxSide || h > MaxSide:
		return fmt.Errorf("frames: %s: declares %d×%d pixels; at most %d per side are accepted", name, w, h, MaxSide)
	case int64(w)*int64(h) > MaxFramePixels:
		return fmt.Errorf("frames: %s: declares %d×%d = %d pixels; at most %d per frame are accepted", name, w, h, int64(w)*int64(h), MaxFramePixels)
	}
	return nil
}

// notAnImage names what data is, when it is a picture format we do not read.
func notAnImage(data []byte) string {
	known := []struct{ magic, what string }{
		{"BM", "a BMP image"},
		{"II*\x00", "a TIFF image"},
		{"MM\x00*", "a TIFF image"},
		{"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"},
		{"8BPS", "a Photoshop document"},
	}
	for _, k := range known {
		if bytes.HasPrefix(data, []byte(k.magic)) {
			return k.what + ", which is not read (frames are PNG, JPEG or GIF files)"
		}
	}
	if len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP" {
		return "a WebP image, which is not read (frames are PNG, JPEG or GIF files)"
	}
	if len(data) == 0 {
		return "an empty file, not a PNG, JPEG or GIF image"
	}
	return "not a PNG, JPEG or GIF image"
}

// guard runs a third-party decoder, turning a panic into an error: the
// standard decoders are not documented never to panic, and a hostile file
// must never take the process down.
func guard(name string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the decoder failed on this file (%v)", r)
		}
	}()
	return f()
}

// decode decodes a probed file into its frames (a GIF's frames composited).
func decode(name string, data []byte, info fileInfo) ([]frame, error) {
	if info.format == "gif" {
		var g *gif.GIF
		err := guard(name, func() (err error) {
			g, err = gif.DecodeAll(bytes.NewReader(data))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("frames: %s: %v", name, err)
		}
		fs, err := composite(g)
		if err != nil {
			return nil, fmt.Errorf("frames: %s: %v", name, err)
		}
		return fs, nil
	}
	var m image.Image
	err := guard(name, func() (err error) {
		m, _, err = image.Decode(bytes.NewReader(data))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("frames: %s: cannot decode %s: %v", name, info.format, err)
	}
	if b := m.Bounds(); b.Dx() != info.w || b.Dy() != info.h {
		return nil, fmt.Errorf("frames: %s: decoded %d×%d, but the header declares %d×%d", name, b.Dx(), b.Dy(), info.w, info.h)
	}
	return []frame{toFrame(m)}, nil
}

// toFrame converts any image to full-precision planes: grey types to one
// plane directly, everything else through its colour model (RGBA64, alpha
// premultiplied, i.e. over black), collapsed to one plane when R = G = B
// everywhere.
func toFrame(m image.Image) frame {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := m.(type) {
	case *image.Gray:
		f := frame{w: w, h: h, grey: true, pix: make([]uint16, w*h)}
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				f.pix[y*w+x] = uint16(v) * 0x101
			}
		}
		return f
	case *image.Gray16:
		f := frame{w: w, h: h, grey: true, pix: make([]uint16, w*h)}
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+2*w]
			for x := 0; x < w; x++ {
				f.pix[y*w+x] = uint16(row[2*x])<<8 | uint16(row[2*x+1])
			}
		}
		return f
	case *image.Paletted:
		tab := paletteTable(m.Palette)
		f := frame{w: w, h: h, pix: make([]uint16, 3*w*h)}
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, idx := range row {
				var c color.RGBA64 // an index past the palette is black, as image.Paletted.At does
				if int(idx) < len(tab) {
					c = tab[idx]
				}
				f.set(x, y, c)
			}
		}
		return f.collapse()
	}
	f := frame{w: w, h: h, pix: make([]uint16, 3*w*h)}
	if m64, ok := m.(image.RGBA64Image); ok {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				f.set(x, y, m64.RGBA64At(b.Min.X+x, b.Min.Y+y))
			}
		}
	} else {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				r, g, bl, a := m.At(b.Min.X+x, b.Min.Y+y).RGBA()
				f.set(x, y, color.RGBA64{uint16(r), uint16(g), uint16(bl), uint16(a)})
			}
		}
	}
	return f.collapse()
}

// set stores a premultiplied colour: the alpha is dropped, which is the
// colour composited over black.
func (f *frame) set(x, y int, c color.RGBA64) {
	n, i := f.w*f.h, y*f.w+x
	f.pix[i], f.pix[n+i], f.pix[2*n+i] = c.R, c.G, c.B
}

// collapse keeps one plane of a three-plane frame whose planes are equal.
func (f frame) collapse() frame {
	n := f.w * f.h
	r, g, b := f.pix[:n], f.pix[n:2*n], f.pix[2*n:]
	for i := range r {
		if r[i] != g[i] || r[i] != b[i] {
			return f
		}
	}
	f.grey = true
	f.pix = append([]uint16(nil), r...)
	return f
}

func paletteTable(p color.Palette) []color.RGBA64 {
	tab := make([]color.RGBA64, len(p))
	for i, c := range p {
		if c == nil {
			continue
		}
		r, g, b, a := c.RGBA()
		tab[i] = color.RGBA64{uint16(r), uint16(g), uint16(b), uint16(a)}
	}
	return tab
}
