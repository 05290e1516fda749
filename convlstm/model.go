// Package convlstm describes a ConvLSTM model: its architecture, inferred
// from the weights alone, its gate order, and the checks that make a set of
// tensors a model that PyTorch could actually run.
//
// The weights follow ConvLSTM_pytorch: layer l is one Conv2d over cat(x, h)
// whose weight has shape (4·hidden, input+hidden, kh, kw), split along the
// output channels into the four gates.
package convlstm

import (
	"fmt"
	"strings"
)

// GateOrder names the order of the four gate blocks along the convolution's
// output channels, as four distinct letters from "ifog": i (input),
// f (forget), o (output), g (cell candidate).
type GateOrder string

// Common gate orders. Any permutation of the four letters is accepted.
const (
	// GatesIFOG is ConvLSTM_pytorch's order (torch.split → i, f, o, g).
	GatesIFOG GateOrder = "ifog"
	// GatesFIOG is the order of a widely copied walkthrough of that repository.
	GatesFIOG GateOrder = "fiog"
	// GatesIFGO is used by OpenSTL and others.
	GatesIFGO GateOrder = "ifgo"
)

// ParseGateOrder validates s (case-insensitive); "" means ifog.
func ParseGateOrder(s string) (GateOrder, error) {
	if s == "" {
		return GatesIFOG, nil
	}
	s = strings.ToLower(s)
	if len(s) != 4 {
		return "", fmt.Errorf("convlstm: gate order %q: want a permutation of the four letters i, f, o, g (e.g. ifog)", s)
	}
	seen := map[rune]bool{}
	for _, r := range s {
		if !strings.ContainsRune("ifog", r) || seen[r] {
			return "", fmt.Errorf("convlstm: gate order %q: want a permutation of the four letters i, f, o, g (e.g. ifog)", s)
		}
		seen[r] = true
	}
	return GateOrder(s), nil
}

// Block returns the index (0..3) of the block holding gate g ('i','f','o','g').
func (o GateOrder) Block(g byte) int {
	return strings.IndexByte(string(o), g)
}

// LayerConfig is one ConvLSTM layer's architecture.
type LayerConfig struct {
	InputDim  int  `json:"input_dim"`
	HiddenDim int  `json:"hidden_dim"`
	KernelH   int  `json:"kernel_h"`
	KernelW   int  `json:"kernel_w"`
	HasBias   bool `json:"bias"`
}

// Params is the number of parameters of the layer's convolution.
func (c LayerConfig) Params() int {
	n := 4 * c.HiddenDim * (c.InputDim + c.HiddenDim) * c.KernelH * c.KernelW
	if c.HasBias {
		n += 4 * c.HiddenDim
	}
	return n
}

// Layer is a layer's configuration and its weights, exactly as stored:
// Weight has shape (4·HiddenDim, InputDim+HiddenDim, KernelH, KernelW) in the
// model's gate order, Bias has 4·HiddenDim values, or is nil when HasBias is false.
type Layer struct {
	LayerConfig
	Weight []float32
	Bias   []float32
}

// Model is a validated multi-layer ConvLSTM.
type Model struct {
	Layers []Layer
	Gates  GateOrder
	// Source says where the weights came from; it is informational.
	Source Source
}

// Source records where a model's weights were found.
type Source struct {
	File    string   `json:"file,omitempty"`
	Format  string   `json:"format,omitempty"`
	Prefix  string   `json:"prefix"`            // e.g. "model_state_dict.conv_lstm"; "" for a bare state_dict
	Kind    string   `json:"kind"`              // "cell_list" (a ConvLSTM stack) or "cell" (one ConvLSTMCell)
	Keys    []string `json:"keys"`              // the tensor names used
	DTypes  []string `json:"dtypes"`            // stored dtypes of the weights, deduplicated
	Skipped []string `json:"skipped,omitempty"` // entries in the file that are not this model's
	Ignored []string `json:"ignored,omitempty"` // pickle globals given no meaning
	Others  []string `json:"other_candidates,omitempty"`
}

// Config returns the per-layer architecture.
func (m *Model) Config() []LayerConfig {
	cs := make([]LayerConfig, len(m.Layers))
	for i, l := range m.Layers {
		cs[i] = l.LayerConfig
	}
	return cs
}

// InputDim is the number of channels the model expects.
func (m *Model) InputDim() int { return m.Layers[0].InputDim }

// Params is the total parameter count.
func (m *Model) Params() int {
	n := 0
	for _, l := range m.Layers {
		n += l.Params()
	}
	return n
}

// Validate checks that the layers chain and that every tensor has the size
// its configuration implies.
func (m *Model) Validate() error {
	if err := m.validateConfig(); err != nil {
		return err
	}
	for i, l := range m.Layers {
		want := 4 * l.HiddenDim * (l.InputDim + l.HiddenDim) * l.KernelH * l.KernelW
		if len(l.Weight) != want {
			return fmt.Errorf("convlstm: layer %d: weight has %d values, want %d for (%d, %d, %d, %d)", i, len(l.Weight), want, 4*l.HiddenDim, l.InputDim+l.HiddenDim, l.KernelH, l.KernelW)
		}
		if l.HasBias && len(l.Bias) != 4*l.HiddenDim {
			return fmt.Errorf("convlstm: layer %d: bias has %d values, want %d", i, len(l.Bias), 4*l.HiddenDim)
		}
		if !l.HasBias && l.Bias != nil {
			return fmt.Errorf("convlstm: layer %d: bias values given but HasBias is false", i)
		}
	}
	return nil
}

// validateConfig checks the architecture alone.
func (m *Model) validateConfig() error {
	if len(m.Layers) == 0 {
		return fmt.Errorf("convlstm: model has no layers")
	}
	if _, err := ParseGateOrder(string(m.Gates)); err != nil {
		return err
	}
	for i, l := range m.Layers {
		if l.InputDim < 1 || l.HiddenDim < 1 {
			return fmt.Errorf("convlstm: layer %d: input %d and hidden %d channels must both be at least 1", i, l.InputDim, l.HiddenDim)
		}
		if l.KernelH%2 == 0 || l.KernelW%2 == 0 || l.KernelH < 1 || l.KernelW < 1 {
			return fmt.Errorf("convlstm: layer %d: kernel %d×%d has an even side: ConvLSTM pads by k//2, so an even kernel makes the output one pixel larger than the hidden state and PyTorch's torch.cat fails too; only odd kernels can run", i, l.KernelH, l.KernelW)
		}
		if i > 0 && l.InputDim != m.Layers[i-1].HiddenDim {
			return fmt.Errorf("convlstm: layer %d takes %d input channels but layer %d produces %d hidden channels", i, l.InputDim, i-1, m.Layers[i-1].HiddenDim)
		}
	}
	return nil
}
