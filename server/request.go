package server

import (
	"strconv"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// InferRequest is one inference as both transports hand it to the server:
// decoded tensors and parsed parameters, nothing protocol-specific.
type InferRequest struct {
	Model, Version, ID string
	Params             map[string]Param
	Inputs             []Input
	// Outputs are the outputs wanted, in order; none means all.
	Outputs []OutputRequest
}

// Input is one named input tensor and the datatype it was sent as.
type Input struct {
	Name     string
	Datatype string
	Tensor   *tensor.Tensor
}

// OutputRequest names a wanted output; Binary asks for it in the binary
// tensor data extension's form (REST only; gRPC always sends raw bytes).
type OutputRequest struct {
	Name   string
	Binary bool
}

// InferResponse is the answer, outputs in the order requested (or the
// model's order).
type InferResponse struct {
	Model, Version, ID string
	Outputs            []Output
}

// Output is one output tensor.
type Output struct {
	Name     string
	Datatype string
	Tensor   *tensor.Tensor
	Binary   bool
}

// ParamKind is the type of a request parameter's value.
type ParamKind int

// The parameter kinds of the protocol (gRPC adds double and uint64).
const (
	ParamBool ParamKind = iota + 1
	ParamInt
	ParamUint
	ParamFloat
	ParamString
)

// Param is a request or tensor parameter value.
type Param struct {
	Kind ParamKind
	Bool bool
	Int  int64
	Uint uint64
	Flt  float64
	Str  string
}

func (p Param) String() string {
	switch p.Kind {
	case ParamBool:
		return strconv.FormatBool(p.Bool)
	case ParamInt:
		return strconv.FormatInt(p.Int, 10)
	case ParamUint:
		return strconv.FormatUint(p.Uint, 10)
	case ParamFloat:
		return strconv.FormatFloat(p.Flt, 'g', -1, 64)
	}
	return strconv.Quote(p.Str)
}

// boolParam reads a boolean parameter (false when absent).
func boolParam(ps map[string]Param, name string) (bool, error) {
	p, ok := ps[name]
	if !ok {
		return false, nil
	}
	if p.Kind != ParamBool {
		return false, errorf(BadRequest, "parameter %q must be a boolean, got %s", name, p)
	}
	return p.Bool, nil
}

// seqParams are a request's sequence parameters.
type seqParams struct {
	key        string // "" when the request is not part of a sequence
	start, end bool
}

// sequenceOf parses sequence_id, sequence_start and sequence_end as
// Triton's sequence batcher reads them: a non-zero unsigned integer or a
// non-empty string names the sequence; 0 or "" means none.
func sequenceOf(ps map[string]Param) (seqParams, error) {
	var sp seqParams
	var err error
	if sp.start, err = boolParam(ps, "sequence_start"); err != nil {
		return sp, err
	}
	if sp.end, err = boolParam(ps, "sequence_end"); err != nil {
		return sp, err
	}
	if p, ok := ps["sequence_id"]; ok {
		switch p.Kind {
		case ParamUint:
			if p.Uint != 0 {
				sp.key = "u:" + strconv.FormatUint(p.Uint, 10)
			}
		case ParamInt:
			if p.Int < 0 {
				return sp, errorf(BadRequest, "parameter \"sequence_id\" must be an unsigned integer or a string, got %d", p.Int)
			}
			if p.Int != 0 {
				sp.key = "u:" + strconv.FormatInt(p.Int, 10)
			}
		case ParamString:
			if len(p.Str) > 256 {
				return sp, errorf(BadRequest, "parameter \"sequence_id\" is %d bytes long; at most 256", len(p.Str))
			}
			if p.Str != "" {
				sp.key = "s:" + p.Str
			}
		default:
			return sp, errorf(BadRequest, "parameter \"sequence_id\" must be an unsigned integer or a string, got %s", p)
		}
	}
	if sp.key == "" && (sp.start || sp.end) {
		return sp, errorf(BadRequest, "sequence_start and sequence_end need a non-zero sequence_id")
	}
	return sp, nil
}

// seqName is a sequence key as users wrote it, for messages.
func seqName(key string) string {
	if len(key) > 2 && key[:2] == "s:" {
		return strconv.Quote(key[2:])
	}
	if len(key) > 2 {
		return key[2:]
	}
	return key
}
