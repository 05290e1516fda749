package loader

import (
	"bytes"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// ArrayName is the name a lone .npy array gets in a Checkpoint.
const ArrayName = "array"

// LoadCheckpoint reads any file of named tensors — a PyTorch .pt/.pth (zip
// or legacy), safetensors, an .npz, or a lone .npy (named ArrayName) — told
// apart by content, into a Checkpoint. An ONNX model is not a set of named
// tensors: it is refused with an *UnsupportedError (read it with LoadONNX).
func LoadCheckpoint(path string) (*Checkpoint, error) {
	return readCheckpoint(path, nil, true)
}

// InspectCheckpoint is LoadCheckpoint reading only the structure: names,
// shapes, dtypes, metadata and what was skipped, every size checked against
// the file, no tensor values (Data and Ints are nil).
func InspectCheckpoint(path string) (*Checkpoint, error) {
	return readCheckpoint(path, nil, false)
}

// LoadCheckpointBytes is LoadCheckpoint over a file held in memory; name
// is used in errors.
func LoadCheckpointBytes(name string, data []byte) (*Checkpoint, error) {
	return readCheckpoint(name, data, true)
}

// InspectCheckpointBytes is InspectCheckpoint over a file held in memory.
func InspectCheckpointBytes(name string, data []byte) (*Checkpoint, error) {
	return readCheckpoint(name, data, false)
}

// readCheckpoint is the one switch over the formats of named tensors;
// data == nil reads the file at name.
func readCheckpoint(name string, data []byte, withData bool) (*Checkpoint, error) {
	var format string
	var err error
	if data == nil {
		format, err = DetectFile(name)
	} else {
		format, err = DetectBytes(name, data)
	}
	if err != nil {
		return nil, err
	}
	switch format {
	case FormatPTZip, FormatPTLegacy:
		if data != nil {
			return loadPT(name, bytes.NewReader(data), int64(len(data)), withData)
		}
		return loadPTFile(name, withData)
	case FormatSafetensors:
		if data != nil {
			return decodeSafetensors(name, bytes.NewReader(data), int64(len(data)), withData)
		}
		return safetensorsFile(name, withData)
	case FormatNPZ:
		var ts map[string]*tensor.Tensor
		var names []string
		if data != nil {
			ts, names, err = npzRead(name, bytes.NewReader(data), int64(len(data)), withData)
		} else if withData {
			ts, names, err = ReadNPZ(name)
		} else {
			ts, names, err = InspectNPZ(name)
		}
		if err != nil {
			return nil, err
		}
		return &Checkpoint{File: name, Format: format, Names: names, Tensors: ts}, nil
	case FormatNPY:
		var t *tensor.Tensor
		if data != nil {
			t, err = npyDecode(name, "", bytes.NewReader(data), int64(len(data)), withData)
		} else {
			t, err = npyFile(name, withData)
		}
		if err != nil {
			return nil, err
		}
		return &Checkpoint{File: name, Format: format, Names: []string{ArrayName}, Tensors: map[string]*tensor.Tensor{ArrayName: t}}, nil
	}
	return nil, &UnsupportedError{File: name, Msg: "an ONNX model is a graph, not a set of named tensors (its initialisers are read with LoadONNX)"}
}
