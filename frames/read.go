package frames

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// ReadOptions says how pictures become model values.
type ReadOptions struct {
	// PixelMax is the value white takes in the model's units: a pixel v of
	// an image whose values go up to maxval (255, or 65535 for 16-bit PNGs)
	// becomes v/maxval·PixelMax. 0 means 1; 255 suits models trained on
	// raw pixels.
	PixelMax float64
	// Channels forces the channel count: 0 takes it from the images (see
	// the package comment), 1 converts RGB to BT.601 luma, 3 replicates
	// grey.
	Channels int
	// Progress, when set, is called after each file is decoded with the
	// files done so far and the total.
	Progress func(done, total int)
}

// sequence is one batch item: where it came from and its files in order.
type sequence struct {
	source string   // the folder or GIF
	files  []string // one GIF, or the frame files in natural order
	infos  []fileInfo
}

// Read reads the pictures at path as a (B, T, C, H, W) float32 tensor and
// returns it with the source (folder or file) of each batch item.
//
// path may be an image file (a GIF is a sequence of its frames, any other
// image a one-frame sequence), a folder of image files (one sequence, in
// natural name order), or a folder of folders and/or animated GIFs (a
// batch, in natural name order, every item a sequence). A folder holding
// only GIF files is a batch when one of them has more than one frame, else
// a sequence of one-frame GIFs. Files whose names start with "." are
// skipped; any other file that is not an image is an error.
func Read(path string, opt ReadOptions) (*tensor.Tensor, []string, error) {
	if opt.PixelMax == 0 {
		opt.PixelMax = 1
	}
	if !(opt.PixelMax > 0) || opt.PixelMax > 1e30 {
		return nil, nil, fmt.Errorf("frames: pixel max %v: want a positive value (1, or 255 for raw pixels)", opt.PixelMax)
	}
	if opt.Channels != 0 && opt.Channels != 1 && opt.Channels != 3 {
		return nil, nil, fmt.Errorf("frames: %d channels asked: frames convert to 1 (grey) or 3 (RGB)", opt.Channels)
	}
	seqs, err := listSequences(path)
	if err != nil {
		return nil, nil, err
	}
	if err := probeAll(seqs); err != nil {
		return nil, nil, err
	}
	T, H, W, err := checkShapes(seqs, opt.Channels)
	if err != nil {
		return nil, nil, err
	}

	total := 0
	for _, s := range seqs {
		total += len(s.files)
	}
	done := 0
	decoded := make([][]frame, len(seqs))
	for b, s := range seqs {
		for k, f := range s.files {
			data, err := readFile(f)
			if err != nil {
				return nil, nil, err
			}
			fs, err := decode(f, data, s.infos[k])
			if err != nil {
				return nil, nil, err
			}
			decoded[b] = append(decoded[b], fs...)
			done++
			if opt.Progress != nil {
				opt.Progress(done, total)
			}
		}
		if len(decoded[b]) != T {
			// Only a GIF whose blocks and decoded frames disagree gets here.
			return nil, nil, fmt.Errorf("frames: %s: decoded %d frames where its blocks promised %d", s.source, len(decoded[b]), T)
		}
	}

	C := opt.Channels
	if C == 0 {
		C = 1
		for _, fs := range decoded {
			for _, f := range fs {
				if !f.grey {
					C = 3
				}
			}
		}
	}
	x := tensor.New(len(seqs), T, C, H, W)
	plane := H * W
	for b, fs := range decoded {
		for t, f := range fs {
			fill(x.Data[(b*T+t)*C*plane:][:C*plane], f, C, opt.PixelMax)
		}
	}
	sources := make([]string, len(seqs))
	for i, s := range seqs {
		sources[i] = s.source
	}
	return x, sources, nil
}

// fill writes frame f into dst (C planes) as value/65535·pixelMax.
func fill(dst []float32, f frame, C int, pixelMax float64) {
	n := f.w * f.h
	scale := pixelMax / 65535
	switch {
	case f.grey:
		for c := 0; c < C; c++ {
			for i, v := range f.pix {
				dst[c*n+i] = float32(float64(v) * scale)
			}
		}
	case C == 3:
		for i, v := range f.pix {
			dst[i] = float32(float64(v) * scale)
		}
	default: // RGB to grey: ITU-R BT.601 luma on the 16-bit values
		r, g, b := f.pix[:n], f.pix[n:2*n], f.pix[2*n:]
		for i := range r {
			y := 0.299*float64(r[i]) + 0.587*float64(g[i]) + 0.114*float64(b[i])
			dst[i] = float32(y * scale)
		}
	}
}

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("frames: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("frames: %v", err)
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("frames: %s: %d bytes; image files of at most %d bytes are read", name, st.Size(), MaxFileBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("frames: %s: %v", name, err)
	}
	return data, nil
}

// listSequences finds the sequences at path (see Read).
func listSequences(path string) ([]sequence, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("frames: %v", err)
	}
	if !st.IsDir() {
		return []sequence{{source: path, files: []string{path}}}, nil
	}
	dirs, files, err := listDir(path)
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 && len(files) == 0 {
		return nil, fmt.Errorf("frames: %s: an empty folder; expected PNG, JPEG or GIF frames, or folders of them", path)
	}
	batch := len(dirs) > 0
	if !batch && len(files) > 1 && allGIF(files) {
		// A folder of GIFs: a batch of animations, or the frames of one
		// sequence saved as one-frame GIFs.
		for _, f := range files {
			info, err := probeFile(f)
			if err != nil {
				return nil, err
			}
			if info.frames > 1 {
				batch = true
				break
			}
		}
	}
	if !batch {
		return []sequence{{source: path, files: files}}, nil
	}
	var seqs []sequence
	items := append(append([]string(nil), dirs...), files...)
	naturalSort(items)
	for _, item := range items {
		if !slices.Contains(dirs, item) {
			if !isGIFName(item) {
				return nil, fmt.Errorf("frames: %s: a file among sequence folders; a batch folder holds only folders of frames and animated GIFs", item)
			}
			seqs = append(seqs, sequence{source: item, files: []string{item}})
			continue
		}
		sub, subfiles, err := listDir(item)
		if err != nil {
			return nil, err
		}
		if len(sub) > 0 {
			return nil, fmt.Errorf("frames: %s: a folder inside a sequence folder; a batch is one level of folders of frames", sub[0])
		}
		if len(subfiles) == 0 {
			return nil, fmt.Errorf("frames: %s: an empty sequence folder; expected PNG, JPEG or GIF frames", item)
		}
		seqs = append(seqs, sequence{source: item, files: subfiles})
	}
	return seqs, nil
}

// listDir returns a folder's subfolders and files (full paths, natural
// order), skipping names that start with ".".
func listDir(dir string) (dirs, files []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("frames: %v", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			st, err := os.Stat(p)
			if err != nil {
				return nil, nil, fmt.Errorf("frames: %v", err)
			}
			isDir = st.IsDir()
		}
		if isDir {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
	}
	naturalSort(dirs)
	naturalSort(files)
	return dirs, files, nil
}

func isGIFName(p string) bool { return strings.EqualFold(filepath.Ext(p), ".gif") }

func allGIF(files []string) bool {
	for _, f := range files {
		if !isGIFName(f) {
			return false
		}
	}
	return true
}

func probeFile(name string) (fileInfo, error) {
	data, err := readFile(name)
	if err != nil {
		return fileInfo{}, err
	}
	return probe(name, data)
}

// probeAll reads every file's header; in a folder of frames, each file must
// hold one frame.
func probeAll(seqs []sequence) error {
	for i := range seqs {
		s := &seqs[i]
		s.infos = make([]fileInfo, len(s.files))
		for k, f := range s.files {
			info, err := probeFile(f)
			if err != nil {
				if msg := err.Error(); len(s.files) > 1 && (strings.Contains(msg, "not read (frames are") || strings.HasSuffix(msg, "not a PNG, JPEG or GIF image")) {
					return fmt.Errorf("%w; every file in %s must be a frame (names starting with \".\" are skipped)", err, s.source)
				}
				return err
			}
			if len(s.files) > 1 && info.frames > 1 {
				return fmt.Errorf("frames: %s: an animated GIF (%d frames) among the frames of %s; each file of a frame folder is one frame (a folder of animated GIFs is a batch)", f, info.frames, s.source)
			}
			s.infos[k] = info
		}
	}
	return nil
}

// checkShapes checks that every frame of every sequence has one size and
// every sequence one length, and that the whole fits MaxValues.
func checkShapes(seqs []sequence, channels int) (T, H, W int, err error) {
	seqT := func(s sequence) int {
		if len(s.files) == 1 {
			return s.infos[0].frames
		}
		return len(s.files)
	}
	first := seqs[0]
	T, H, W = seqT(first), first.infos[0].h, first.infos[0].w
	for _, s := range seqs {
		for k, info := range s.infos {
			if info.w != W || info.h != H {
				return 0, 0, 0, fmt.Errorf("frames: %s is %d×%d, but %s is %d×%d; every frame of a read must have one size", s.files[k], info.w, info.h, first.files[0], W, H)
			}
		}
		if t := seqT(s); t != T {
			return 0, 0, 0, fmt.Errorf("frames: %s has %d frames, but %s has %d; every sequence of a batch must have the same length", s.source, t, first.source, T)
		}
	}
	C := channels
	if C == 0 {
		C = 3 // not known before decoding: count the widest
	}
	if v := int64(len(seqs)) * int64(T) * int64(C) * int64(H) * int64(W); v > MaxValues {
		return 0, 0, 0, fmt.Errorf("frames: %d sequence(s) of %d frames of %d×%d×%d are %d values; at most %d are read at once", len(seqs), T, C, H, W, v, MaxValues)
	}
	return T, H, W, nil
}
