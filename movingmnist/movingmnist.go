// Package movingmnist makes Moving MNIST sequences as Srivastava, Mansimov
// and Salakhutdinov made them ("Unsupervised Learning of Video
// Representations using LSTMs", ICML 2015, and the BouncingMNIST generator
// of their code): two 28×28 MNIST digits bouncing inside a 64×64 frame for
// 20 frames, the first 10 the input and the next 10 the frames to predict.
//
// Each digit starts at a uniformly random position in the 36×36 square of
// top-left corners that keep it inside the frame, moves with unit speed in
// a uniformly random direction, 0.1 of the square's side per frame, and
// reflects off the borders (the position is clamped to the border and that
// velocity component reversed). Positions are truncated to whole pixels;
// where the digits overlap, the brighter pixel wins (pixel-wise max). As in
// the original code, the first frame shows the digits after one step.
//
// The digits are the first 1000 of the MNIST test set, embedded (see
// data/README.md for provenance and licences). Sequences are raw pixel
// values 0..255 and depend only on the seed and their index: sequence i of
// Generate(n, seed) is the same for every n ≥ i+1.
package movingmnist

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/convlstm-go/convlstm-go/tensor"
)

const (
	Size        = 64 // frame side
	DigitSize   = 28 // MNIST digit side
	Length      = 20 // frames per sequence
	InputLength = 10 // the first InputLength frames are the input, the rest the target
	NumDigits   = 2  // digits per sequence
	step        = 0.1
	// MaxSequences bounds one Generate call (a 10000-sequence tensor is
	// 3.3 GB of float32).
	MaxSequences = 10000
)

//go:embed data/t10k-images-1000-idx3-ubyte.gz
var imagesGz []byte

//go:embed data/t10k-labels-1000-idx1-ubyte.gz
var labelsGz []byte

// Digit is one MNIST digit: 28×28 grey pixels, row by row, 0 black.
type Digit struct {
	Label uint8
	Pix   [DigitSize * DigitSize]uint8
}

var digits = sync.OnceValues(func() ([]Digit, error) {
	images, err := readIDX(imagesGz, "images", 3)
	if err != nil {
		return nil, err
	}
	labels, err := readIDX(labelsGz, "labels", 1)
	if err != nil {
		return nil, err
	}
	if images.dims[1] != DigitSize || images.dims[2] != DigitSize || images.dims[0] != labels.dims[0] {
		return nil, fmt.Errorf("movingmnist: embedded digits: images %v, labels %v", images.dims, labels.dims)
	}
	ds := make([]Digit, images.dims[0])
	for i := range ds {
		ds[i].Label = labels.data[i]
		copy(ds[i].Pix[:], images.data[i*DigitSize*DigitSize:])
	}
	return ds, nil
})

// Digits returns the embedded MNIST digits (shared: do not modify them).
func Digits() ([]Digit, error) { return digits() }

type idx struct {
	dims []int
	data []byte
}

// readIDX reads a gzipped IDX file of unsigned bytes (MNIST's format: magic
// 0x0000080R for rank R, R big-endian uint32 dims, the bytes).
func readIDX(gz []byte, what string, rank int) (idx, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return idx{}, fmt.Errorf("movingmnist: embedded %s: %v", what, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 1<<24))
	if err != nil {
		return idx{}, fmt.Errorf("movingmnist: embedded %s: %v", what, err)
	}
	hdr := 4 + 4*rank
	if len(raw) < hdr || binary.BigEndian.Uint32(raw) != 0x800|uint32(rank) {
		return idx{}, fmt.Errorf("movingmnist: embedded %s: not a rank-%d IDX file of bytes", what, rank)
	}
	m := idx{data: raw[hdr:]}
	n := 1
	for i := 0; i < rank; i++ {
		d := int(binary.BigEndian.Uint32(raw[4+4*i:]))
		m.dims = append(m.dims, d)
		n *= d
	}
	if n != len(m.data) {
		return idx{}, fmt.Errorf("movingmnist: embedded %s: %d bytes for dims %v", what, len(m.data), m.dims)
	}
	return m, nil
}

// Generate returns n sequences made from seed, as a (n, 20, 64, 64) float32
// tensor of raw pixel values 0..255 (the layout of Srivastava et al.'s
// mnist_test_seq.npy, batch first).
func Generate(n int, seed uint64) (*tensor.Tensor, error) {
	if n < 1 || n > MaxSequences {
		return nil, fmt.Errorf("movingmnist: %d sequences asked; make 1 to %d at a time", n, MaxSequences)
	}
	ds, err := Digits()
	if err != nil {
		return nil, err
	}
	x := tensor.New(n, Length, Size, Size)
	frame := make([]uint8, Length*Size*Size)
	for i := 0; i < n; i++ {
		clear(frame)
		sequence(frame, ds, seed, i)
		dst := x.Data[i*Length*Size*Size:]
		for k, v := range frame {
			dst[k] = float32(v)
		}
	}
	return x, nil
}

// sequence draws sequence i of seed into frames (Length frames of Size²).
func sequence(frames []uint8, ds []Digit, seed uint64, i int) {
	for _, p := range paths(ds, seed, i) {
		for t := 0; t < Length; t++ {
			f := frames[t*Size*Size:]
			for r := 0; r < DigitSize; r++ {
				row := f[(p.top[t]+r)*Size+p.left[t]:][:DigitSize]
				for c, v := range p.digit.Pix[r*DigitSize : (r+1)*DigitSize] {
					row[c] = max(row[c], v)
				}
			}
		}
	}
}

// path is one digit's course: its top-left corner in each frame.
type path struct {
	digit     *Digit
	top, left [Length]int
}

// paths draws the digits and courses of sequence i of seed. The random
// numbers come from PCG(seed, i): for each digit in turn its index among
// the digits, then y, x and the direction θ, each uniform (a 53-bit
// fraction of one Uint64).
func paths(ds []Digit, seed uint64, i int) [NumDigits]path {
	rng := rand.NewPCG(seed, uint64(i))
	u01 := func() float64 { return float64(rng.Uint64()>>11) / (1 << 53) }
	const canvas = Size - DigitSize
	var ps [NumDigits]path
	for d := range ps {
		ps[d].digit = &ds[rng.Uint64()%uint64(len(ds))]
		y, x := u01(), u01()
		theta := u01() * 2 * math.Pi
		vy, vx := math.Sin(theta), math.Cos(theta)
		for t := 0; t < Length; t++ {
			y += vy * step
			x += vx * step
			if x <= 0 {
				x, vx = 0, -vx
			}
			if x >= 1 {
				x, vx = 1, -vx
			}
			if y <= 0 {
				y, vy = 0, -vy
			}
			if y >= 1 {
				y, vy = 1, -vy
			}
			ps[d].top[t], ps[d].left[t] = int(canvas*y), int(canvas*x)
		}
	}
	return ps
}

// Split returns the input (the first InputLength frames) and the target
// (the rest) of sequences (n, T, ...) as two new tensors.
func Split(seqs *tensor.Tensor) (input, target *tensor.Tensor, err error) {
	if len(seqs.Shape) < 2 || seqs.Shape[1] <= InputLength || len(seqs.Data) != seqs.NumElements() {
		return nil, nil, fmt.Errorf("movingmnist: sequences of shape %s: want (N, T > %d, ...) float values", tensor.ShapeString(seqs.Shape), InputLength)
	}
	n, T := seqs.Shape[0], seqs.Shape[1]
	frame := tensor.Numel(seqs.Shape[2:])
	inShape := append([]int{n, InputLength}, seqs.Shape[2:]...)
	tgShape := append([]int{n, T - InputLength}, seqs.Shape[2:]...)
	input, target = tensor.New(inShape...), tensor.New(tgShape...)
	for i := 0; i < n; i++ {
		src := seqs.Data[i*T*frame:][:T*frame]
		copy(input.Data[i*InputLength*frame:], src[:InputLength*frame])
		copy(target.Data[i*(T-InputLength)*frame:], src[InputLength*frame:])
	}
	return input, target, nil
}
