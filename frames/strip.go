package frames

import (
	"fmt"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// StripOptions says how Strip lines sequences up.
type StripOptions struct {
	// Future says the prediction continues the input (a model that reads
	// the first frames and predicts the next ones); it is implied when the
	// input and the prediction differ in length. Without it, prediction
	// step t belongs beside input step t.
	Future bool
	// PixelMax is the model's white; the separator is drawn at half of it
	// (mid-grey once written). 0 means 1.
	PixelMax float64
}

// Strip lays sequences side by side in each frame, Gap mid-grey columns
// apart, for writing as one animation. Each argument is (B, T, C, H, W) or
// (B, T, H, W); truth may be nil. All share B; grey ones are widened to
// RGB if another is RGB; shorter panels are padded below with black.
//
// Aligned (T_in = T_pred, not Future): T_in frames, frame t showing
// input_t | prediction_t | truth_t.
//
// Future: T_in + T_pred frames in two panels, prediction | truth. During
// the first T_in frames both panels show the input; then the left panel
// shows the prediction and the right one the truth, so that each panel
// plays as one continuous clip: what the model saw, then what it predicted
// (left) or what really happened (right). Without truth the strip is the
// single panel input-then-prediction. truth may have T_pred frames, or
// T_in + T_pred (a whole sequence, of which the last T_pred are used).
func Strip(input, pred, truth *tensor.Tensor, opt StripOptions) (*tensor.Tensor, error) {
	pm := opt.PixelMax
	if pm == 0 {
		pm = 1
	}
	in, err := view(input, "input")
	if err != nil {
		return nil, err
	}
	pr, err := view(pred, "prediction")
	if err != nil {
		return nil, err
	}
	all := []panel{in, pr}
	var tr panel
	if truth != nil {
		if tr, err = view(truth, "truth"); err != nil {
			return nil, err
		}
		all = append(all, tr)
	}
	B, C, H := in.B, 1, 0
	for _, p := range all {
		if p.B != B {
			return nil, fmt.Errorf("frames: strip: the %s has %d batch items, the input %d", p.name, p.B, B)
		}
		if p.C != 1 && p.C != 3 {
			return nil, fmt.Errorf("frames: strip: the %s has %d channels; choose one channel first (pictures take 1 or 3)", p.name, p.C)
		}
		C, H = max(C, p.C), max(H, p.H)
	}
	future := opt.Future || in.T != pr.T

	// Each output frame is a row of (panel, step) cells.
	type cell struct {
		p panel
		t int
	}
	var rows [][]cell
	if !future {
		if truth != nil && tr.T != in.T {
			return nil, fmt.Errorf("frames: strip: the truth has %d steps, the input and prediction %d", tr.T, in.T)
		}
		for t := 0; t < in.T; t++ {
			row := []cell{{in, t}, {pr, t}}
			if truth != nil {
				row = append(row, cell{tr, t})
			}
			rows = append(rows, row)
		}
	} else {
		skip := 0
		if truth != nil {
			switch tr.T {
			case pr.T:
			case in.T + pr.T:
				skip = in.T
			default:
				return nil, fmt.Errorf("frames: strip: the truth has %d steps; want the prediction's %d, or %d (input and prediction)", tr.T, pr.T, in.T+pr.T)
			}
		}
		for t := 0; t < in.T; t++ {
			row := []cell{{in, t}}
			if truth != nil {
				row = append(row, cell{in, t})
			}
			rows = append(rows, row)
		}
		for t := 0; t < pr.T; t++ {
			row := []cell{{pr, t}}
			if truth != nil {
				row = append(row, cell{tr, skip + t})
			}
			rows = append(rows, row)
		}
	}

	// Panel widths: the widest sequence that ever sits in each column.
	ncol := len(rows[0])
	widths := make([]int, ncol)
	for _, row := range rows {
		for k, c := range row {
			widths[k] = max(widths[k], c.p.W)
		}
	}
	W := (ncol - 1) * Gap
	for _, w := range widths {
		W += w
	}
	if W > MaxSide || H > MaxSide {
		return nil, fmt.Errorf("frames: strip: %d×%d frames, more than %d pixels per side", W, H, MaxSide)
	}
	T := len(rows)
	out := tensor.New(B, T, C, H, W)
	sep := float32(pm / 2)
	for b := 0; b < B; b++ {
		for t, row := range rows {
			x0 := 0
			for k, c := range row {
				for ch := 0; ch < C; ch++ {
					dst := out.Data[((b*T+t)*C+ch)*H*W:][:H*W]
					if k > 0 {
						for y := 0; y < H; y++ {
							for x := x0 - Gap; x < x0; x++ {
								dst[y*W+x] = sep
							}
						}
					}
					src := c.p.plane(b, c.t, min(ch, c.p.C-1))
					for y := 0; y < c.p.H; y++ {
						copy(dst[y*W+x0:y*W+x0+c.p.W], src[y*c.p.W:(y+1)*c.p.W])
					}
				}
				x0 += widths[k] + Gap
			}
		}
	}
	return out, nil
}

// panel is a (B, T, C, H, W) view of a strip argument.
type panel struct {
	name          string
	B, T, C, H, W int
	data          []float32
}

func view(t *tensor.Tensor, name string) (panel, error) {
	B, T, C, H, W, err := dims5(t)
	if err != nil {
		return panel{}, fmt.Errorf("frames: strip: the %s: %v", name, err)
	}
	return panel{name, B, T, C, H, W, t.Data}, nil
}

func (p panel) plane(b, t, c int) []float32 {
	n := p.H * p.W
	return p.data[((b*p.T+t)*p.C+c)*n:][:n]
}

// SelectChannel returns channel k (from 0) of y, (B, T, C, H, W) or
// (B, T, H, W), as (B, T, 1, H, W).
func SelectChannel(y *tensor.Tensor, k int) (*tensor.Tensor, error) {
	B, T, C, H, W, err := dims5(y)
	if err != nil {
		return nil, fmt.Errorf("frames: %v", err)
	}
	if k < 0 || k >= C {
		return nil, fmt.Errorf("frames: channel %d asked of a tensor %s with %d", k, tensor.ShapeString(y.Shape), C)
	}
	out := tensor.New(B, T, 1, H, W)
	n := H * W
	for s := 0; s < B*T; s++ {
		copy(out.Data[s*n:(s+1)*n], y.Data[(s*C+k)*n:])
	}
	return out, nil
}
