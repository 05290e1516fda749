// Package inferencepb holds the Go bindings of inference.proto: the Open
// Inference Protocol (v2) gRPC service, with Triton's ModelStreamInfer.
package inferencepb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative inference.proto
