package graph

import (
	"math"
	"slices"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Normalisation: BatchNormalization (inference, and the training form's
// batch statistics), InstanceNormalization (also GroupNorm, which torch
// exports as InstanceNormalization over (B, groups, −1)) and
// LayerNormalization, on the engine's row normalisation (one pass for the
// moments, one to write) and channel affine. An inference
// BatchNormalization right after a Conv or ConvTranspose is folded into its
// weights at compile time (fuse_conv.go) and never runs.

func init() {
	register(
		&opDef{name: "BatchNormalization", since: v(1, 6, 7, 9, 14, 15), in: io(5, 5), out: io(1, 5),
			attrs: []attrSpec{aFloat("epsilon"), aFloat("momentum"), aInts("consumed_inputs").upTo(5), aInt("is_test").upTo(6),
				aInt("spatial").upTo(8), aInt("training_mode").sinceV(14)},
			check: checkBatchNorm, run: runBatchNorm},
		&opDef{name: "InstanceNormalization", since: v(1, 6), in: io(3, 3), out: io(1, 1),
			attrs: []attrSpec{aFloat("epsilon"), aInts("consumed_inputs").upTo(5)}, run: runInstanceNorm},
		&opDef{name: "LayerNormalization", since: v(17), in: io(2, 3), out: io(1, 3),
			attrs: []attrSpec{aInt("axis"), aFloat("epsilon"), aInt("stash_type")}, check: checkLayerNorm, run: runLayerNorm},
	)
}

// batchNormTraining reports whether a BatchNormalization node computes
// batch statistics: training_mode=1 (opset 14+), is_test=0 (opsets 1–6),
// or, at opsets 7–13, outputs beyond Y asked for.
func batchNormTraining(n *node) bool {
	switch {
	case n.opset >= 14:
		return attrInt(n, "training_mode", 0) != 0
	case n.opset < 7:
		return attrInt(n, "is_test", 0) == 0
	}
	for _, o := range n.out[1:] {
		if o != "" {
			return true
		}
	}
	return false
}

func checkBatchNorm(c *compiler, n *node) error {
	if attrInt(n, "spatial", 1) != 1 {
		return c.unsupported(n, "spatial", "spatial=%d: per-activation statistics are not supported (only spatial=1)", attrInt(n, "spatial", 1))
	}
	if v := attrInt(n, "training_mode", 0); v != 0 && v != 1 {
		return c.errAttr(n, "training_mode", "training_mode=%d: want 0 or 1", v)
	}
	train := batchNormTraining(n)
	switch {
	case train && n.opset < 14:
		// The old training form's outputs (saved mean and variance, with
		// momentum conventions of their own) are not implemented.
		attr := "is_test"
		if n.opset >= 7 {
			attr = ""
		}
		return c.unsupported(n, attr, "training-mode BatchNormalization-%d (batch statistics, outputs beyond Y) is not supported; opset 14's training_mode is", n.opset)
	case train && len(n.out) > 3:
		return c.errf(n, "%d outputs: training-mode BatchNormalization-%d has Y, running_mean and running_var", len(n.out), n.opset)
	case !train && n.opset >= 14 && len(n.out) > 1:
		return c.errf(n, "%d outputs: BatchNormalization with training_mode=0 has only Y", len(n.out))
	}
	return nil
}

// channelParams checks the per-channel inputs of a normalisation: float
// vectors of c values.
func (x *exec) channelParams(n *node, c int, in []*tensor.Tensor, from int, names ...string) error {
	for k, name := range names {
		p := in[from+k]
		if p == nil || !p.IsFloat() || numel(p.Shape) != c || len(p.Shape) != 1 {
			shape := []int(nil)
			if p != nil {
				shape = p.Shape
			}
			return x.errf(n, "%s %q has shape %v, want (%d,) float for the %d channels", name, n.in[from+k], shape, c, c)
		}
	}
	return nil
}

func runBatchNorm(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	if !t.IsFloat() || len(t.Shape) < 2 {
		return nil, x.errf(n, "input %q is %s %v; want a float (N, C, ...) tensor", n.in[0], typeName(t), t.Shape)
	}
	c := t.Shape[1]
	if err := x.channelParams(n, c, in, 1, "scale", "B", "input_mean", "input_var"); err != nil {
		return nil, err
	}
	eps := float64(attrFloat(n, "epsilon", 1e-5))
	train := batchNormTraining(n)
	out := x.newFloat(t.Shape)
	outs := []*tensor.Tensor{out}
	if train {
		outs = append(outs, x.newFloat([]int{c}), x.newFloat([]int{c}))
	}
	if x.dry || numel(t.Shape) == 0 {
		return outs, nil
	}
	scale, bias, mean, variance := in[1].Data, in[2].Data, in[3].Data, in[4].Data
	planes, m := t.Shape[0]*c, numel(t.Shape[2:])
	if train {
		// Batch statistics per channel (the population variance, as the
		// ONNX reference computes it), and the running ones updated with
		// momentum.
		mom := float64(attrFloat(n, "momentum", 0.9))
		bm, bv := batchMoments(t.Data, t.Shape[0], c, m)
		for ch := 0; ch < c; ch++ {
			outs[1].Data[ch] = float32(float64(mean[ch])*mom + bm[ch]*(1-mom))
			outs[2].Data[ch] = float32(float64(variance[ch])*mom + bv[ch]*(1-mom))
		}
		mean, variance = make([]float32, c), make([]float32, c)
		for ch := range mean {
			mean[ch], variance[ch] = float32(bm[ch]), float32(bv[ch])
		}
	}
	a, b := batchNormAffine(scale, bias, mean, variance, eps)
	engine.ChannelAffine(poolFor(x.g.threads), out.Data, t.Data, planes, m, a, b)
	return outs, nil
}

// batchNormAffine is y = x·a + b for inference batch normalisation: a =
// γ/√(σ²+ε), b = β − μ·a, computed in float64.
func batchNormAffine(scale, bias, mean, variance []float32, eps float64) (a, b []float32) {
	a, b = make([]float32, len(scale)), make([]float32, len(scale))
	for c := range scale {
		ac := float64(scale[c]) / math.Sqrt(float64(variance[c])+eps)
		a[c], b[c] = float32(ac), float32(float64(bias[c])-float64(mean[c])*ac)
	}
	return a, b
}

// batchMoments are the mean and population variance of each channel over
// the batch and spatial axes, in float64.
func batchMoments(x []float32, batch, c, m int) (mean, variance []float64) {
	mean, variance = make([]float64, c), make([]float64, c)
	count := float64(batch * m)
	for ch := 0; ch < c; ch++ {
		s := 0.0
		for b := 0; b < batch; b++ {
			for _, v := range x[(b*c+ch)*m : (b*c+ch+1)*m] {
				s += float64(v)
			}
		}
		mu := s / count
		q := 0.0
		for b := 0; b < batch; b++ {
			for _, v := range x[(b*c+ch)*m : (b*c+ch+1)*m] {
				d := float64(v) - mu
				q += d * d
			}
		}
		mean[ch], variance[ch] = mu, q/count
	}
	return mean, variance
}

func runInstanceNorm(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	if !t.IsFloat() || len(t.Shape) < 3 {
		return nil, x.errf(n, "input %q is %s %v; want a float (N, C, D1, ...) tensor", n.in[0], typeName(t), t.Shape)
	}
	c := t.Shape[1]
	if err := x.channelParams(n, c, in, 1, "scale", "B"); err != nil {
		return nil, err
	}
	out := x.newFloat(t.Shape)
	if x.dry || numel(t.Shape) == 0 {
		return one(out, nil)
	}
	engine.Normalize(poolFor(x.g.threads), out.Data, t.Data, engine.NormRows{
		Rows: t.Shape[0] * c, N: numel(t.Shape[2:]), Eps: float64(attrFloat(n, "epsilon", 1e-5)),
		Scale: in[1].Data, Bias: in[2].Data})
	return one(out, nil)
}

func checkLayerNorm(c *compiler, n *node) error {
	// stash_type is the precision of the mean and variance: float (1) or
	// wider; the moments are float64 sums here either way.
	switch st := attrInt(n, "stash_type", 1); st {
	case 1, 10, 11, 16:
	default:
		return c.unsupported(n, "stash_type", "stash_type=%d: want a float type (1, 10, 11 or 16)", st)
	}
	return nil
}

func runLayerNorm(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	rank := len(t.Shape)
	if !t.IsFloat() || rank == 0 {
		return nil, x.errf(n, "input %q is %s %v; want a float tensor", n.in[0], typeName(t), t.Shape)
	}
	axis, err := x.axisAttr(n, "axis", -1, rank)
	if err != nil {
		return nil, err
	}
	norm := t.Shape[axis:]
	rows, m := numel(t.Shape[:axis]), numel(norm)
	// Scale and B broadcast to the normalised shape.
	params := make([]*tensor.Tensor, 2)
	for k, name := range []string{"Scale", "B"} {
		if 1+k >= len(in) || in[1+k] == nil {
			continue
		}
		p := in[1+k]
		if !p.IsFloat() {
			return nil, x.errf(n, "%s %q must be float, is %s", name, n.in[1+k], typeName(p))
		}
		if b, ok := broadcastShape(p.Shape, norm); !ok || !slices.Equal(b, norm) {
			return nil, x.errf(n, "%s %q has shape %v, which does not broadcast to the normalised shape %v (axis %d of %v)", name, n.in[1+k], p.Shape, norm, axis, t.Shape)
		}
		params[k] = p
	}
	out := x.newFloat(t.Shape)
	statShape := slices.Clone(t.Shape)
	for i := axis; i < rank; i++ {
		statShape[i] = 1
	}
	outs := []*tensor.Tensor{out, nil, nil}
	for k := 1; k < len(n.out); k++ {
		if n.out[k] != "" {
			outs[k] = x.newFloat(slices.Clone(statShape))
		}
	}
	if x.dry || numel(t.Shape) == 0 {
		return outs, nil
	}
	per := func(p *tensor.Tensor) []float32 {
		if p == nil || slices.Equal(p.Shape, norm) || len(p.Data) == m {
			if p == nil {
				return nil
			}
			return p.Data
		}
		e := make([]float32, m)
		broadcastInto(e, p.Data, p.Shape, norm)
		return e
	}
	nr := engine.NormRows{Rows: rows, N: m, Eps: float64(attrFloat(n, "epsilon", 1e-5)), Scale: per(params[0]), Bias: per(params[1]), PerElement: true}
	if outs[1] != nil {
		nr.Mean = outs[1].Data
	}
	if outs[2] != nil {
		nr.InvStd = outs[2].Data
	}
	engine.Normalize(poolFor(x.g.threads), out.Data, t.Data, nr)
	return outs, nil
}
