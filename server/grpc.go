package server

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/convlstm-go/convlstm-go/server/inferencepb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// grpcService is the gRPC front end; like the REST one it only
// translates between the protocol's messages and Server.Infer.
type grpcService struct {
	pb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

// maxStreamInflight bounds the requests of one ModelStreamInfer stream
// being served at once; the stream stops reading past it.
const maxStreamInflight = 64

// NewGRPCServer returns a gRPC server with the inference service
// registered, messages bounded by MaxBody.
func (s *Server) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(min(s.cfg.MaxBody, math.MaxInt32))),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.cfg.IdleTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}, opts...)
	g := grpc.NewServer(opts...)
	pb.RegisterGRPCInferenceServiceServer(g, &grpcService{s: s})
	return g
}

func grpcError(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(kindOf(err).grpcCode(), message(err))
}

func (g *grpcService) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: g.s.Live()}, nil
}

func (g *grpcService) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: g.s.Ready()}, nil
}

func (g *grpcService) ModelReady(_ context.Context, r *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	ok, err := g.s.ModelReady(r.GetName(), r.GetVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	return &pb.ModelReadyResponse{Ready: ok}, nil
}

func (g *grpcService) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	m := g.s.Metadata()
	return &pb.ServerMetadataResponse{Name: m.Name, Version: m.Version, Extensions: m.Extensions}, nil
}

func (g *grpcService) ModelMetadata(_ context.Context, r *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	info, err := g.s.ModelMetadata(r.GetName(), r.GetVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &pb.ModelMetadataResponse{Name: info.Name, Versions: info.Versions, Platform: info.Platform}
	for _, t := range info.Inputs {
		resp.Inputs = append(resp.Inputs, &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	for _, t := range info.Outputs {
		resp.Outputs = append(resp.Outputs, &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	return resp, nil
}

func (g *grpcService) ModelInfer(ctx context.Context, r *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	resp, err := g.infer(ctx, r)
	return resp, grpcError(err)
}

func (g *grpcService) infer(ctx context.Context, r *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	return g.finish(g.start(ctx, r))
}

// call is a gRPC request on its way through the server.
type call struct {
	r     *pb.ModelInferRequest
	begin time.Time
	p     *pending
	err   error
}

// start decodes and submits a request (its place in its sequence fixed).
func (g *grpcService) start(ctx context.Context, r *pb.ModelInferRequest) *call {
	c := &call{r: r, begin: time.Now()}
	g.s.metrics.inflight.WithLabelValues("grpc").Inc()
	req, err := g.s.decodeGRPC(r)
	if err == nil {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(strings.ToLower(SequenceHeader)); len(v) > 0 {
				err = checkSequenceHeader(v[0], req.Params)
			}
		}
	}
	if err == nil {
		if g.s.closing.Load() {
			err = errorf(Unavailable, "the server is shutting down")
		} else {
			c.p, err = g.s.submit(ctx, req)
		}
	}
	c.err = err
	return c
}

// finish waits for a started call's answer and translates it.
func (g *grpcService) finish(c *call) (*pb.ModelInferResponse, error) {
	defer g.s.metrics.inflight.WithLabelValues("grpc").Dec()
	var resp *InferResponse
	err := c.err
	if err == nil {
		resp, err = c.p.wait()
	}
	g.s.observe(c.r.GetModelName(), "grpc", err, c.begin)
	if err != nil {
		return nil, err
	}
	out := &pb.ModelInferResponse{ModelName: resp.Model, ModelVersion: resp.Version, Id: resp.ID}
	for _, o := range resp.Outputs {
		shape := make([]int64, len(o.Tensor.Shape))
		for i, d := range o.Tensor.Shape {
			shape[i] = int64(d)
		}
		out.Outputs = append(out.Outputs, &pb.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: o.Datatype, Shape: shape})
		out.RawOutputContents = append(out.RawOutputContents, rawBytes(o.Tensor))
	}
	return out, nil
}

// ModelStreamInfer serves Triton's bidirectional stream: one response per
// request (errors as error_message, with the request's id), several
// requests served at once, and the steps of one sequence answered in the
// order they were sent.
func (g *grpcService) ModelStreamInfer(stream pb.GRPCInferenceService_ModelStreamInferServer) error {
	ctx := stream.Context()
	var sendMu sync.Mutex
	var sendErr error
	sem := make(chan struct{}, maxStreamInflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	// prev[key] is closed once the previous request of that sequence has
	// been answered.
	prev := map[string]chan struct{}{}
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		var wait chan struct{}
		mine := make(chan struct{})
		if key := streamSeqKey(r); key != "" {
			wait = prev[key]
			prev[key] = mine
			if len(prev) > 4*maxStreamInflight {
				for k, c := range prev {
					select {
					case <-c:
						delete(prev, k)
					default:
					}
				}
			}
		}
		// Submitted here, in the order received, so the scheduler applies
		// a sequence's steps in stream order; answered concurrently.
		c := g.start(ctx, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer close(mine)
			resp, err := g.finish(c)
			if wait != nil {
				// The scheduler applies this sequence's steps in the order
				// they were received here; wait so the answers go out in
				// that order too.
				select {
				case <-wait:
				case <-ctx.Done():
					return
				}
			}
			msg := &pb.ModelStreamInferResponse{InferResponse: resp}
			if err != nil {
				msg = &pb.ModelStreamInferResponse{ErrorMessage: message(err), InferResponse: &pb.ModelInferResponse{ModelName: r.GetModelName(), ModelVersion: r.GetModelVersion(), Id: r.GetId()}}
			}
			sendMu.Lock()
			defer sendMu.Unlock()
			if sendErr == nil {
				sendErr = stream.Send(msg)
			}
		}()
	}
}

// streamSeqKey is the sequence a stream request belongs to ("" if none),
// for ordering answers; malformed ids are left to Infer to refuse.
func streamSeqKey(r *pb.ModelInferRequest) string {
	ps, err := grpcParams("request", r.GetParameters())
	if err != nil {
		return ""
	}
	sp, err := sequenceOf(ps)
	if err != nil {
		return ""
	}
	if sp.key == "" {
		return ""
	}
	return r.GetModelName() + "\x00" + sp.key
}

func grpcParams(where string, m map[string]*pb.InferParameter) (map[string]Param, error) {
	ps := map[string]Param{}
	for k, v := range m {
		switch c := v.GetParameterChoice().(type) {
		case *pb.InferParameter_BoolParam:
			ps[k] = Param{Kind: ParamBool, Bool: c.BoolParam}
		case *pb.InferParameter_Int64Param:
			ps[k] = Param{Kind: ParamInt, Int: c.Int64Param}
		case *pb.InferParameter_Uint64Param:
			ps[k] = Param{Kind: ParamUint, Uint: c.Uint64Param}
		case *pb.InferParameter_DoubleParam:
			ps[k] = Param{Kind: ParamFloat, Flt: c.DoubleParam}
		case *pb.InferParameter_StringParam:
			ps[k] = Param{Kind: ParamString, Str: c.StringParam}
		default:
			return nil, errorf(BadRequest, "%s parameter %q has no value", where, k)
		}
	}
	return ps, nil
}

// decodeGRPC turns a ModelInferRequest into an InferRequest: inputs from
// raw_input_contents (all of them) or from typed contents.
func (s *Server) decodeGRPC(r *pb.ModelInferRequest) (*InferRequest, error) {
	ps, err := grpcParams("request", r.GetParameters())
	if err != nil {
		return nil, err
	}
	req := &InferRequest{Model: r.GetModelName(), Version: r.GetModelVersion(), ID: r.GetId(), Params: ps}
	raw := r.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(r.GetInputs()) {
		return nil, errorf(BadRequest, "%d raw_input_contents for %d inputs; give every input's bytes there, or none", len(raw), len(r.GetInputs()))
	}
	if len(r.GetInputs()) == 0 {
		return nil, errorf(BadRequest, "the request has no inputs")
	}
	for i, in := range r.GetInputs() {
		if in.GetName() == "" {
			return nil, errorf(BadRequest, "an input has no name")
		}
		dt, err := dtypeOf(in.GetDatatype())
		if err != nil {
			return nil, errorf(BadRequest, "input %q: %s", in.GetName(), message(err))
		}
		shape, err := checkShape(in.GetName(), in.GetShape(), s.cfg.MaxBody)
		if err != nil {
			return nil, err
		}
		var t *tensor.Tensor
		if len(raw) > 0 {
			if in.GetContents() != nil {
				return nil, errorf(BadRequest, "input %q has both contents and raw_input_contents", in.GetName())
			}
			t, err = decodeRaw(in.GetName(), raw[i], dt, shape)
		} else {
			t, err = decodeContents(in.GetName(), in.GetContents(), dt, shape)
		}
		if err != nil {
			return nil, err
		}
		req.Inputs = append(req.Inputs, Input{Name: in.GetName(), Datatype: in.GetDatatype(), Tensor: t})
	}
	for _, o := range r.GetOutputs() {
		req.Outputs = append(req.Outputs, OutputRequest{Name: o.GetName()})
	}
	return req, nil
}

// decodeContents reads an input from the typed field its datatype uses.
func decodeContents(name string, c *pb.InferTensorContents, dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	n := tensor.Numel(shape)
	t := &tensor.Tensor{Shape: shape, DType: dt}
	count := -1
	var field string
	var err error
	switch dt {
	case tensor.Float32:
		field, count = "fp32_contents", len(c.GetFp32Contents())
		if count == n {
			t.Data = append([]float32(nil), c.GetFp32Contents()...)
		}
	case tensor.Float64:
		field, count = "fp64_contents", len(c.GetFp64Contents())
		if count == n {
			t.Data = make([]float32, n)
			for i, v := range c.GetFp64Contents() {
				t.Data[i] = float32(v)
			}
		}
	case tensor.Bool:
		field, count = "bool_contents", len(c.GetBoolContents())
		if count == n {
			t.Ints = make([]int64, n)
			for i, v := range c.GetBoolContents() {
				if v {
					t.Ints[i] = 1
				}
			}
		}
	case tensor.Int8, tensor.Int16, tensor.Int32:
		field, count = "int_contents", len(c.GetIntContents())
		if count == n {
			if t.Ints, err = narrowInts(name, c.GetIntContents(), dt); err != nil {
				return nil, err
			}
		}
	case tensor.Int64:
		field, count = "int64_contents", len(c.GetInt64Contents())
		if count == n {
			t.Ints = append([]int64(nil), c.GetInt64Contents()...)
		}
	case tensor.Uint8, tensor.Uint16, tensor.Uint32:
		field, count = "uint_contents", len(c.GetUintContents())
		if count == n {
			if t.Ints, err = narrowInts(name, c.GetUintContents(), dt); err != nil {
				return nil, err
			}
		}
	case tensor.Uint64:
		field, count = "uint64_contents", len(c.GetUint64Contents())
		if count == n {
			t.Ints = make([]int64, n)
			for i, v := range c.GetUint64Contents() {
				if v > math.MaxInt64 {
					return nil, errorf(BadRequest, "input %q: %d at flat index %d is over 2^63-1", name, v, i)
				}
				t.Ints[i] = int64(v)
			}
		}
	default:
		return nil, errorf(BadRequest, "input %q: %s has no typed contents field; send it in raw_input_contents", name, dt)
	}
	if count != n {
		return nil, errorf(BadRequest, "input %q: %d values in %s for shape %s (%d elements)", name, count, field, tensor.ShapeString(shape), n)
	}
	if t.Data == nil && dt.IsFloat() {
		t.Data = []float32{}
	}
	if t.Ints == nil && !dt.IsFloat() {
		t.Ints = []int64{}
	}
	return t, nil
}

// narrowInts widens the 32-bit contents of a narrower integer datatype,
// refusing a value out of that datatype's range.
func narrowInts[E int32 | uint32](name string, vals []E, dt tensor.DType) ([]int64, error) {
	out := make([]int64, len(vals))
	for i, v := range vals {
		if !intFits(int64(v), dt) {
			return nil, errorf(BadRequest, "input %q: %d at flat index %d is out of range for %s", name, v, i, dt)
		}
		out[i] = int64(v)
	}
	return out, nil
}
