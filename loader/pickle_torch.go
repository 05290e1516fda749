package loader

import (
	"bytes"
	"fmt"
	"math/big"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// This file is the thin PyTorch layer over gopickle's pickle machine: the
// FindClass and PersistentLoad hooks, the few torch functions that rebuild
// tensors, and inert placeholders for every other global. Nothing named by
// a pickle is ever executed; the known functions only record their
// arguments after checking their types.

// ptDType is a tensor element type as torch names it.
type ptDType struct {
	name string
	size int // bytes per element
	// numeric reports a type we convert to float32 (floats, ints, bool);
	// tensors of the others (complex, quantized, float8) are skipped.
	numeric bool
}

var ptDTypes = map[string]*ptDType{}

func init() {
	add := func(name string, size int, conv bool, storage string, aliases ...string) {
		d := &ptDType{name: name, size: size, numeric: conv}
		ptDTypes[name] = d
		for _, a := range aliases {
			ptDTypes[a] = d
		}
		if storage != "" {
			ptStorageTypes[storage] = d
		}
	}
	add("float32", 4, true, "FloatStorage", "float")
	add("float64", 8, true, "DoubleStorage", "double")
	add("float16", 2, true, "HalfStorage", "half")
	add("bfloat16", 2, true, "BFloat16Storage")
	add("int64", 8, true, "LongStorage", "long")
	add("int32", 4, true, "IntStorage", "int")
	add("int16", 2, true, "ShortStorage", "short")
	add("int8", 1, true, "CharStorage")
	add("uint8", 1, true, "ByteStorage")
	add("bool", 1, true, "BoolStorage")
	add("complex64", 8, false, "ComplexFloatStorage", "cfloat")
	add("complex128", 16, false, "ComplexDoubleStorage", "cdouble")
	add("complex32", 4, false, "", "chalf")
	add("qint8", 1, false, "QInt8Storage")
	add("quint8", 1, false, "QUInt8Storage")
	add("qint32", 4, false, "QInt32Storage")
	add("quint4x2", 1, false, "QUInt4x2Storage")
	add("quint2x4", 1, false, "QUInt2x4Storage")
	add("float8_e4m3fn", 1, false, "")
	add("float8_e5m2", 1, false, "")
	add("uint16", 2, false, "")
	add("uint32", 4, false, "")
	add("uint64", 8, false, "")
	// Untyped storages count bytes.
	ptStorageTypes["UntypedStorage"] = ptDTypes["uint8"]
	ptStorageTypes["_UntypedStorage"] = ptDTypes["uint8"]
}

var ptStorageTypes = map[string]*ptDType{}

// ptStorageClass is a storage type global (torch.FloatStorage, ...).
type ptStorageClass struct {
	name  string
	dtype *ptDType // nil for TypedStorage, whose dtype is not in the name
}

// ptDTypeValue is a dtype global (torch.float32, ...).
type ptDTypeValue struct{ dtype *ptDType }

// ptStorage is one storage record (or, in legacy files, a view of one).
type ptStorage struct {
	key      string   // record key: "3" in data/3, or the legacy key
	dtype    *ptDType // element type the storage was saved as
	numel    int64    // elements of dtype
	location string
	// A legacy storage view starts elemOff elements into root.
	root    *ptStorage
	elemOff int64
}

// ptTensor is a rebuilt tensor: a strided view of a storage.
type ptTensor struct {
	storage *ptStorage
	dtype   *ptDType
	offset  int64 // in elements of dtype
	shape   []int
	stride  []int
}

// BUILD on a tensor or set (tensor subclasses with a __setstate__, say)
// keeps the value and drops the state.
func (*ptTensor) PySetState(any) error { return nil }
func (*ptSet) PySetState(any) error    { return nil }

// ptGlobal is a global the pickle named that we give no meaning: a class or
// function of the user's program, numpy, argparse, torch.nn, ...
// Calling or instantiating it yields a ptObject that keeps what it was
// given, so that modules pickled whole can still be walked.
type ptGlobal struct{ module, name string }

func (g *ptGlobal) String() string { return g.module + "." + g.name }

// ptObject is an instance of a placeholder: its constructor arguments, the
// state BUILD gave it, and any items SETITEM/APPEND added (dict and list
// subclasses such as collections.defaultdict).
type ptObject struct {
	class *ptGlobal
	args  []any
	state any
	items *types.Dict
	list  []any
}

// ptSet is a Python set or frozenset, kept as its elements.
type ptSet struct{ items []any }

// torchVersion is torch.__version__ (a str subclass).
type torchVersion string

// typeName is the Python-ish name of what o is, for Skipped entries.
func (o *ptObject) typeName() string {
	switch o.class.String() {
	case "copyreg._reconstructor", "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct":
		// (cls, base, state): the instance is of cls.
		if len(o.args) > 0 {
			if g, ok := o.args[0].(*ptGlobal); ok {
				return g.String()
			}
		}
	case "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar":
		if len(o.args) > 0 {
			if d, ok := o.args[0].(*ptObject); ok && len(d.args) > 0 {
				if s, ok := d.args[0].(string); ok {
					return "numpy." + numpyScalarName(s)
				}
			}
		}
		return "numpy scalar"
	}
	return o.class.String()
}

func numpyScalarName(code string) string {
	switch code {
	case "f8":
		return "float64"
	case "f4":
		return "float32"
	case "f2":
		return "float16"
	case "i8":
		return "int64"
	case "i4":
		return "int32"
	case "b1":
		return "bool_"
	}
	return code
}

// Call is REDUCE (and OBJ/INST) on a placeholder.
func (g *ptGlobal) Call(args ...any) (any, error) {
	return &ptObject{class: g, args: args}, nil
}

// PyNew is NEWOBJ on a placeholder.
func (g *ptGlobal) PyNew(args ...any) (any, error) {
	return &ptObject{class: g, args: args}, nil
}

// PySetState is BUILD on a placeholder; a second BUILD replaces the state,
// which is all a checkpoint needs.
func (o *ptObject) PySetState(state any) error {
	o.state = state
	return nil
}

func (o *ptObject) Set(k, v any) {
	if o.items == nil {
		o.items = types.NewDict()
	}
	o.items.Set(k, v)
}

func (o *ptObject) Append(v any) { o.list = append(o.list, v) }

// ptFunc is a global with a meaning here; call does the work.
type ptFunc struct {
	name string
	call func(args []any) (any, error)
}

func (f *ptFunc) Call(args ...any) (any, error) {
	v, err := f.call(args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	return v, nil
}

// PyNew lets NEWOBJ on a known class (TorchVersion, set) behave as a call.
func (f *ptFunc) PyNew(args ...any) (any, error) { return f.Call(args...) }

// ptUnpickler holds what one load's hooks share.
type ptUnpickler struct {
	file     string
	legacy   bool
	storages map[string]*ptStorage
	order    []*ptStorage // storages in order of first reference
	ignored  []string
	seenGlob map[string]bool
	meta     map[string]string
	// storage locations ("cpu", "cuda:0", ...) in order of appearance
	locations []string
	seenLoc   map[string]bool
}

func newPTUnpickler(file string, legacy bool) *ptUnpickler {
	return &ptUnpickler{
		file:     file,
		legacy:   legacy,
		storages: map[string]*ptStorage{},
		seenGlob: map[string]bool{},
		meta:     map[string]string{},
		seenLoc:  map[string]bool{},
	}
}

// maxTensorRank bounds shapes read from a pickle; torch allows 64 dims.
const maxTensorRank = 64

// findClass gives meaning to the globals that rebuild tensors and turns all
// others into placeholders. gopickle resolves collections.OrderedDict,
// builtins.list/dict, __builtin__.object and copy_reg._reconstructor itself
// before asking us.
func (p *ptUnpickler) findClass(module, name string) (any, error) {
	full := module + "." + name
	switch full {
	case "torch._utils._rebuild_tensor":
		return &ptFunc{full, func(a []any) (any, error) { return p.rebuildTensor(a, 4, nil) }}, nil
	case "torch._utils._rebuild_tensor_v2":
		return &ptFunc{full, func(a []any) (any, error) { return p.rebuildTensor(a, 6, nil) }}, nil
	case "torch._utils._rebuild_tensor_v3":
		// (storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])
		return &ptFunc{full, func(a []any) (any, error) {
			if len(a) < 7 {
				return nil, fmt.Errorf("%d arguments, want 7 or 8", len(a))
			}
			d, ok := a[6].(*ptDTypeValue)
			if !ok {
				return nil, fmt.Errorf("argument 7 is %s, want a torch dtype", pyType(a[6]))
			}
			return p.rebuildTensor(a, 7, d.dtype)
		}}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		// (data, requires_grad, backward_hooks[, state]): the data is the tensor.
		return &ptFunc{full, func(a []any) (any, error) {
			if len(a) < 3 {
				return nil, fmt.Errorf("%d arguments, want 3 or 4", len(a))
			}
			return a[0], nil
		}}, nil
	case "torch._tensor._rebuild_from_type_v2", "torch._tensor._rebuild_from_type":
		// (func, new_type, args, state): a tensor subclass; keep the tensor.
		return &ptFunc{full, func(a []any) (any, error) {
			if len(a) < 3 {
				return nil, fmt.Errorf("%d arguments, want 4", len(a))
			}
			args, ok := a[2].(*types.Tuple)
			if !ok {
				return nil, fmt.Errorf("argument 3 is %s, want a tuple", pyType(a[2]))
			}
			switch f := a[0].(type) {
			case *ptFunc:
				if strings.HasPrefix(f.name, "torch._tensor._rebuild_from_type") {
					// Nested chains would recurse once per level.
					return nil, fmt.Errorf("nested %s", f.name)
				}
				return f.Call(*args...)
			case *ptGlobal:
				return f.Call(*args...)
			}
			return nil, fmt.Errorf("argument 1 is %s, want a function", pyType(a[0]))
		}}, nil
	case "torch.torch_version.TorchVersion":
		return &ptFunc{full, func(a []any) (any, error) {
			if len(a) == 1 {
				if s, ok := a[0].(string); ok {
					p.meta["torch_version"] = s
					return torchVersion(s), nil
				}
			}
			return nil, fmt.Errorf("want one string argument")
		}}, nil
	case "builtins.set", "__builtin__.set", "builtins.frozenset", "__builtin__.frozenset":
		return &ptFunc{full, func(a []any) (any, error) {
			s := &ptSet{}
			if len(a) == 1 {
				if l, ok := a[0].(*types.List); ok {
					s.items = *l
				}
			}
			return s, nil
		}}, nil
	case "_codecs.encode":
		// Protocol 2 writes bytes as _codecs.encode(str, "latin1").
		return &ptFunc{full, func(a []any) (any, error) {
			if len(a) == 2 {
				s, ok1 := a[0].(string)
				enc, ok2 := a[1].(string)
				if ok1 && ok2 && (enc == "latin1" || enc == "latin-1") {
					b := make([]byte, 0, len(s))
					for _, r := range s {
						b = append(b, byte(r))
					}
					return b, nil
				}
			}
			return nil, fmt.Errorf("want (str, 'latin1')")
		}}, nil
	}
	if module == "torch" || module == "torch.cuda" || module == "torch.storage" {
		if d, ok := ptStorageTypes[name]; ok {
			return &ptStorageClass{name: full, dtype: d}, nil
		}
		if name == "TypedStorage" || name == "_TypedStorage" {
			return &ptStorageClass{name: full}, nil
		}
	}
	if module == "torch" {
		if d, ok := ptDTypes[name]; ok {
			return &ptDTypeValue{dtype: d}, nil
		}
	}
	if !p.seenGlob[full] {
		p.seenGlob[full] = true
		p.ignored = append(p.ignored, full)
	}
	return &ptGlobal{module: module, name: name}, nil
}

// persistentLoad resolves the storages a pickle refers to:
// ('storage', storage_type, key, location, numel) and, in legacy files, a
// sixth view_metadata element, and ('module', cls, file, source).
func (p *ptUnpickler) persistentLoad(id any) (any, error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() == 0 {
		return nil, fmt.Errorf("persistent id is %s, want a tuple", pyType(id))
	}
	kind, _ := t.Get(0).(string)
	switch kind {
	case "module":
		if t.Len() < 2 {
			return nil, fmt.Errorf("module persistent id has %d elements", t.Len())
		}
		return t.Get(1), nil
	case "storage":
	default:
		return nil, fmt.Errorf("persistent id of kind %q", kind)
	}
	if t.Len() < 5 {
		return nil, fmt.Errorf("storage persistent id has %d elements, want 5", t.Len())
	}
	var dtype *ptDType
	switch c := t.Get(1).(type) {
	case *ptStorageClass:
		dtype = c.dtype
		if dtype == nil {
			return nil, fmt.Errorf("storage type %s does not name a dtype", c.name)
		}
	case *ptDTypeValue:
		dtype = c.dtype
	default:
		return nil, fmt.Errorf("storage type is %s, want a torch storage class", pyType(t.Get(1)))
	}
	key, ok := t.Get(2).(string)
	if !ok || key == "" || len(key) > 256 {
		return nil, fmt.Errorf("storage key is %s, want a short string", pyType(t.Get(2)))
	}
	location, _ := t.Get(3).(string)
	numel, ok := pyInt(t.Get(4))
	if !ok || numel < 0 {
		return nil, fmt.Errorf("storage %s: element count %s", key, pyRepr(t.Get(4)))
	}
	if !p.seenLoc[location] {
		p.seenLoc[location] = true
		p.locations = append(p.locations, location)
	}
	s, seen := p.storages[key]
	if !seen {
		s = &ptStorage{key: key, dtype: dtype, numel: numel, location: location}
		p.storages[key] = s
		p.order = append(p.order, s)
	} else if s.dtype != dtype || s.numel != numel {
		return nil, fmt.Errorf("storage %s referenced as %d×%s and %d×%s", key, s.numel, s.dtype.name, numel, dtype.name)
	}
	if p.legacy && t.Len() >= 6 && t.Get(5) != nil {
		// An old storage view: (view_key, offset, view_size) of the root.
		vm, ok := t.Get(5).(*types.Tuple)
		if !ok || vm.Len() != 3 {
			return nil, fmt.Errorf("storage %s: view metadata is %s", key, pyType(t.Get(5)))
		}
		vkey, ok1 := vm.Get(0).(string)
		off, ok2 := pyInt(vm.Get(1))
		size, ok3 := pyInt(vm.Get(2))
		if !ok1 || !ok2 || !ok3 || off < 0 || size < 0 || off > s.numel || size > s.numel-off {
			return nil, fmt.Errorf("storage %s: view %s out of range of %d elements", key, pyRepr(vm), s.numel)
		}
		return &ptStorage{key: vkey, dtype: dtype, numel: size, location: location, root: s, elemOff: off}, nil
	}
	return s, nil
}

// rebuildTensor checks _rebuild_tensor{,_v2,_v3} arguments:
// (storage, storage_offset, size, stride, ...).
func (p *ptUnpickler) rebuildTensor(a []any, want int, dtype *ptDType) (any, error) {
	if len(a) < want || len(a) > want+1 {
		return nil, fmt.Errorf("%d arguments, want %d", len(a), want)
	}
	s, ok := a[0].(*ptStorage)
	if !ok {
		return nil, fmt.Errorf("argument 1 is %s, want a storage", pyType(a[0]))
	}
	off, ok := pyInt(a[1])
	if !ok || off < 0 {
		return nil, fmt.Errorf("storage offset %s", pyRepr(a[1]))
	}
	shape, err := intTuple(a[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(a[3], "stride")
	if err != nil {
		return nil, err
	}
	if len(stride) != len(shape) {
		return nil, fmt.Errorf("size has %d dimensions, stride %d", len(shape), len(stride))
	}
	if dtype == nil {
		dtype = s.dtype
	}
	return &ptTensor{storage: s, dtype: dtype, offset: off, shape: shape, stride: stride}, nil
}

func intTuple(v any, what string) ([]int, error) {
	var items []any
	switch t := v.(type) {
	case *types.Tuple:
		items = *t
	case *types.List:
		items = *t
	case *ptObject:
		// torch.Size((...)) pickled as a REDUCE of its class.
		if len(t.args) == 1 {
			switch a := t.args[0].(type) {
			case *types.Tuple, *types.List:
				return intTuple(a, what)
			}
		}
		return nil, fmt.Errorf("%s is %s, want a tuple", what, t.class)
	default:
		return nil, fmt.Errorf("%s is %s, want a tuple", what, pyType(v))
	}
	if len(items) > maxTensorRank {
		return nil, fmt.Errorf("%s has %d dimensions, more than %d", what, len(items), maxTensorRank)
	}
	out := make([]int, len(items))
	for i, x := range items {
		n, ok := pyInt(x)
		if !ok || n < 0 || n > 1<<53 {
			return nil, fmt.Errorf("%s[%d] is %s", what, i, pyRepr(x))
		}
		out[i] = int(n)
	}
	return out, nil
}

// pyInt accepts a Python int (gopickle gives int, or *big.Int when large)
// that fits in int64.
func pyInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), true
		}
	case bool:
		// bool is an int subclass; torch never writes it here.
	}
	return 0, false
}

// pyType names the Python type of a value built by gopickle or our hooks.
func pyType(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case torchVersion:
		return "str"
	case []byte:
		return "bytes"
	case *types.ByteArray:
		return "bytearray"
	case *types.List:
		return "list"
	case *types.Tuple:
		return "tuple"
	case *types.Dict:
		return "dict"
	case *types.OrderedDict:
		return "collections.OrderedDict"
	case *types.Set, *ptSet:
		return "set"
	case *types.FrozenSet:
		return "frozenset"
	case *ptTensor:
		return "tensor"
	case *ptStorage:
		return "storage"
	case *ptStorageClass:
		return x.name
	case *ptDTypeValue:
		return "torch.dtype"
	case *ptGlobal:
		return x.String()
	case *ptObject:
		return x.typeName()
	case *ptFunc:
		return x.name
	}
	return fmt.Sprintf("%T", v)
}

// pyRepr is a short description of a scalar for error messages; it never
// walks containers, which may be huge or cyclic.
func pyRepr(v any) string {
	switch x := v.(type) {
	case int:
		return fmt.Sprint(x)
	case *big.Int:
		s := x.String()
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return s
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("%q", x)
	}
	return pyType(v)
}

// unpickle runs gopickle over one pickle that scanPickle has accepted.
// gopickle panics on some malformed input (unhashable dict keys, empty
// LONG1, ...); the panic is contained and reported as a FormatError.
func (p *ptUnpickler) unpickle(record string, data []byte, hooks bool) (v any, err error) {
	if _, err := scanPickleBytes(data); err != nil {
		return nil, &FormatError{File: p.file, Record: record, Msg: err.Error()}
	}
	defer func() {
		if r := recover(); r != nil {
			msg := fmt.Sprint(r)
			if len(msg) > 200 {
				msg = msg[:200]
			}
			err = &FormatError{File: p.file, Record: record, Msg: "malformed pickle: " + msg}
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(data))
	if hooks {
		u.FindClass = p.findClass
		u.PersistentLoad = p.persistentLoad
	} else {
		u.FindClass = func(module, name string) (any, error) {
			return &ptGlobal{module: module, name: name}, nil
		}
	}
	v, err = u.Load()
	if err != nil {
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		return nil, &FormatError{File: p.file, Record: record, Msg: "pickle: " + strings.TrimSpace(msg)}
	}
	return v, nil
}
