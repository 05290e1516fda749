package export

import (
	"testing"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

func readNPYTest(t *testing.T, path string) *tensor.Tensor {
	t.Helper()
	x, err := loader.ReadNPY(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func readNPZTest(t *testing.T, path string) map[string]*tensor.Tensor {
	t.Helper()
	x, _, err := loader.ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
