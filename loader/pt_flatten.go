package loader

import (
	"fmt"
	"math"
	"strconv"

	"github.com/nlpodyssey/gopickle/types"
)

// Flattening limits. Pickles can share and even cycle through containers
// (the memo), so the walk is bounded in depth and in total visits.
const (
	maxFlattenDepth  = 200
	maxFlattenVisits = 1 << 21
	// maxNameBytes bounds the names built while walking: a DAG of shared
	// lists can have exponentially many paths to a tensor.
	maxNameBytes = 1 << 26
)

// flattener turns the unpickled object graph into dotted tensor names.
type flattener struct {
	file    string
	rec     string // the pickle's record, for errors
	names   []string
	tensors map[string]*ptTensor
	skipped []string
	visits  int
	nameLen int // bytes of names built so far
	// hasTensor results per container, so shared sub-graphs cost once.
	hasT map[any]bool
	// containers on the current path, to cut cycles.
	path map[any]bool
}

func newFlattener(file string) *flattener {
	return &flattener{
		file:    file,
		tensors: map[string]*ptTensor{},
		hasT:    map[any]bool{},
		path:    map[any]bool{},
	}
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func (f *flattener) emit(name string, t *ptTensor) {
	if name == "" {
		// torch.save(tensor): the file's only tensor.
		name = "tensor"
	}
	if _, dup := f.tensors[name]; !dup {
		f.names = append(f.names, name)
	}
	// A later entry with the same name wins, as in a Python dict.
	f.tensors[name] = t
}

func (f *flattener) skip(name, what string) {
	if name == "" {
		name = "(top level)"
	}
	f.skipped = append(f.skipped, name+" ("+what+")")
}

func (f *flattener) tick(depth int) error {
	f.visits++
	if f.visits > maxFlattenVisits {
		return &FormatError{File: f.file, Record: f.rec, Msg: fmt.Sprintf("object graph has more than %d nodes", maxFlattenVisits)}
	}
	if depth > maxFlattenDepth {
		return &FormatError{File: f.file, Record: f.rec, Msg: fmt.Sprintf("objects nested deeper than %d", maxFlattenDepth)}
	}
	return nil
}

// keyName turns a dict key into a name component; optimizer state uses int
// keys, everything else strings.
func keyName(k any) (string, bool) {
	switch x := k.(type) {
	case string:
		return x, true
	case torchVersion:
		return string(x), true
	case int:
		return strconv.Itoa(x), true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		if !math.IsInf(x, 0) && !math.IsNaN(x) {
			return strconv.FormatFloat(x, 'g', -1, 64), true
		}
	}
	if n, ok := pyInt(k); ok {
		return strconv.FormatInt(n, 10), true
	}
	return "", false
}

// entries lists a container's key/value pairs; ok is false for leaves.
// Lists and tuples use their indices as keys.
type kv struct {
	key any
	val any
}

func containerEntries(v any) ([]kv, string, bool) {
	switch x := v.(type) {
	case *types.Dict:
		out := make([]kv, len(*x))
		for i, e := range *x {
			out[i] = kv{e.Key, e.Value}
		}
		return out, "dict", true
	case *types.OrderedDict:
		out := make([]kv, 0, x.Len())
		for e := x.List.Front(); e != nil; e = e.Next() {
			ent := e.Value.(*types.OrderedDictEntry)
			out = append(out, kv{ent.Key, ent.Value})
		}
		return out, "collections.OrderedDict", true
	case *types.List:
		return indexed(*x), "list", true
	case *types.Tuple:
		return indexed(*x), "tuple", true
	}
	return nil, "", false
}

func indexed(items []any) []kv {
	out := make([]kv, len(items))
	for i, v := range items {
		out[i] = kv{i, v}
	}
	return out
}

// objectEntries is what a placeholder object holds that may contain
// tensors: its dict state (attributes), its items, its list, in that order.
func objectEntries(o *ptObject) []kv {
	var out []kv
	state := o.state
	if t, ok := state.(*types.Tuple); ok && t.Len() == 2 {
		// (state, slotstate)
		state = t.Get(0)
	}
	switch state.(type) {
	case *types.Dict, *types.OrderedDict:
		e, _, _ := containerEntries(state)
		out = append(out, e...)
	}
	if o.items != nil {
		for _, e := range *o.items {
			out = append(out, kv{e.Key, e.Value})
		}
	}
	out = append(out, indexed(o.list)...)
	return out
}

// moduleState returns the state dict of a pickled nn.Module, recognised by
// its _parameters/_buffers/_modules attributes.
func moduleState(v any) (*types.Dict, bool) {
	o, ok := v.(*ptObject)
	if !ok {
		return nil, false
	}
	d, ok := o.state.(*types.Dict)
	if !ok {
		return nil, false
	}
	for _, e := range *d {
		if k, _ := e.Key.(string); k == "_parameters" || k == "_buffers" || k == "_modules" {
			return d, true
		}
	}
	return nil, false
}

func dictGet(d *types.Dict, key string) any {
	var v any
	for _, e := range *d {
		if k, ok := e.Key.(string); ok && k == key {
			v = e.Value // the last one wins, as in Python
		}
	}
	return v
}

// hasTensor reports whether a tensor is reachable from v.
//
// It does not count against the visit budget: with its cache it costs at
// most one step per container edge, which the pickle's opcode limit bounds.
func (f *flattener) hasTensor(v any, depth int) (bool, error) {
	if depth > maxFlattenDepth {
		return false, &FormatError{File: f.file, Record: f.rec, Msg: fmt.Sprintf("objects nested deeper than %d", maxFlattenDepth)}
	}
	switch v.(type) {
	case *ptTensor:
		return true, nil
	case *types.Dict, *types.OrderedDict, *types.List, *types.Tuple, *ptObject:
	default:
		return false, nil
	}
	if r, ok := f.hasT[v]; ok {
		return r, nil
	}
	f.hasT[v] = false // a cycle back here adds nothing
	var entries []kv
	if o, ok := v.(*ptObject); ok {
		entries = objectEntries(o)
	} else {
		entries, _, _ = containerEntries(v)
	}
	for _, e := range entries {
		r, err := f.hasTensor(e.val, depth+1)
		if err != nil {
			return false, err
		}
		if r {
			f.hasT[v] = true
			return true, nil
		}
	}
	return false, nil
}

// walk flattens v under name prefix.
func (f *flattener) walk(prefix string, v any, depth int) error {
	if err := f.tick(depth); err != nil {
		return err
	}
	f.nameLen += len(prefix)
	if f.nameLen > maxNameBytes {
		return &FormatError{File: f.file, Record: f.rec, Msg: fmt.Sprintf("names total more than %d bytes (shared containers?)", maxNameBytes)}
	}
	if t, ok := v.(*ptTensor); ok {
		f.emit(prefix, t)
		return nil
	}
	if st, ok := moduleState(v); ok {
		return f.walkModule(prefix, st, depth)
	}
	var entries []kv
	kind := ""
	switch x := v.(type) {
	case *ptObject:
		kind = x.typeName()
		entries = objectEntries(x)
	case *types.Dict, *types.OrderedDict, *types.List, *types.Tuple:
		entries, kind, _ = containerEntries(v)
	default:
		f.skip(prefix, pyType(v))
		return nil
	}
	has, err := f.hasTensor(v, depth)
	if err != nil {
		return err
	}
	if !has {
		// Configs, param_groups, numpy arrays, ...: one entry for the lot.
		f.skip(prefix, kind)
		return nil
	}
	if f.path[v] {
		f.skip(prefix, kind+", cycle")
		return nil
	}
	f.path[v] = true
	defer delete(f.path, v)
	for _, e := range entries {
		k, ok := keyName(e.key)
		if !ok {
			f.skip(prefix, kind+" entry with "+pyType(e.key)+" key")
			continue
		}
		if err := f.walk(join(prefix, k), e.val, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// walkModule names a pickled nn.Module's tensors as its state_dict would:
// parameters, persistent buffers, then submodules, without the _modules
// level.
func (f *flattener) walkModule(prefix string, st *types.Dict, depth int) error {
	if f.path[st] {
		f.skip(prefix, "module, cycle")
		return nil
	}
	f.path[st] = true
	defer delete(f.path, st)
	nonPersistent := map[string]bool{}
	if s, ok := dictGet(st, "_non_persistent_buffers_set").(*ptSet); ok {
		for _, x := range s.items {
			if n, ok := x.(string); ok {
				nonPersistent[n] = true
			}
		}
	}
	for _, attr := range []string{"_parameters", "_buffers", "_modules"} {
		entries, _, ok := containerEntries(dictGet(st, attr))
		if !ok {
			continue
		}
		for _, e := range entries {
			if err := f.tick(depth + 1); err != nil {
				return err
			}
			k, ok := keyName(e.key)
			if !ok || e.val == nil {
				continue // state_dict leaves out None parameters and modules
			}
			name := join(prefix, k)
			if attr == "_buffers" && nonPersistent[k] {
				continue
			}
			if err := f.walk(name, e.val, depth+2); err != nil {
				return err
			}
		}
	}
	return nil
}
