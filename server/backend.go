package server

import (
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Backend is one loaded model as the scheduler sees it. It is the only
// place that calls an engine: one adapter file per engine (native.go for
// ConvLSTM weights run by package runtime, onnx.go for ONNX graphs run by
// package graph) implements it, so a change of engine API touches only
// that file. The scheduler never calls Run concurrently on one Backend.
type Backend interface {
	// Metadata describes the model's inputs and outputs.
	Metadata() ModelMetadata
	// Prepare checks one request's inputs against the model (names,
	// datatypes, ranks, fixed dimensions, sizes) and says how it may be
	// batched. mode tells whether it starts or continues a sequence.
	Prepare(inputs map[string]*tensor.Tensor, mode Mode) (*Prepared, error)
	// Fits checks that a step continuing a sequence matches the state the
	// sequence holds (batch and image size).
	Fits(p *Prepared, s State) error
	// Run runs prepared requests that share one non-empty Key as one
	// forward pass (or a single request with any key), each from its
	// state (nil: zeros, or the state carried in its inputs). It returns
	// one result per work item, in order.
	Run(items []Work) []Result
	// Close releases the engine (worker threads).
	Close() error
}

// ModelMetadata is what GET /v2/models/{name} reports.
type ModelMetadata struct {
	Platform string
	Inputs   []TensorMetadata
	Outputs  []TensorMetadata
	// Stateful: the model carries a state between steps, so it can serve
	// sequences (sequence_id/sequence_start/sequence_end).
	Stateful bool
}

// TensorMetadata is one input or output: its protocol datatype (FP32...)
// and shape, -1 for a dimension of any size.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
	// Optional inputs may be left out of a request.
	Optional bool `json:"-"`
}

// Mode is how a request relates to a sequence.
type Mode int

const (
	// Stateless: a request on its own. Native models take optional state
	// inputs and start from zeros without them.
	Stateless Mode = iota
	// SequenceStart begins a sequence, from zeros or from the state
	// carried in the request's inputs.
	SequenceStart
	// SequenceStep continues a live sequence from the state the server
	// holds; the request may not carry state inputs.
	SequenceStep
)

// Prepared is a request checked by a Backend.
type Prepared struct {
	// Key: requests with the same non-empty key may be stacked into one
	// forward pass. "" means never batched.
	Key string
	// Rows is the batch size B the request contributes.
	Rows int
	// StateBytes is the memory the request's final state takes (what a
	// sequence keeps between steps).
	StateBytes int64
	// WorkBytes estimates the memory the request's forward pass needs.
	WorkBytes int64
	// Inputs are the request's tensors, converted to what the engine takes.
	Inputs map[string]*tensor.Tensor
}

// State is the opaque state a sequence keeps between steps.
type State interface {
	// Bytes is the memory the state holds.
	Bytes() int64
}

// Work is one request of a batch, with the state it starts from (nil for
// zeros or for the state in its inputs).
type Work struct {
	*Prepared
	State State
}

// Result is one request's outputs (every output of the model) and the
// state after it.
type Result struct {
	Outputs map[string]*tensor.Tensor
	State   State
	Err     error
}
