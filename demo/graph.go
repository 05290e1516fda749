package demo

import (
	"github.com/convlstm-go/convlstm-go/frames"
	"github.com/convlstm-go/convlstm-go/model"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// GraphModel runs graph m as a Model: the demo's (B, T, H, W) frames laid
// out for the graph's first input (frames.ForGraph), the first output
// brought back from that layout.
func GraphModel(m *model.Model) Model {
	in, out := m.Inputs()[0], m.Outputs()[0]
	return func(x *tensor.Tensor) (*tensor.Tensor, error) {
		if len(x.Shape) == 4 { // Run's (B, T, H, W) as frames (B, T, 1, H, W)
			x = tensor.FromFloats(x.Data, x.Shape[0], x.Shape[1], 1, x.Shape[2], x.Shape[3])
		}
		xin, layout, err := frames.ForGraph(x, in.Dims)
		if err != nil {
			return nil, err
		}
		res, err := m.Run(map[string]*tensor.Tensor{in.Name: xin}, model.RunOptions{})
		if err != nil {
			return nil, err
		}
		return frames.FromLayout(res[out.Name], layout)
	}
}
