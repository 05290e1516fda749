package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// HeaderContentLength is the binary tensor data extension's header: the
// length of the JSON part of a body that continues with binary tensors.
const HeaderContentLength = "Inference-Header-Content-Length"

// Handler returns the REST front end: the v2 endpoints and /metrics.
func (s *Server) Handler() http.Handler {
	metrics := promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			if !allow(w, r, http.MethodGet) {
				return
			}
			metrics.ServeHTTP(w, r)
			return
		}
		s.route(w, r)
	})
}

// allow answers 405 unless r uses one of the methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m || m == http.MethodGet && r.Method == http.MethodHead {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(methods, " or "))})
	return false
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	switch {
	case p == "/v2":
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, s.Metadata())
		}
		return
	case p == "/v2/health/live":
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, map[string]bool{"live": true})
		}
		return
	case p == "/v2/health/ready":
		if allow(w, r, http.MethodGet) {
			if s.Ready() {
				writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
			} else {
				writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "error": "not ready: models loading or shutting down"})
			}
		}
		return
	case len(parts) >= 3 && parts[0] == "v2" && parts[1] == "models":
		name, version, rest := parts[2], "", parts[3:]
		if len(rest) >= 2 && rest[0] == "versions" {
			version, rest = rest[1], rest[2:]
		}
		switch {
		case len(rest) == 0:
			if allow(w, r, http.MethodGet) {
				info, err := s.ModelMetadata(name, version)
				if err != nil {
					writeError(w, err)
					return
				}
				writeJSON(w, http.StatusOK, info)
			}
			return
		case len(rest) == 1 && rest[0] == "ready":
			if allow(w, r, http.MethodGet) {
				ok, err := s.ModelReady(name, version)
				switch {
				case err != nil:
					writeError(w, err)
				case ok:
					writeJSON(w, http.StatusOK, map[string]any{"name": name, "ready": true})
				default:
					writeJSON(w, http.StatusServiceUnavailable, map[string]any{"name": name, "ready": false, "error": "model " + strconv.Quote(name) + " is not ready"})
				}
			}
			return
		case len(rest) == 1 && rest[0] == "infer":
			if allow(w, r, http.MethodPost) {
				s.serveInfer(w, r, name, version)
			}
			return
		}
	}
	writeError(w, errorf(NotFound, "no endpoint %s %s; the v2 endpoints are /v2, /v2/health/{live,ready}, /v2/models/{name}[/versions/{v}][/ready|/infer] and /metrics", r.Method, r.URL.Path))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, kindOf(err).httpStatus(), map[string]string{"error": message(err)})
}

// The JSON forms of the protocol.
type restRequest struct {
	ID         string                     `json:"id"`
	Parameters map[string]json.RawMessage `json:"parameters"`
	Inputs     []restInput                `json:"inputs"`
	Outputs    []restOutput               `json:"outputs"`
}

type restInput struct {
	Name       string                     `json:"name"`
	Shape      []int64                    `json:"shape"`
	Datatype   string                     `json:"datatype"`
	Parameters map[string]json.RawMessage `json:"parameters"`
	Data       json.RawMessage            `json:"data"`
}

type restOutput struct {
	Name       string                     `json:"name"`
	Parameters map[string]json.RawMessage `json:"parameters"`
}

func (s *Server) serveInfer(w http.ResponseWriter, r *http.Request, name, version string) {
	start := time.Now()
	s.metrics.inflight.WithLabelValues("http").Inc()
	defer s.metrics.inflight.WithLabelValues("http").Dec()
	resp, err := s.inferREST(w, r, name, version)
	s.observe(name, "http", err, start)
	if err != nil {
		// Written even when the client seems gone: a slow client whose
		// read timed out is still there to read it.
		writeError(w, err)
		return
	}
	writeInferResponse(w, resp)
}

func (s *Server) inferREST(w http.ResponseWriter, r *http.Request, name, version string) (*InferResponse, error) {
	if s.closing.Load() {
		return nil, errorf(Unavailable, "the server is shutting down")
	}
	if r.ContentLength > s.cfg.MaxBody {
		return nil, errorf(TooLarge, "the body is %d bytes, over --max-body %d", r.ContentLength, s.cfg.MaxBody)
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return nil, errorf(BadRequest, "Content-Encoding %q is not supported; send the body uncompressed", enc)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, errorf(TooLarge, "the body is over --max-body %d bytes", s.cfg.MaxBody)
		}
		return nil, errorf(BadRequest, "reading the body (client too slow or gone?): %v", err)
	}
	header, bin := body, []byte(nil)
	if h := r.Header.Get(HeaderContentLength); h != "" {
		n, err := strconv.ParseInt(h, 10, 64)
		if err != nil || n < 0 || n > int64(len(body)) {
			return nil, errorf(BadRequest, "%s is %q; want the length of the JSON part, 0 to %d (the body's length)", HeaderContentLength, h, len(body))
		}
		header, bin = body[:n], body[n:]
	}
	req, err := s.decodeREST(header, bin)
	if err != nil {
		return nil, err
	}
	req.Model, req.Version = name, version
	if err := checkSequenceHeader(r.Header.Get(SequenceHeader), req.Params); err != nil {
		return nil, err
	}
	return s.Infer(r.Context(), req)
}

// decodeREST turns a JSON request (and its binary part) into an
// InferRequest.
func (s *Server) decodeREST(header, bin []byte) (*InferRequest, error) {
	var rr restRequest
	dec := json.NewDecoder(bytes.NewReader(header))
	if err := dec.Decode(&rr); err != nil {
		return nil, errorf(BadRequest, "the request is not valid JSON of the v2 protocol: %v", err)
	}
	if dec.More() {
		return nil, errorf(BadRequest, "the request has text after its JSON object (binary data needs the %s header)", HeaderContentLength)
	}
	params, err := jsonParams("request", rr.Parameters)
	if err != nil {
		return nil, err
	}
	allBinary, err := boolParam(params, "binary_data_output")
	if err != nil {
		return nil, err
	}
	req := &InferRequest{ID: rr.ID, Params: params}
	if len(rr.Inputs) == 0 {
		return nil, errorf(BadRequest, "the request has no inputs")
	}
	off := 0
	for _, in := range rr.Inputs {
		t, err := s.decodeRESTInput(in, bin, &off)
		if err != nil {
			return nil, err
		}
		req.Inputs = append(req.Inputs, Input{Name: in.Name, Datatype: in.Datatype, Tensor: t})
	}
	if off != len(bin) {
		return nil, errorf(BadRequest, "%d bytes of binary data follow the JSON but the inputs' binary_data_size claim %d", len(bin), off)
	}
	for _, o := range rr.Outputs {
		ps, err := jsonParams("output "+strconv.Quote(o.Name), o.Parameters)
		if err != nil {
			return nil, err
		}
		b, err := boolParam(ps, "binary_data")
		if err != nil {
			return nil, err
		}
		if _, ok := ps["binary_data"]; !ok {
			b = allBinary
		}
		req.Outputs = append(req.Outputs, OutputRequest{Name: o.Name, Binary: b})
	}
	return req, nil
}

func (s *Server) decodeRESTInput(in restInput, bin []byte, off *int) (*tensor.Tensor, error) {
	if in.Name == "" {
		return nil, errorf(BadRequest, "an input has no name")
	}
	dt, err := dtypeOf(in.Datatype)
	if err != nil {
		return nil, errorf(BadRequest, "input %q: %s", in.Name, message(err))
	}
	if in.Shape == nil {
		return nil, errorf(BadRequest, "input %q has no shape", in.Name)
	}
	shape, err := checkShape(in.Name, in.Shape, s.cfg.MaxBody)
	if err != nil {
		return nil, err
	}
	ps, err := jsonParams("input "+strconv.Quote(in.Name), in.Parameters)
	if err != nil {
		return nil, err
	}
	if p, ok := ps["binary_data_size"]; ok {
		n, ok := intParam(p)
		if !ok || n < 0 {
			return nil, errorf(BadRequest, "input %q: binary_data_size must be a non-negative integer, got %s", in.Name, p)
		}
		if len(in.Data) > 0 && string(in.Data) != "null" {
			return nil, errorf(BadRequest, "input %q has both data and binary_data_size", in.Name)
		}
		if n > int64(len(bin)-*off) {
			return nil, errorf(BadRequest, "input %q: binary_data_size %d but only %d bytes of binary data are left", in.Name, n, len(bin)-*off)
		}
		b := bin[*off : *off+int(n)]
		*off += int(n)
		return decodeRaw(in.Name, b, dt, shape)
	}
	if len(in.Data) == 0 || string(in.Data) == "null" {
		return nil, errorf(BadRequest, "input %q has no data (give \"data\" or the binary_data_size parameter)", in.Name)
	}
	return decodeJSONData(in.Name, in.Data, dt, shape)
}

// jsonParams parses a parameters object: booleans, numbers (integers as
// ParamUint when non-negative, ParamInt when negative, others ParamFloat)
// and strings.
func jsonParams(where string, raw map[string]json.RawMessage) (map[string]Param, error) {
	ps := map[string]Param{}
	for k, v := range raw {
		v = bytes.TrimSpace(v)
		var p Param
		switch {
		case string(v) == "true" || string(v) == "false":
			p = Param{Kind: ParamBool, Bool: string(v) == "true"}
		case len(v) > 0 && v[0] == '"':
			if err := json.Unmarshal(v, &p.Str); err != nil {
				return nil, errorf(BadRequest, "%s parameter %q: %v", where, k, err)
			}
			p.Kind = ParamString
		case len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9'):
			tok := string(v)
			if u, err := strconv.ParseUint(tok, 10, 64); err == nil {
				p = Param{Kind: ParamUint, Uint: u}
			} else if i, err := strconv.ParseInt(tok, 10, 64); err == nil {
				p = Param{Kind: ParamInt, Int: i}
			} else if f, err := strconv.ParseFloat(tok, 64); err == nil {
				p = Param{Kind: ParamFloat, Flt: f}
			} else {
				return nil, errorf(BadRequest, "%s parameter %q: %s is out of range", where, k, clip(tok))
			}
		default:
			return nil, errorf(BadRequest, "%s parameter %q must be a boolean, number or string, got %s", where, k, clip(string(v)))
		}
		ps[k] = p
	}
	return ps, nil
}

type restOutputJSON struct {
	Name       string          `json:"name"`
	Datatype   string          `json:"datatype"`
	Shape      []int           `json:"shape"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

type restResponseJSON struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version"`
	ID           string           `json:"id,omitempty"`
	Outputs      []restOutputJSON `json:"outputs"`
}

// writeInferResponse writes JSON, followed by the binary outputs (and
// the Inference-Header-Content-Length header) when any was asked in binary.
func writeInferResponse(w http.ResponseWriter, resp *InferResponse) {
	out := restResponseJSON{ModelName: resp.Model, ModelVersion: resp.Version, ID: resp.ID, Outputs: []restOutputJSON{}}
	var bins [][]byte
	for _, o := range resp.Outputs {
		j := restOutputJSON{Name: o.Name, Datatype: o.Datatype, Shape: o.Tensor.Shape}
		if o.Binary {
			b := rawBytes(o.Tensor)
			bins = append(bins, b)
			j.Parameters = map[string]any{"binary_data_size": len(b)}
		} else {
			data, err := appendJSONData(make([]byte, 0, 12*o.Tensor.Len()+2), o.Tensor)
			if err != nil {
				writeError(w, err)
				return
			}
			j.Data = data
		}
		out.Outputs = append(out.Outputs, j)
	}
	head, err := json.Marshal(out)
	if err != nil {
		writeError(w, errorf(Internal, "encoding the answer: %v", err))
		return
	}
	if len(bins) == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(head)))
		w.WriteHeader(http.StatusOK)
		w.Write(head)
		return
	}
	n := len(head)
	for _, b := range bins {
		n += len(b)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(HeaderContentLength, strconv.Itoa(len(head)))
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(http.StatusOK)
	w.Write(head)
	for _, b := range bins {
		w.Write(b)
	}
}

// checkSequenceHeader refuses a request whose affinity header names
// another sequence than its sequence_id: the load balancer would have
// routed it by the header, so a mismatch is a client bug that would
// scatter a sequence's steps over replicas.
func checkSequenceHeader(h string, params map[string]Param) error {
	p, ok := params["sequence_id"]
	if h == "" || !ok {
		return nil
	}
	id := p.Str
	switch p.Kind {
	case ParamUint:
		id = strconv.FormatUint(p.Uint, 10)
	case ParamInt:
		id = strconv.FormatInt(p.Int, 10)
	}
	if h != id {
		return errorf(BadRequest, "header %s is %q but sequence_id is %s: set the header to the sequence_id so a sequence stays on one replica", SequenceHeader, h, p)
	}
	return nil
}
