package export

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/convlstm-go/convlstm-go/convlstm"
)

// SafetensorsOptions tune the safetensors writer.
type SafetensorsOptions struct {
	// Metadata adds string entries to __metadata__ (the gate order and the
	// architecture are always written, under convlstm.MetaGates and
	// convlstm.MetaConfig).
	Metadata map[string]string
}

// Safetensors writes m's state_dict under PyTorch's names
// (cell_list.{l}.conv.weight and .bias, as float32, weights in the model's
// gate order, exactly as stored) so that load_state_dict into the reference
// ConvLSTM accepts it, with the gate order and the architecture in
// __metadata__.
func Safetensors(m *convlstm.Model, w io.Writer, opts SafetensorsOptions) error {
	if err := m.Validate(); err != nil {
		return err
	}
	type entry struct {
		name  string
		shape []int
		data  []float32
	}
	var es []entry
	for l, ly := range m.Layers {
		es = append(es, entry{fmt.Sprintf("cell_list.%d.conv.weight", l), []int{4 * ly.HiddenDim, ly.InputDim + ly.HiddenDim, ly.KernelH, ly.KernelW}, ly.Weight})
		if ly.HasBias {
			es = append(es, entry{fmt.Sprintf("cell_list.%d.conv.bias", l), []int{4 * ly.HiddenDim}, ly.Bias})
		}
	}
	meta := map[string]string{"format": "pt"}
	for k, v := range opts.Metadata {
		meta[k] = v
	}
	for k, v := range m.Metadata() { // written last: a caller cannot contradict the weights
		meta[k] = v
	}
	header := map[string]any{"__metadata__": meta}
	off := 0
	for _, e := range es {
		n := 4 * len(e.data)
		header[e.name] = map[string]any{"dtype": "F32", "shape": e.shape, "data_offsets": []int{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(header) // map keys are sorted: deterministic output
	if err != nil {
		return err
	}
	// Pad the header with spaces so the data starts 8-byte aligned, as the
	// reference implementation does.
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(len(hb)))
	if _, err := w.Write(lenb[:]); err != nil {
		return err
	}
	if _, err := w.Write(hb); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for _, e := range es {
		for _, v := range e.data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) >= 1<<16 {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
	}
	_, err = w.Write(buf)
	return err
}
