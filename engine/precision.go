package engine

import (
	"fmt"
	"strings"

	"github.com/convlstm-go/convlstm-go/ops"
)

// Precision is the arithmetic of the convolutions' multiply-adds.
type Precision string

const (
	// Float32 is exact float32 arithmetic, PyTorch's; the default ("" means
	// Float32 too).
	Float32 Precision = "float32"
	// BFloat16 rounds the packed weights to bfloat16 (nearest, ties to even)
	// and, where the CPU has AVX512_BF16, also the convolutions' inputs,
	// multiplying pairs with VDPBF16PS and accumulating in float32: 1.7× the
	// multiply-add rate of float32 measured on Zen 5 (the whole model gains
	// less: gates, transforms and copies stay float32), with errors up to
	// ~1e-2 of the outputs' scale instead of ~1e-7. Elsewhere (no
	// AVX512_BF16, another kernel set chosen, -tags purego, arm64) the
	// rounded weights are widened back and the float32 kernels run: the same
	// weights, so the accuracy can be checked anywhere, but not faster.
	// Gates, state, transforms and biases stay float32 either way.
	BFloat16 Precision = "bf16"
)

// ParsePrecision reads a precision name: "" or "float32" (also "fp32",
// "f32"), "bf16" (also "bfloat16").
func ParsePrecision(s string) (Precision, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "float32", "fp32", "f32":
		return Float32, nil
	case "bf16", "bfloat16":
		return BFloat16, nil
	}
	return "", fmt.Errorf("engine: unknown precision %q: want float32 or bf16", s)
}

func (p Precision) bf16() bool { return p == BFloat16 }

// check reports a Precision value that ParsePrecision would not give.
func (p Precision) check() error {
	if p != "" && p != Float32 && p != BFloat16 {
		return fmt.Errorf("engine: unknown precision %q: want float32 or bf16", string(p))
	}
	return nil
}

// bf16Native says whether the bf16 precision runs on native bfloat16
// kernels; a variable so that tests can take the converted path on a CPU
// that has them.
var bf16Native = ops.BF16Native

// PrecisionPath describes how a precision runs on this machine, for
// reports: "float32", "bf16 (avx512bf16: VDPBF16PS)" or "bf16 (converted to
// float32: no native bfloat16 kernels here, not faster)".
func PrecisionPath(p Precision) string {
	if !p.bf16() {
		return string(Float32)
	}
	if bf16Native() {
		return "bf16 (" + ops.BF16KernelName() + ": VDPBF16PS)"
	}
	return "bf16 (converted to float32: no native bfloat16 kernels here, not faster)"
}

// BF16Native reports whether the bf16 precision runs on native bfloat16
// kernels here (ops.BF16Native).
func BF16Native() bool { return bf16Native() }
