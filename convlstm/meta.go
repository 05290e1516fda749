package convlstm

import (
	"encoding/json"
	"fmt"
)

// Metadata keys under which a ConvLSTM describes itself in a file's
// free-form metadata (safetensors __metadata__, ONNX metadata_props).
// Package export writes both; loading reads the gate order from MetaGates
// (so a converted file runs with no gate flag) and checks the weights
// against MetaConfig.
const (
	MetaGates  = "gate_order"      // gate order of the conv's output blocks, e.g. "ifog"
	MetaConfig = "convlstm_config" // JSON list of LayerConfig, one per layer
)

// Metadata returns m's description under MetaGates and MetaConfig.
func (m *Model) Metadata() map[string]string {
	cfg, _ := json.Marshal(m.Config()) // plain ints and bools: cannot fail
	return map[string]string{MetaGates: string(m.Gates), MetaConfig: string(cfg)}
}

// ConfigFromMetadata reads the architecture recorded under MetaConfig; nil
// when there is none.
func ConfigFromMetadata(meta map[string]string) ([]LayerConfig, error) {
	s, ok := meta[MetaConfig]
	if !ok {
		return nil, nil
	}
	var cfg []LayerConfig
	if err := json.Unmarshal([]byte(s), &cfg); err != nil {
		return nil, fmt.Errorf("convlstm: metadata %s %q: want a JSON list of layers: %v", MetaConfig, trunc(s), err)
	}
	return cfg, nil
}

// checkMetadata checks the architecture a file records for its ConvLSTM
// (package export writes one, for the model at prefix "") against the one
// the weights give.
func checkMetadata(file string, meta map[string]string, m *Model) error {
	if m.Source.Prefix != "" || m.Source.Kind != "cell_list" {
		return nil
	}
	cfg, err := ConfigFromMetadata(meta)
	if err != nil || cfg == nil {
		if err != nil {
			return fmt.Errorf("%w (in %s)", err, file)
		}
		return nil
	}
	got := m.Config()
	if len(cfg) != len(got) {
		return fmt.Errorf("convlstm: %s: metadata %s describes %d layer(s), the weights hold %d", file, MetaConfig, len(cfg), len(got))
	}
	for i := range cfg {
		if cfg[i] != got[i] {
			return fmt.Errorf("convlstm: %s: metadata %s says layer %d is %+v, the weights give %+v", file, MetaConfig, i, cfg[i], got[i])
		}
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
