package graph

import (
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Test-only ops that panic: in a worker goroutine at run time, and in a
// compile-time check. (Registered for the tests only; no model in the
// wild uses these names.)
func init() {
	register(
		&opDef{name: "TestPanicInWorker", since: v(1), in: io(1, 1), out: io(1, 1), run: func(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if x.dry {
				return in, nil
			}
			parallel(2, func(part int) {
				if part == 1 {
					var s []int
					_ = s[part] // an index out of range, as a kernel bug would be
				}
			})
			return in, nil
		}},
		&opDef{name: "TestPanicInCheck", since: v(1), in: io(1, 1), out: io(1, 1), check: func(c *compiler, n *node) error {
			panic("check went wrong")
		}, run: runIdentity},
	)
}

// TestPanicsAreInternalErrors: a bug (a panic) in a kernel's worker
// goroutine or in a compile-time check does not take the process down; it
// is an internal error naming the node, with the stack of the panic.
func TestPanicsAreInternalErrors(t *testing.T) {
	x := map[string]*tensor.Tensor{"x": seq(4)}
	_, err := runNodes(t, 13, []*onnxpb.NodeProto{nodeProto("TestPanicInWorker", []string{"x"}, []string{"y"})}, x, nil, "y")
	e, ok := err.(*Error)
	if !ok || e.Kind != Internal || e.Node != "y" || !strings.Contains(e.Msg, "index out of range") || !strings.Contains(e.Msg, "exec_test.go") {
		t.Errorf("panic in a worker: %v", err)
	}
	_, err = runNodes(t, 13, []*onnxpb.NodeProto{nodeProto("TestPanicInCheck", []string{"x"}, []string{"y"})}, x, nil, "y")
	e, ok = err.(*Error)
	if !ok || e.Kind != Internal || e.Node != "y" || !strings.Contains(e.Msg, "check went wrong") || !strings.Contains(e.Msg, "exec_test.go") {
		t.Errorf("panic in a check: %v", err)
	}
}

func TestSupportedOps(t *testing.T) {
	ops := SupportedOps()
	for _, want := range []string{"Conv", "Loop", "If", "Scan", "MatMul", "Gemm", "Softmax", "ReduceMean", "Transpose", "SequenceInsert"} {
		if !strings.Contains(" "+strings.Join(ops, " ")+" ", " "+want+" ") {
			t.Errorf("SupportedOps lacks %s", want)
		}
	}
	if from, to := OpsetRange("Softmax"); from != 1 || to != maxOpset {
		t.Errorf("Softmax opsets %d to %d", from, to)
	}
	if from, to := OpsetRange("NoSuchOp"); from != 0 || to != 0 {
		t.Errorf("NoSuchOp opsets %d to %d", from, to)
	}
}
