// Package server serves ConvLSTM models over the Open Inference Protocol
// (v2), the protocol of KServe, Triton Inference Server and Seldon MLServer:
// REST (rest.go) and gRPC (grpc.go) front ends that only translate, one
// scheduler per model (sched.go) that owns stateful sequences and dynamic
// batching, and backends (native.go, onnx.go) that run the engines.
//
// Sequences follow Triton's sequence batcher: the request parameters
// sequence_id (unsigned integer or string), sequence_start and sequence_end
// name a stream of steps whose state (every layer's h and c) the server
// keeps between requests; each step continues exactly where the previous
// one stopped, bit for bit as one long forward pass would.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/convlstm-go/convlstm-go/server/inferencepb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Config are a server's limits and timeouts; zero values take the defaults
// documented on each field (those of `convlstm-run serve`).
type Config struct {
	// Name and Version are reported by server metadata (default
	// "convlstm-go" and the module version).
	Name, Version string
	// MaxBody bounds a REST body and a gRPC message (default 64 MiB).
	MaxBody int64
	// MaxRequestMemory bounds the memory one request's forward pass may
	// need (outputs and workspaces, estimated); larger requests get 413
	// (default 1 GiB).
	MaxRequestMemory int64
	// MaxBatch is the most rows stacked into one forward pass (default 1:
	// batching off). Stacking pays for small frames, where a step's fixed
	// costs dominate; at 64×64 with 64 hidden channels today's engine
	// computes a row of a B>1 step no faster than alone (measured: see
	// deploy/README.md), so it is opt-in, as in Triton.
	MaxBatch int
	// BatchDelay is how long a request may wait for others to batch with
	// when the model is idle (default 0: batches form only from requests
	// that arrive while the model is busy).
	BatchDelay time.Duration
	// MaxSequences bounds the live sequences per model (default 1024);
	// MaxStateMemory bounds the memory their states hold (default 2 GiB).
	// A start past either is answered 503.
	MaxSequences   int
	MaxStateMemory int64
	// SequenceIdle frees a sequence after this long without a step
	// (default 60 s).
	SequenceIdle time.Duration
	// MaxQueue bounds the requests waiting per model (default 1024); past
	// it requests are answered 503.
	MaxQueue int
	// RequestTimeout bounds a request from arrival to answer (default
	// 60 s); a request's "timeout" parameter (microseconds, as Triton) or a
	// gRPC deadline may shorten it.
	RequestTimeout time.Duration
	// ReadHeaderTimeout and ReadTimeout bound how long a client may take to
	// send a request's header and whole body (default 10 s and 60 s);
	// WriteTimeout bounds writing the answer after the request was read
	// (default RequestTimeout + 30 s); IdleTimeout closes idle keep-alive
	// connections (default 120 s).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// Registry receives the Prometheus metrics served on /metrics (default
	// a new registry).
	Registry *prometheus.Registry
}

func (c *Config) setDefaults() {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Name == "" {
		c.Name = "convlstm-go"
	}
	if c.Version == "" {
		c.Version = moduleVersion()
	}
	def(&c.MaxBody, 64<<20)
	def(&c.MaxRequestMemory, 1<<30)
	def(&c.MaxStateMemory, 2<<30)
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1
	}
	if c.MaxSequences <= 0 {
		c.MaxSequences = 1024
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 1024
	}
	durs := []struct {
		v *time.Duration
		d time.Duration
	}{{&c.SequenceIdle, 60 * time.Second}, {&c.RequestTimeout, 60 * time.Second}, {&c.ReadHeaderTimeout, 10 * time.Second}, {&c.ReadTimeout, 60 * time.Second}, {&c.IdleTimeout, 120 * time.Second}}
	for _, d := range durs {
		if *d.v <= 0 {
			*d.v = d.d
		}
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = c.RequestTimeout + 30*time.Second
	}
	if c.BatchDelay < 0 {
		c.BatchDelay = 0
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
}

func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// Default ports of `convlstm-run serve` (the ports KServe's v2 runtimes
// use: REST on 8080, gRPC on 8081); deploy/ manifests are tested against
// them.
const (
	DefaultHTTPPort = 8080
	DefaultGRPCPort = 8081
)

// SequenceHeader is the HTTP header (gRPC metadata key, lower-cased) a
// client sets to its sequence_id so that a load balancer hashing on it
// (deploy/: Istio DestinationRule consistentHash) sends every step of a
// sequence to the same replica. When present on a request that has a
// sequence_id, the two must agree.
const SequenceHeader = "X-Sequence-Id"

// Extensions are the protocol extensions the server speaks.
var Extensions = []string{"binary_tensor_data", "sequence", "sequence(string_id)"}

// model is one served model.
type model struct {
	name  string
	be    Backend
	meta  ModelMetadata
	sched *scheduler
}

// Server serves models over REST and gRPC.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	mu       sync.RWMutex
	models   map[string]*model
	expected map[string]bool // declared, not loaded yet

	closing  atomic.Bool
	inflight sync.WaitGroup

	srvMu   sync.Mutex // guards httpSrv and grpcSrv against a Shutdown racing Serve
	httpSrv *http.Server
	grpcSrv *grpc.Server
}

// New returns a server with no models.
func New(cfg Config) *Server {
	cfg.setDefaults()
	return &Server{cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Registry), models: map[string]*model{}, expected: map[string]bool{}}
}

// Config returns the configuration in force (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// Expect declares models that will be added: the server is not ready
// until each of them is.
func (s *Server) Expect(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if s.models[n] == nil {
			s.expected[n] = true
		}
	}
}

// AddModel serves b under name. The server owns b from now on and closes
// it at Shutdown.
func (s *Server) AddModel(name string, b Backend) error {
	if err := validName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.models[name] != nil {
		return fmt.Errorf("server: model %q is already served", name)
	}
	sc := schedConfig{maxBatch: s.cfg.MaxBatch, batchDelay: s.cfg.BatchDelay, maxSequences: s.cfg.MaxSequences, maxStateBytes: s.cfg.MaxStateMemory, sequenceIdle: s.cfg.SequenceIdle, maxQueue: s.cfg.MaxQueue}
	s.models[name] = &model{name: name, be: b, meta: b.Metadata(), sched: newScheduler(name, b, sc, s.metrics, s.log)}
	delete(s.expected, name)
	s.metrics.sequences.WithLabelValues(name).Set(0)
	s.log.Info("model ready", "model", name, "platform", b.Metadata().Platform, "stateful", b.Metadata().Stateful)
	return nil
}

// validName accepts names that are safe in a URL path segment.
func validName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("server: model name %q: want 1 to 128 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') || name == "." || name == ".." {
			return fmt.Errorf("server: model name %q: use letters, digits, '_', '-' and '.'", name)
		}
	}
	return nil
}

// Live reports whether the server answers at all.
func (s *Server) Live() bool { return true }

// Ready reports whether every expected model is loaded and the server is
// not shutting down.
func (s *Server) Ready() bool {
	if s.closing.Load() {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.expected) == 0 && len(s.models) > 0
}

// ServerMetadata is the server's name, version and extensions.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// Metadata returns the server metadata.
func (s *Server) Metadata() ServerMetadata {
	return ServerMetadata{Name: s.cfg.Name, Version: s.cfg.Version, Extensions: Extensions}
}

// ModelInfo is a model's metadata as the protocol reports it.
type ModelInfo struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// Models lists the names of the models served.
func (s *Server) Models() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var names []string
	for n := range s.models {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// lookup finds a model and checks the version ("" or "1": every model is
// served as version 1).
func (s *Server) lookup(name, version string) (*model, error) {
	s.mu.RLock()
	m, expected := s.models[name], s.expected[name]
	s.mu.RUnlock()
	if m == nil {
		if expected {
			return nil, errorf(Unavailable, "model %q is still loading", name)
		}
		return nil, errorf(NotFound, "unknown model %q; served: %v", name, s.Models())
	}
	if version != "" && version != "1" {
		return nil, errorf(NotFound, "model %q has no version %q; it is served as version 1", name, version)
	}
	return m, nil
}

// ModelMetadata describes one model.
func (s *Server) ModelMetadata(name, version string) (*ModelInfo, error) {
	m, err := s.lookup(name, version)
	if err != nil {
		return nil, err
	}
	return &ModelInfo{Name: name, Versions: []string{"1"}, Platform: m.meta.Platform, Inputs: m.meta.Inputs, Outputs: m.meta.Outputs}, nil
}

// ModelReady reports whether one model can serve (an unknown model is a
// NotFound error; a model still loading is not ready).
func (s *Server) ModelReady(name, version string) (bool, error) {
	_, err := s.lookup(name, version)
	if kindOf(err) == Unavailable {
		return false, nil
	}
	return err == nil && !s.closing.Load(), err
}

// metricModel is the model label for a request: its name if served.
func (s *Server) metricModel(name string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.models[name] != nil || s.expected[name] {
		return name
	}
	return ""
}

// observe counts one answered request.
func (s *Server) observe(model, protocol string, err error, start time.Time) {
	model = s.metricModel(model)
	code := 200
	if err != nil {
		code = kindOf(err).httpStatus()
	}
	s.metrics.requests.WithLabelValues(model, protocol, fmt.Sprint(code)).Inc()
	s.metrics.latency.WithLabelValues(model, protocol).Observe(time.Since(start).Seconds())
	if err != nil {
		lvl := slog.LevelInfo
		if code >= 500 && code != 503 {
			lvl = slog.LevelError
		}
		s.log.Log(context.Background(), lvl, "request failed", "model", model, "protocol", protocol, "code", code, "error", message(err))
	}
}

// Infer serves one inference: checks it against the model, queues it on
// the model's scheduler and returns the outputs asked for.
func (s *Server) Infer(ctx context.Context, req *InferRequest) (*InferResponse, error) {
	p, err := s.submit(ctx, req)
	if err != nil {
		return nil, err
	}
	return p.wait()
}

// pending is a request handed to its model's scheduler.
type pending struct {
	m      *model
	j      *job
	outs   []OutputRequest
	id     string
	cancel context.CancelFunc
}

// submit checks a request and queues it; its order among its sequence's
// steps is fixed when submit returns.
func (s *Server) submit(ctx context.Context, req *InferRequest) (*pending, error) {
	if s.closing.Load() {
		return nil, errorf(Unavailable, "the server is shutting down")
	}
	m, err := s.lookup(req.Model, req.Version)
	if err != nil {
		return nil, err
	}
	inputs := map[string]*tensor.Tensor{}
	for _, in := range req.Inputs {
		if inputs[in.Name] != nil {
			return nil, errorf(BadRequest, "input %q is given twice", in.Name)
		}
		t, err := s.convertInput(m, in)
		if err != nil {
			return nil, err
		}
		inputs[in.Name] = t
	}
	allBinary, err := boolParam(req.Params, "binary_data_output")
	if err != nil {
		return nil, err
	}
	outs, err := s.outputsFor(m, req.Outputs, allBinary)
	if err != nil {
		return nil, err
	}
	sp, err := sequenceOf(req.Params)
	if err != nil {
		return nil, err
	}
	mode := Stateless
	if sp.key != "" {
		if !m.meta.Stateful {
			return nil, errorf(BadRequest, "model %q keeps no state between requests, so it cannot serve sequences (sequence_id)", m.name)
		}
		mode = SequenceStep
		if sp.start {
			mode = SequenceStart
		}
	}
	p, err := m.be.Prepare(inputs, mode)
	if err != nil {
		return nil, err
	}
	if p.WorkBytes > s.cfg.MaxRequestMemory {
		return nil, errorf(TooLarge, "the request would need about %d MiB to run, over the server's limit of %d MiB per request", p.WorkBytes>>20, s.cfg.MaxRequestMemory>>20)
	}
	timeout := s.cfg.RequestTimeout
	if tp, ok := req.Params["timeout"]; ok {
		us, ok := intParam(tp)
		if !ok || us < 0 {
			return nil, errorf(BadRequest, "parameter \"timeout\" must be a non-negative integer number of microseconds, got %s", tp)
		}
		if us > 0 && us < timeout.Microseconds() {
			timeout = time.Duration(us) * time.Microsecond
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	j := &job{ctx: ctx, p: p, seq: sp}
	if err := m.sched.enqueue(j); err != nil {
		cancel()
		return nil, err
	}
	return &pending{m: m, j: j, outs: outs, id: req.ID, cancel: cancel}, nil
}

// wait returns the answer of a submitted request.
func (p *pending) wait() (*InferResponse, error) {
	defer p.cancel()
	r := p.m.sched.wait(p.j)
	if r.res.Err != nil {
		return nil, r.res.Err
	}
	resp := &InferResponse{Model: p.m.name, Version: "1", ID: p.id}
	for _, o := range p.outs {
		t := r.res.Outputs[o.Name]
		if t == nil {
			return nil, errorf(Internal, "the model produced no output %q", o.Name)
		}
		dt, ok := datatypeOf(t.DType)
		if !ok {
			return nil, errorf(Internal, "output %q has element type %s, which the protocol cannot carry", o.Name, t.DType)
		}
		resp.Outputs = append(resp.Outputs, Output{Name: o.Name, Datatype: dt, Tensor: t, Binary: o.Binary})
	}
	return resp, nil
}

func intParam(p Param) (int64, bool) {
	switch p.Kind {
	case ParamInt:
		return p.Int, true
	case ParamUint:
		if p.Uint <= math.MaxInt64 {
			return int64(p.Uint), true
		}
	}
	return 0, false
}

// convertInput checks an input's datatype against the model's: a float
// input takes FP16, FP32, FP64 and BF16 (converted to float32, as `run`
// converts .npy inputs), any other needs its exact datatype. Float values
// must be finite.
func (s *Server) convertInput(m *model, in Input) (*tensor.Tensor, error) {
	var want *TensorMetadata
	var names []string
	for i := range m.meta.Inputs {
		names = append(names, m.meta.Inputs[i].Name)
		if m.meta.Inputs[i].Name == in.Name {
			want = &m.meta.Inputs[i]
		}
	}
	if want == nil {
		return nil, errorf(BadRequest, "model %q has no input %q; its inputs are %v", m.name, in.Name, names)
	}
	t := in.Tensor
	wdt, _ := dtypeOf(want.Datatype)
	if wdt.IsFloat() {
		if !t.IsFloat() {
			return nil, errorf(BadRequest, "input %q is %s; got datatype %s (send FP32, or FP16/FP64/BF16 to be converted)", in.Name, want.Datatype, in.Datatype)
		}
		for i, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, errorf(BadRequest, "input %q holds %v at flat index %d; inputs must be finite", in.Name, v, i)
			}
		}
		return &tensor.Tensor{Shape: t.Shape, DType: tensor.Float32, Data: t.Data}, nil
	}
	if in.Datatype != want.Datatype {
		return nil, errorf(BadRequest, "input %q is %s; got datatype %s", in.Name, want.Datatype, in.Datatype)
	}
	return t, nil
}

// outputsFor resolves the requested outputs (none: all, in model order).
func (s *Server) outputsFor(m *model, req []OutputRequest, allBinary bool) ([]OutputRequest, error) {
	if len(req) == 0 {
		out := make([]OutputRequest, len(m.meta.Outputs))
		for i, o := range m.meta.Outputs {
			out[i] = OutputRequest{Name: o.Name, Binary: allBinary}
		}
		return out, nil
	}
	seen := map[string]bool{}
	for _, o := range req {
		found := false
		for _, mo := range m.meta.Outputs {
			found = found || mo.Name == o.Name
		}
		if !found {
			var names []string
			for _, mo := range m.meta.Outputs {
				names = append(names, mo.Name)
			}
			return nil, errorf(BadRequest, "model %q has no output %q; its outputs are %v", m.name, o.Name, names)
		}
		if seen[o.Name] {
			return nil, errorf(BadRequest, "output %q is requested twice", o.Name)
		}
		seen[o.Name] = true
	}
	return req, nil
}

// Serve answers REST on httpLn and gRPC on grpcLn (either may be nil)
// until Shutdown; it returns the first listener error other than the one
// Shutdown causes.
func (s *Server) Serve(httpLn, grpcLn net.Listener) error {
	errc := make(chan error, 2)
	n := 0
	s.srvMu.Lock()
	if s.closing.Load() {
		s.srvMu.Unlock()
		for _, l := range []net.Listener{httpLn, grpcLn} {
			if l != nil {
				l.Close()
			}
		}
		return nil
	}
	if httpLn != nil {
		s.httpSrv = &http.Server{
			Handler:           s.Handler(),
			ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
			ReadTimeout:       s.cfg.ReadTimeout,
			WriteTimeout:      s.cfg.WriteTimeout,
			IdleTimeout:       s.cfg.IdleTimeout,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		n++
		go func(h *http.Server) {
			err := h.Serve(httpLn)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}(s.httpSrv)
	}
	if grpcLn != nil {
		s.grpcSrv = s.NewGRPCServer()
		n++
		go func(g *grpc.Server) {
			err := g.Serve(grpcLn)
			// A Shutdown that stops the gRPC server before this goroutine
			// gets to Serve (a slow machine, qemu) makes Serve return
			// ErrServerStopped: a clean stop too, like ErrServerClosed.
			if errors.Is(err, grpc.ErrServerStopped) {
				err = nil
			}
			errc <- err
		}(s.grpcSrv)
	}
	s.srvMu.Unlock()
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
			go s.Shutdown(context.Background())
		}
	}
	return first
}

// Shutdown stops accepting requests, lets those in flight finish (until
// ctx ends, then cuts them off), stops the schedulers and closes the
// models.
func (s *Server) Shutdown(ctx context.Context) error {
	s.srvMu.Lock()
	already := s.closing.Swap(true)
	s.srvMu.Unlock()
	if already {
		return nil
	}
	s.log.Info("shutting down: not ready, finishing requests in flight")
	s.srvMu.Lock()
	hs, gs := s.httpSrv, s.grpcSrv
	s.srvMu.Unlock()
	var wg sync.WaitGroup
	var httpErr error
	if hs != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if httpErr = hs.Shutdown(ctx); httpErr != nil {
				hs.Close()
			}
		}()
	}
	if gs != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { gs.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				gs.Stop()
				<-done
			}
		}()
	}
	wg.Wait()
	s.mu.Lock()
	models := s.models
	s.mu.Unlock()
	for _, m := range models {
		m.sched.close()
		if err := m.be.Close(); err != nil {
			s.log.Error("closing model", "model", m.name, "error", err)
		}
	}
	s.log.Info("shut down")
	return httpErr
}

var _ inferencepb.GRPCInferenceServiceServer = (*grpcService)(nil)
