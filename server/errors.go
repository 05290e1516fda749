package server

import (
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
)

// Kind classifies an error the way the protocol reports it.
type Kind int

const (
	// Internal is a failure of the server itself (HTTP 500).
	Internal Kind = iota
	// BadRequest is a request that cannot be served as sent (400).
	BadRequest
	// NotFound is an unknown model or model version (404).
	NotFound
	// TooLarge is a body over --max-body, or a request whose tensors would
	// need more memory than the server allows one request (413).
	TooLarge
	// Unavailable is a server that is not ready, shutting down or whose
	// queue is full: retry later, possibly elsewhere (503).
	Unavailable
	// Capacity is a full sequence table or state memory (503; gRPC
	// RESOURCE_EXHAUSTED).
	Capacity
	// Timeout is a request that did not finish within its timeout (503;
	// gRPC DEADLINE_EXCEEDED).
	Timeout
	// Canceled is a request whose client went away (no one reads the
	// answer; logged and counted as 499, as nginx does).
	Canceled
)

// Error is an error with its protocol kind. Its message is what the client
// sees in {"error": "..."} or the gRPC status.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return "server: " + e.Msg }

func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// kindOf returns the kind of err (Internal for errors without one).
func kindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// message is the text a client sees for err.
func message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return err.Error()
}

// httpStatus maps a kind to the REST status code.
func (k Kind) httpStatus() int {
	switch k {
	case BadRequest:
		return http.StatusBadRequest
	case NotFound:
		return http.StatusNotFound
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Unavailable, Capacity, Timeout:
		return http.StatusServiceUnavailable
	case Canceled:
		return 499
	}
	return http.StatusInternalServerError
}

// grpcCode maps a kind to the gRPC status code.
func (k Kind) grpcCode() codes.Code {
	switch k {
	case BadRequest:
		return codes.InvalidArgument
	case NotFound:
		return codes.NotFound
	case TooLarge, Capacity:
		return codes.ResourceExhausted
	case Unavailable:
		return codes.Unavailable
	case Timeout:
		return codes.DeadlineExceeded
	case Canceled:
		return codes.Canceled
	}
	return codes.Internal
}

func strconvf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
