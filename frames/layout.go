package frames

import (
	"fmt"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// Layout is how a model lays out a batch of frame sequences.
type Layout int

const (
	BTCHW Layout = iota // (B, T, C, H, W): PyTorch's convention and the native runtime's
	BTHW                // (B, T, H, W): one channel, squeezed
	BTHWC               // (B, T, H, W, C): channels last
)

func (l Layout) String() string {
	switch l {
	case BTCHW:
		return "(B, T, C, H, W)"
	case BTHW:
		return "(B, T, H, W)"
	case BTHWC:
		return "(B, T, H, W, C)"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// ChooseLayout decides how frames of C channels are laid out for a graph
// input whose dims are given (nil: rank unknown; -1: a dynamic dim):
//
//   - rank unknown: (B, T, C, H, W).
//   - rank 4: (B, T, H, W); the frames must have one channel.
//   - rank 5: a static 1 or 3 at dim 2 and not at dim 4 means channels
//     first, the reverse channels last; when both or neither are, a static
//     dim equal to C decides (dim 2 first); when nothing does (all dynamic,
//     or both equal C), channels first, PyTorch's convention.
//
// Any other rank is an error. ChooseLayout only picks; ForGraph also checks
// the static dims against the frames.
func ChooseLayout(dims []int, C int) (Layout, error) {
	switch len(dims) {
	case 0:
		if dims == nil {
			return BTCHW, nil
		}
	case 4:
		return BTHW, nil
	case 5:
		chanLike := func(d int) bool { return d == 1 || d == 3 }
		first, last := chanLike(dims[2]), chanLike(dims[4])
		switch {
		case first && !last:
			return BTCHW, nil
		case last && !first:
			return BTHWC, nil
		case dims[2] == C:
			return BTCHW, nil
		case dims[4] == C:
			return BTHWC, nil
		}
		return BTCHW, nil
	}
	return 0, fmt.Errorf("frames: the graph's input has rank %d %s; frames go to rank 4 (B, T, H, W) or 5 ((B, T, C, H, W) or (B, T, H, W, C))", len(dims), dimsString(dims))
}

// ForGraph lays (B, T, C, H, W) frames out for a graph input with the
// given dims (see ChooseLayout) and checks every static dim against them.
// The result shares nothing with x.
func ForGraph(x *tensor.Tensor, dims []int) (*tensor.Tensor, Layout, error) {
	if len(x.Shape) != 5 {
		return nil, 0, fmt.Errorf("frames: frames of shape %s: want (B, T, C, H, W)", tensor.ShapeString(x.Shape))
	}
	B, T, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], x.Shape[4]
	l, err := ChooseLayout(dims, C)
	if err != nil {
		return nil, 0, err
	}
	var want []int
	switch l {
	case BTCHW:
		want = []int{B, T, C, H, W}
	case BTHW:
		if C != 1 {
			return nil, 0, fmt.Errorf("frames: the graph's input %s is (B, T, H, W), one channel, but the frames have %d; convert them to grey (channels 1)", dimsString(dims), C)
		}
		want = []int{B, T, H, W}
	case BTHWC:
		want = []int{B, T, H, W, C}
	}
	if dims != nil {
		names := map[Layout][]string{BTCHW: {"B", "T", "C", "H", "W"}, BTHW: {"B", "T", "H", "W"}, BTHWC: {"B", "T", "H", "W", "C"}}[l]
		for i, d := range dims {
			if d >= 0 && d != want[i] {
				hint := ""
				if names[i] == "C" && (d == 1 || d == 3) {
					hint = fmt.Sprintf("; convert the frames to %d channel(s)", d)
				}
				return nil, 0, fmt.Errorf("frames: the graph's input %s, read as %s, wants %s = %d; the frames give %d (frames %s)%s",
					dimsString(dims), l, names[i], d, want[i], tensor.ShapeString(x.Shape), hint)
			}
		}
	}
	y := tensor.New(want...)
	if l != BTHWC {
		copy(y.Data, x.Data)
		return y, l, nil
	}
	channelsLast(y.Data, x.Data, B*T, C, H*W, true)
	return y, l, nil
}

// channelsLast converts n frames of c channels of plane values each between
// channels-first (C, H, W) and channels-last (H, W, C): to channels-last
// when toLast, else back.
func channelsLast(dst, src []float32, n, c, plane int, toLast bool) {
	for s := 0; s < n; s++ {
		f, t := src[s*c*plane:][:c*plane], dst[s*c*plane:][:c*plane]
		for ch := 0; ch < c; ch++ {
			for i := 0; i < plane; i++ {
				if toLast {
					t[i*c+ch] = f[ch*plane+i]
				} else {
					t[ch*plane+i] = f[i*c+ch]
				}
			}
		}
	}
}

// FromLayout is ForGraph's inverse for a model's output in layout l: it
// returns (B, T, C, H, W), or (B, T, H, W) as it is for BTHW (the writers
// take either).
func FromLayout(y *tensor.Tensor, l Layout) (*tensor.Tensor, error) {
	if l != BTHWC {
		return y, nil
	}
	if len(y.Shape) != 5 {
		return nil, fmt.Errorf("frames: a channels-last output of shape %s: want (B, T, H, W, C)", tensor.ShapeString(y.Shape))
	}
	B, T, H, W, C := y.Shape[0], y.Shape[1], y.Shape[2], y.Shape[3], y.Shape[4]
	if len(y.Data) != y.NumElements() {
		return nil, fmt.Errorf("frames: an output of shape %s holds %d float values", tensor.ShapeString(y.Shape), len(y.Data))
	}
	x := tensor.New(B, T, C, H, W)
	channelsLast(x.Data, y.Data, B*T, C, H*W, false)
	return x, nil
}

func dimsString(dims []int) string {
	if dims == nil {
		return "(rank unknown)"
	}
	s := "("
	for i, d := range dims {
		if i > 0 {
			s += ", "
		}
		if d < 0 {
			s += "?"
		} else {
			s += fmt.Sprint(d)
		}
	}
	return s + ")"
}
