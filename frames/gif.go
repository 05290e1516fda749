package frames

import (
	"errors"
	"fmt"
	"image/color"
	"image/gif"
)

// gifFrameCount walks a GIF's blocks (header, colour tables, extensions,
// image descriptors and their data sub-blocks) without decoding any pixel,
// so that the memory gif.DecodeAll will take can be bounded first. It
// counts image descriptors up to the trailer or the end of the data; a
// malformed stream is left to the decoder to report, since it stops at the
// same place and cannot hold more frames than were counted.
//
// It also returns the pixels the image descriptors declare in all, which
// the decoder allocates frame by frame before reading their data.
func gifFrameCount(b []byte) (n int, pixels int64, err error) {
	if len(b) < 13 {
		return 0, 0, errors.New("truncated GIF header")
	}
	p := 13
	if flags := b[10]; flags&0x80 != 0 {
		p += 3 << (flags&7 + 1)
	}
	skipSubBlocks := func() {
		for p < len(b) {
			size := int(b[p])
			p += 1 + size
			if size == 0 {
				return
			}
		}
	}
	for p < len(b) {
		switch b[p] {
		case 0x21: // extension: introducer, label, sub-blocks
			p += 2
			skipSubBlocks()
		case 0x2c: // image descriptor: 9 bytes, local colour table, LZW code size, sub-blocks
			if p+10 > len(b) {
				return n, pixels, nil
			}
			w, h := int64(b[p+5])|int64(b[p+6])<<8, int64(b[p+7])|int64(b[p+8])<<8
			pixels += w * h
			flags := b[p+9]
			p += 10
			if flags&0x80 != 0 {
				p += 3 << (flags&7 + 1)
			}
			p++
			skipSubBlocks()
			n++
		default: // trailer (0x3b) or garbage the decoder will name
			return n, pixels, nil
		}
	}
	return n, pixels, nil
}

// composite plays a decoded GIF onto its logical screen and returns what is
// shown at each frame: each frame's image (which may cover only part of the
// screen) is drawn over the canvas, transparent pixels leaving what was
// there; after it is shown, its disposal method applies: 0 (unspecified)
// and 1 (none) leave the canvas, 2 (background) clears the frame's rectangle
// to transparent (as browsers do, rather than to the background colour),
// 3 (previous) restores the canvas as it was before the frame. The canvas
// starts transparent; transparent pixels read as black (alpha over black).
func composite(g *gif.GIF) ([]frame, error) {
	w, h := g.Config.Width, g.Config.Height
	if len(g.Image) == 0 {
		return nil, errors.New("a GIF with no frames")
	}
	n := w * h
	canvas := make([]uint16, 3*n)
	var saved []uint16
	out := make([]frame, 0, len(g.Image))
	for i, m := range g.Image {
		r := m.Bounds()
		if r.Min.X < 0 || r.Min.Y < 0 || r.Max.X > w || r.Max.Y > h {
			return nil, fmt.Errorf("frame %d at %v lies outside the %d×%d screen", i, r, w, h)
		}
		disposal := byte(0)
		if i < len(g.Disposal) {
			disposal = g.Disposal[i]
		}
		if disposal == gif.DisposalPrevious {
			saved = append(saved[:0], canvas...)
		}
		tab := paletteTable(m.Palette)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := m.Pix[m.PixOffset(r.Min.X, y):]
			for x := r.Min.X; x < r.Max.X; x++ {
				idx := int(row[x-r.Min.X])
				if idx >= len(tab) {
					return nil, fmt.Errorf("frame %d: colour index %d past its %d-colour palette", i, idx, len(tab))
				}
				over(canvas, n, y*w+x, tab[idx])
			}
		}
		f := frame{w: w, h: h, pix: append([]uint16(nil), canvas...)}
		out = append(out, f.collapse())
		switch disposal {
		case gif.DisposalBackground:
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					i := y*w + x
					canvas[i], canvas[n+i], canvas[2*n+i] = 0, 0, 0
				}
			}
		case gif.DisposalPrevious:
			copy(canvas, saved)
		}
	}
	return out, nil
}

// over draws the premultiplied colour c over the canvas pixel i (GIF
// palettes hold only opaque colours and the transparent one, but the
// general rule costs nothing).
func over(canvas []uint16, n, i int, c color.RGBA64) {
	switch c.A {
	case 0xffff:
		canvas[i], canvas[n+i], canvas[2*n+i] = c.R, c.G, c.B
	case 0:
	default:
		k := uint32(0xffff - c.A)
		canvas[i] = c.R + uint16(uint32(canvas[i])*k/0xffff)
		canvas[n+i] = c.G + uint16(uint32(canvas[n+i])*k/0xffff)
		canvas[2*n+i] = c.B + uint16(uint32(canvas[2*n+i])*k/0xffff)
	}
}
