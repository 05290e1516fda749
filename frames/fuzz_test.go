package frames

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"math/rand/v2"
	"testing"
)

// FuzzReadFrame feeds arbitrary bytes to the frame reader (probe, then
// decode, as Read does for every file): it must return frames that agree
// with the header, or an error naming the file, and never panic.
//
//	go test ./frames/ -run '^$' -fuzz FuzzReadFrame -fuzztime 60s
func FuzzReadFrame(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	f.Add(encodePNG(f, randomGray(rng, 3, 2)))
	m16 := image.NewRGBA64(image.Rect(0, 0, 2, 2))
	m16.SetRGBA64(1, 1, color.RGBA64{1, 2, 3, 4})
	f.Add(encodePNG(f, m16))
	f.Add(encodePNG(f, image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.Black, color.RGBA{255, 0, 0, 128}})))
	var j bytes.Buffer
	if err := jpeg.Encode(&j, randomGray(rng, 9, 9), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(j.Bytes())
	pal := color.Palette{color.Gray{0}, color.Gray{255}, color.RGBA{}}
	a := image.NewPaletted(image.Rect(0, 0, 3, 2), pal)
	b := image.NewPaletted(image.Rect(1, 1, 3, 2), pal)
	b.Pix[0] = 2
	anim := gifFile(f, 3, 2, []*image.Paletted{a, b, a}, []byte{gif.DisposalNone, gif.DisposalPrevious, gif.DisposalBackground})
	f.Add(anim)
	f.Add(anim[:len(anim)-5])
	f.Add([]byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\x3b"))
	f.Add(pngWithSize(f, 100000, 3))

	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := probe("fuzz.bin", data)
		if err != nil {
			return
		}
		if int64(info.w)*int64(info.h)*int64(info.frames) > 1<<22 {
			return // legal but too big to decode at fuzzing speed
		}
		fs, err := decode("fuzz.bin", data, info)
		if err != nil {
			return
		}
		if len(fs) == 0 || len(fs) > info.frames {
			t.Fatalf("%d frames decoded, %d declared", len(fs), info.frames)
		}
		for _, fr := range fs {
			planes := 3
			if fr.grey {
				planes = 1
			}
			if fr.w != info.w || fr.h != info.h || len(fr.pix) != planes*fr.w*fr.h {
				t.Fatalf("frame %d×%d with %d values, header %d×%d", fr.w, fr.h, len(fr.pix), info.w, info.h)
			}
		}
	})
}
