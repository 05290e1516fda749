package ops

// The assembly kernels are generated, for every architecture from any host:
//
//	go generate ./ops

//go:generate go run ./internal/asmgen -out kernels_amd64.s -stubs stubs_amd64.go -pkg ops
//go:generate go run ./internal/wingen -out winograd_amd64.s -stubs winograd_stubs_amd64.go -pkg ops
//go:generate go run ./internal/neongen -out kernels_arm64.s -stubs stubs_arm64.go -pkg ops
//go:generate go run ./internal/bf16gen -out bf16_amd64.s -stubs bf16_stubs_amd64.go -pkg ops
