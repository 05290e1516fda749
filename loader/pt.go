package loader

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"unsafe"

	"github.com/nlpodyssey/gopickle/types"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// The .pt reader has three layers:
//
//   - the container (this file): a zip whose <folder>/data.pkl is the
//     pickle and <folder>/data/<key> the raw storages, or the legacy
//     stream of pickles followed by the storages;
//   - the pickle (pickle_scan.go, pickle_torch.go): gopickle's machine,
//     guarded by a pre-scan, with hooks that rebuild tensor descriptions
//     and turn every other global into an inert placeholder;
//   - the walk (pt_flatten.go) that names tensors, and the decoding
//     (pt_decode.go) that converts each storage once, in bulk.
//
// Everything read from the pickle is checked against the bytes present
// before a tensor is allocated.

// Checkpoint is what a weights file holds, flattened.
type Checkpoint struct {
	File   string
	Format string // "pytorch-zip" or "pytorch-legacy" (others use "safetensors", "npz", "onnx")
	// Names lists tensor names in file order, dotted paths, e.g.
	// "model_state_dict.conv_lstm.cell_list.0.conv.weight". Dict keys and
	// list indices become components; a pickled nn.Module is named as its
	// state_dict would be; a file holding one bare tensor names it "tensor".
	Names   []string
	Tensors map[string]*tensor.Tensor // floats in Data, integers and bools exact in Ints
	// Skipped lists non-tensor entries, e.g. "epoch (int)",
	// "optimizer_state_dict.param_groups (list)",
	// "model_state_dict.x (numpy.ndarray)".
	Skipped []string
	// Ignored lists the globals the pickle named that were given no meaning
	// (e.g. "__main__.ConvLSTM", "numpy.core.multiarray._reconstruct").
	Ignored  []string
	Metadata map[string]string // free-form (e.g. "torch_version"); may be nil
}

// legacyMagic is the first pickle of a pre-1.6 torch.save file: protocol 2,
// LONG1 of 10 bytes 0x1950a86a20f9469cfc6c, little-endian.
var legacyMagic = []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19")

const legacyProtocolVersion = 1001

// LoadPT reads a PyTorch checkpoint written by torch.save, in the zip
// format (torch >= 1.6) or the legacy one, and converts every floating and
// integer tensor in it to float32.
//
// Tensors whose views (or tensors) share a storage in the file come back as
// separate copies; a tensor alone on its storage is decoded in place, so
// the loader's peak memory is about the float32 size of the tensors plus
// one storage.
func LoadPT(path string) (*Checkpoint, error) {
	return loadPTFile(path, true)
}

// InspectPT reads only the structure of a checkpoint: names, shapes and
// dtypes, with Data nil. Storage bytes are not read, but their sizes are
// checked against every tensor as LoadPT would.
func InspectPT(path string) (*Checkpoint, error) {
	return loadPTFile(path, false)
}

// LoadPTBytes is LoadPT over memory; name is used in errors.
func LoadPTBytes(name string, data []byte) (*Checkpoint, error) {
	return loadPT(name, bytes.NewReader(data), int64(len(data)), true)
}

func loadPTFile(path string, withData bool) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &FormatError{File: path, Msg: "not a regular file"}
	}
	return loadPT(path, f, st.Size(), withData)
}

// IsPT reports whether head, the first bytes of a file, looks like a
// PyTorch checkpoint: a zip whose entries include <folder>/data.pkl, or a
// legacy file starting with torch's magic-number pickle.
func IsPT(head []byte) bool {
	if bytes.HasPrefix(head, legacyMagic) {
		return true
	}
	if !bytes.HasPrefix(head, []byte("PK\x03\x04")) {
		return false
	}
	// torch writes data.pkl first; walk the local headers present in head.
	for off := 0; off+30 <= len(head) && string(head[off:off+4]) == "PK\x03\x04"; {
		flags := binary.LittleEndian.Uint16(head[off+6:])
		csize := int(binary.LittleEndian.Uint32(head[off+18:]))
		nlen := int(binary.LittleEndian.Uint16(head[off+26:]))
		elen := int(binary.LittleEndian.Uint16(head[off+28:]))
		if off+30+nlen > len(head) {
			break
		}
		if isDataPkl(string(head[off+30 : off+30+nlen])) {
			return true
		}
		if flags&0x8 != 0 || csize == 0xffffffff {
			break // sizes follow the data; cannot skip without the directory
		}
		off += 30 + nlen + elen + csize
	}
	// A whole small file: ask the central directory.
	if zr, err := zip.NewReader(bytes.NewReader(head), int64(len(head))); err == nil || errors.Is(err, zip.ErrInsecurePath) {
		for _, f := range zr.File {
			if isDataPkl(f.Name) {
				return true
			}
		}
	}
	return false
}

// ptRecord locates a storage's bytes.
type ptRecord struct {
	name string // for errors: "data/3", or "storage 9395..." in legacy files
	off  int64  // offset of stored bytes in the file (when zf is nil)
	size int64  // bytes available
	zf   *zip.File
}

// ptFile is a parsed checkpoint before its tensors are decoded.
type ptFile struct {
	name      string
	ra        io.ReaderAt
	size      int64
	format    string
	bigEndian bool
	up        *ptUnpickler
	root      any
	pickleRec string
	records   map[string]*ptRecord // by storage key
	meta      map[string]string
	// zip only
	zipFiles map[string]*zip.File // by name relative to the top folder
}

func loadPT(name string, ra io.ReaderAt, size int64, withData bool) (*Checkpoint, error) {
	pf := &ptFile{name: name, ra: ra, size: size, meta: map[string]string{}, records: map[string]*ptRecord{}}
	var head [512]byte
	n, _ := ra.ReadAt(head[:], 0)
	switch {
	case size == 0:
		return nil, &FormatError{File: name, Record: "header", Msg: "empty file"}
	case bytes.HasPrefix(head[:n], []byte("PK")):
		pf.format = "pytorch-zip"
		if err := pf.openZip(); err != nil {
			return nil, err
		}
	case n >= 262 && string(head[257:262]) == "ustar":
		return nil, &UnsupportedError{File: name, Record: "header", Msg: "tar-based torch.save format (torch < 0.4)"}
	default:
		pf.format = "pytorch-legacy"
		if err := pf.openLegacy(); err != nil {
			return nil, err
		}
	}
	return pf.checkpoint(withData)
}

// ---------------------------------------------------------------- zip

func (pf *ptFile) openZip() error {
	zr, err := zip.NewReader(pf.ra, pf.size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		// Names with ".." are harmless here: nothing is extracted.
		return &FormatError{File: pf.name, Record: "zip directory", Msg: err.Error()}
	}
	folder, err := ptZipFolder(pf.name, zr.File)
	if err != nil {
		return err
	}
	if folder == "" {
		return &FormatError{File: pf.name, Record: "zip directory", Msg: "no <folder>/data.pkl record: not a torch.save zip"}
	}
	pf.meta["archive_folder"] = folder
	pf.zipFiles = map[string]*zip.File{}
	for _, f := range zr.File {
		if rel, ok := strings.CutPrefix(f.Name, folder+"/"); ok {
			if _, dup := pf.zipFiles[rel]; !dup {
				pf.zipFiles[rel] = f
			}
		}
	}
	if _, ok := pf.zipFiles["constants.pkl"]; ok {
		pf.meta["torchscript"] = "true"
	}
	for rel, key := range map[string]string{
		"byteorder": "byteorder", "version": "version", ".format_version": "format_version",
		".data/version": "data_version", ".data/serialization_id": "serialization_id",
		".storage_alignment": "storage_alignment",
	} {
		if f, ok := pf.zipFiles[rel]; ok {
			b, err := pf.readZipSmall(rel, f, 128)
			if err != nil {
				return err
			}
			pf.meta[key] = strings.TrimSpace(string(b))
		}
	}
	switch bo := pf.meta["byteorder"]; bo {
	case "", "little":
	case "big":
		pf.bigEndian = true
	default:
		return &FormatError{File: pf.name, Record: "byteorder", Msg: fmt.Sprintf("byte order %q, want little or big", bo)}
	}
	pf.pickleRec = "data.pkl"
	data, err := pf.readZipSmall("data.pkl", pf.zipFiles["data.pkl"], maxPickleBytes)
	if err != nil {
		return err
	}
	if len(data) >= 2 && data[0] == 0x80 {
		pf.meta["pickle_protocol"] = fmt.Sprint(data[1])
	}
	pf.up = newPTUnpickler(pf.name, false)
	pf.root, err = pf.up.unpickle("data.pkl", data, true)
	if err != nil {
		return err
	}
	// Storage records, checked against the file now so Inspect sees the
	// same errors as Load.
	for _, s := range pf.up.order {
		rel := "data/" + s.key
		f, ok := pf.zipFiles[rel]
		if !ok {
			continue // reported if a tensor uses it
		}
		rec, err := pf.zipRecord(rel, f)
		if err != nil {
			return err
		}
		pf.records[s.key] = rec
	}
	return nil
}

// zipRecord locates an entry's bytes. Stored entries (all torch writes) are
// read in place at the offset the local header gives; others are streamed.
func (pf *ptFile) zipRecord(rel string, f *zip.File) (*ptRecord, error) {
	rec := &ptRecord{name: rel}
	if f.UncompressedSize64 > uint64(1)<<62 {
		return nil, &FormatError{File: pf.name, Record: rel, Msg: fmt.Sprintf("entry claims %d bytes", f.UncompressedSize64)}
	}
	rec.size = int64(f.UncompressedSize64)
	if f.Method != zip.Store {
		// torch never compresses, but a re-zipped file may. The declared
		// size is only a claim: bound it by deflate's best ratio (~1032:1)
		// over compressed bytes that exist, before anything trusts it.
		if f.CompressedSize64 > uint64(pf.size) || f.UncompressedSize64 > 1032*f.CompressedSize64+1024 {
			return nil, &FormatError{File: pf.name, Record: rel, Msg: fmt.Sprintf("compressed entry claims %d bytes from %d", f.UncompressedSize64, f.CompressedSize64)}
		}
		rec.zf = f
		return rec, nil
	}
	if f.CompressedSize64 != f.UncompressedSize64 {
		return nil, &FormatError{File: pf.name, Record: rel, Msg: fmt.Sprintf("stored entry with %d compressed and %d uncompressed bytes", f.CompressedSize64, f.UncompressedSize64)}
	}
	off, err := f.DataOffset()
	if err != nil {
		return nil, &FormatError{File: pf.name, Record: rel, Msg: "local header: " + err.Error()}
	}
	if off < 0 || off > pf.size || rec.size > pf.size-off {
		return nil, &FormatError{File: pf.name, Record: rel, Msg: fmt.Sprintf("%d bytes at offset %d run past the end of the %d-byte file", rec.size, off, pf.size)}
	}
	rec.off = off
	return rec, nil
}

func (pf *ptFile) readZipSmall(rel string, f *zip.File, max int64) ([]byte, error) {
	rec, err := pf.zipRecord(rel, f)
	if err != nil {
		return nil, err
	}
	if rec.size > max {
		return nil, &FormatError{File: pf.name, Record: rel, Msg: fmt.Sprintf("%d bytes, more than the %d allowed", rec.size, max)}
	}
	b := make([]byte, rec.size)
	r, closer, err := pf.openRecord(rec, 0)
	if err == nil {
		_, err = io.ReadFull(r, b)
		if closer != nil {
			closer.Close()
		}
	}
	if err != nil {
		return nil, &FormatError{File: pf.name, Record: rel, Msg: "reading: " + err.Error()}
	}
	return b, nil
}

// openRecord returns a reader of rec's bytes from byte skip on.
func (pf *ptFile) openRecord(rec *ptRecord, skip int64) (io.Reader, io.Closer, error) {
	if rec.zf == nil {
		return io.NewSectionReader(pf.ra, rec.off+skip, rec.size-skip), nil, nil
	}
	rc, err := rec.zf.Open()
	if err != nil {
		return nil, nil, err
	}
	if _, err := io.CopyN(io.Discard, rc, skip); err != nil {
		rc.Close()
		return nil, nil, err
	}
	return rc, rc, nil
}

// ---------------------------------------------------------------- legacy

// openLegacy reads the pre-zip layout: magic-number pickle, protocol
// version pickle, sys_info pickle, the main pickle, the pickled list of
// storage keys (sorted, not in order of use), then for each key an int64
// element count and the raw bytes.
func (pf *ptFile) openLegacy() error {
	pos := int64(0)
	pf.up = newPTUnpickler(pf.name, true)
	next := func(record string, hooks bool) (any, error) {
		r := io.NewSectionReader(pf.ra, pos, pf.size-pos)
		n, err := scanPickle(bufioReader(r), pf.size-pos)
		if err != nil {
			if pos == 0 {
				return nil, &FormatError{File: pf.name, Record: record, Msg: "not a PyTorch file (" + err.Error() + ")"}
			}
			return nil, &FormatError{File: pf.name, Record: record, Msg: err.Error()}
		}
		buf := make([]byte, n)
		if _, err := pf.ra.ReadAt(buf, pos); err != nil {
			return nil, &FormatError{File: pf.name, Record: record, Msg: "reading: " + err.Error()}
		}
		pos += n
		return pf.up.unpickle(record, buf, hooks)
	}
	magic, err := next("magic number", false)
	if err != nil {
		return err
	}
	if m, ok := magic.(*big.Int); !ok || m.Text(16) != "1950a86a20f9469cfc6c" {
		return &FormatError{File: pf.name, Record: "magic number", Msg: "not a PyTorch file (no torch magic number)"}
	}
	proto, err := next("protocol version", false)
	if err != nil {
		return err
	}
	if v, ok := proto.(int); !ok || v != legacyProtocolVersion {
		return &UnsupportedError{File: pf.name, Record: "protocol version", Msg: fmt.Sprintf("legacy protocol %s, want %d", pyRepr(proto), legacyProtocolVersion)}
	}
	pf.meta["legacy_protocol_version"] = fmt.Sprint(legacyProtocolVersion)
	sys, err := next("sys info", false)
	if err != nil {
		return err
	}
	if d, ok := sys.(*types.Dict); ok {
		if le, ok := dictGet(d, "little_endian").(bool); ok {
			pf.bigEndian = !le
			pf.meta["little_endian"] = fmt.Sprint(le)
		}
	}
	pf.pickleRec = "pickle"
	var head [2]byte
	if _, err := pf.ra.ReadAt(head[:], pos); err == nil && head[0] == 0x80 {
		pf.meta["pickle_protocol"] = fmt.Sprint(head[1])
	}
	if pf.root, err = next("pickle", true); err != nil {
		return err
	}
	keysObj, err := next("storage keys", false)
	if err != nil {
		return err
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return &FormatError{File: pf.name, Record: "storage keys", Msg: fmt.Sprintf("%s, want a list", pyType(keysObj))}
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if pf.bigEndian {
		bo = binary.BigEndian
	}
	for i, k := range *keys {
		key, ok := k.(string)
		if !ok {
			return &FormatError{File: pf.name, Record: "storage keys", Msg: fmt.Sprintf("key %d is %s, want str", i, pyType(k))}
		}
		rname := "storage " + key
		s := pf.up.storages[key]
		if s == nil {
			// The element size is only known from the pickle.
			return &FormatError{File: pf.name, Record: rname, Msg: "storage not referenced by the pickle"}
		}
		var cnt [8]byte
		if pos > pf.size-8 {
			return &FormatError{File: pf.name, Record: rname, Msg: fmt.Sprintf("truncated: size header at offset %d past the end of the %d-byte file", pos, pf.size)}
		}
		if _, err := pf.ra.ReadAt(cnt[:], pos); err != nil {
			return &FormatError{File: pf.name, Record: rname, Msg: "reading: " + err.Error()}
		}
		pos += 8
		numel := int64(bo.Uint64(cnt[:]))
		nbytes, ok := mulInt64(numel, int64(s.dtype.size))
		if numel < 0 || !ok || nbytes > pf.size-pos {
			return &FormatError{File: pf.name, Record: rname, Msg: fmt.Sprintf("truncated: %d elements of %s at offset %d, file has %d bytes", numel, s.dtype.name, pos, pf.size)}
		}
		if _, dup := pf.records[key]; dup {
			return &FormatError{File: pf.name, Record: "storage keys", Msg: fmt.Sprintf("key %s listed twice", key)}
		}
		pf.records[key] = &ptRecord{name: rname, off: pos, size: nbytes}
		pos += nbytes
	}
	return nil
}

// ---------------------------------------------------------------- tensors

// mulInt64 multiplies non-negative values, reporting overflow past 2^62.
func mulInt64(a, b int64) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	if a == 0 || b == 0 {
		return 0, true
	}
	if a > (1<<62)/b {
		return 0, false
	}
	return a * b, true
}

// maxTensorElements bounds one tensor (2^34 float32 = 64 GiB); maxBroadcast
// bounds how many more elements all tensors together may have than the
// file has bytes (each stored element takes at least one), so a tiny file
// cannot ask for a huge allocation.
const (
	maxTensorElements = 1 << 34
	maxBroadcast      = 1 << 24
)

// ptPlan is one output tensor and where its bytes are.
type ptPlan struct {
	name    string
	t       *ptTensor
	rec     *ptRecord
	numel   int64
	byteOff int64 // of element 0 of the storage view, in the record
	extent  int64 // elements of t.dtype the view can index from byteOff
	// rootBytes is the size of the whole (root) storage in the record.
	rootBytes int64
}

func (pf *ptFile) checkpoint(withData bool) (*Checkpoint, error) {
	fl := newFlattener(pf.name)
	fl.rec = pf.pickleRec
	if err := fl.walk("", pf.root, 0); err != nil {
		return nil, err
	}
	ck := &Checkpoint{
		File:     pf.name,
		Format:   pf.format,
		Tensors:  map[string]*tensor.Tensor{},
		Skipped:  fl.skipped,
		Ignored:  pf.up.ignored,
		Metadata: pf.meta,
	}
	for k, v := range pf.up.meta {
		ck.Metadata[k] = v
	}
	if len(pf.up.locations) > 0 {
		// Informational: every storage is loaded on the CPU regardless.
		ck.Metadata["storage_locations"] = strings.Join(pf.up.locations, ",")
	}
	var plans []*ptPlan
	var total int64
	for _, name := range fl.names {
		t := fl.tensors[name]
		if !t.dtype.numeric {
			ck.Skipped = append(ck.Skipped, name+" ("+t.dtype.name+" tensor)")
			continue
		}
		p, err := pf.plan(name, t)
		if err != nil {
			return nil, err
		}
		// Views may overlap (x and x.t(), expand()ed stride-0 tensors), so
		// the outputs can exceed the storage bytes; bound the excess.
		total += p.numel
		if total > pf.size+maxBroadcast {
			return nil, &FormatError{File: pf.name, Record: p.rec.name, Msg: fmt.Sprintf("tensor %s: overlapping or broadcast views ask for %d elements from a %d-byte file", name, total, pf.size)}
		}
		plans = append(plans, p)
		shape := append([]int(nil), t.shape...)
		ck.Names = append(ck.Names, name)
		ck.Tensors[name] = &tensor.Tensor{Shape: shape, DType: tensor.DType(t.dtype.name)}
	}
	if withData {
		if err := pf.decode(plans, ck); err != nil {
			return nil, err
		}
	}
	return ck, nil
}

// plan checks a tensor against its storage and the storage against the
// bytes present, before anything is allocated.
func (pf *ptFile) plan(name string, t *ptTensor) (*ptPlan, error) {
	s := t.storage
	root, elemOff := s, int64(0)
	if s.root != nil {
		root, elemOff = s.root, s.elemOff
	}
	rec := pf.records[root.key]
	recName := "data/" + root.key
	if pf.format == "pytorch-legacy" {
		recName = "storage " + root.key
	}
	if rec == nil {
		return nil, &FormatError{File: pf.name, Record: recName, Msg: fmt.Sprintf("storage record missing (tensor %s)", name)}
	}
	rootBytes, ok := mulInt64(root.numel, int64(root.dtype.size))
	if !ok || rootBytes > rec.size {
		return nil, &FormatError{File: pf.name, Record: rec.name, Msg: fmt.Sprintf("storage has %d bytes, %d elements of %s need %s (tensor %s)", rec.size, root.numel, root.dtype.name, bytesStr(rootBytes, ok), name)}
	}
	viewOff, _ := mulInt64(elemOff, int64(root.dtype.size))
	viewBytes, _ := mulInt64(s.numel, int64(s.dtype.size))
	p := &ptPlan{name: name, t: t, rec: rec, byteOff: viewOff, extent: viewBytes / int64(t.dtype.size), rootBytes: rootBytes}
	numel := int64(1)
	maxIdx := t.offset
	for i, d := range t.shape {
		var ok bool
		if numel, ok = mulInt64(numel, int64(d)); !ok || numel > maxTensorElements {
			return nil, &FormatError{File: pf.name, Record: rec.name, Msg: fmt.Sprintf("tensor %s: shape %s is too large", name, tensor.ShapeString(t.shape))}
		}
		if d > 0 {
			span, ok := mulInt64(int64(d-1), int64(t.stride[i]))
			if !ok || span > 1<<60 || maxIdx > 1<<60 {
				return nil, &FormatError{File: pf.name, Record: rec.name, Msg: fmt.Sprintf("tensor %s: stride %v out of range", name, t.stride)}
			}
			maxIdx += span
		}
	}
	p.numel = numel
	if numel > 0 {
		need, ok := mulInt64(maxIdx+1, int64(t.dtype.size))
		if !ok || need > viewBytes {
			return nil, &FormatError{File: pf.name, Record: rec.name, Msg: fmt.Sprintf("storage has %d bytes, tensor %s needs %s (shape %s, stride %v, offset %d, %s)", viewBytes, name, bytesStr(need, ok), tensor.ShapeString(t.shape), t.stride, t.offset, t.dtype.name)}
		}
	}
	return p, nil
}

func bytesStr(n int64, ok bool) string {
	if !ok {
		return "more than 2^62"
	}
	return fmt.Sprint(n)
}

// decode reads each storage once, in file order, and fills the tensors
// that use it. A tensor that is alone on its storage, contiguous and
// covering it is decoded straight into its Data; the others are gathered
// from a decoded copy of the storage that is dropped afterwards.
func (pf *ptFile) decode(plans []*ptPlan, ck *Checkpoint) error {
	users := map[*ptRecord][]*ptPlan{}
	var recs []*ptRecord
	for _, p := range plans {
		if users[p.rec] == nil {
			recs = append(recs, p.rec)
		}
		users[p.rec] = append(users[p.rec], p)
	}
	buf := make([]byte, 1<<20)
	for _, rec := range recs {
		ps := users[rec]
		type view struct {
			dtype   *ptDType
			byteOff int64
		}
		floats := map[view][]float32{}
		ints := map[view][]int64{}
		for _, p := range ps {
			out := ck.Tensors[p.name]
			t := p.t
			isFloat := out.DType.IsFloat()
			if p.numel == 0 {
				if isFloat {
					out.Data = []float32{}
				} else {
					out.Ints = []int64{}
				}
				continue
			}
			whole := len(ps) == 1 && t.offset == 0 && p.numel == p.extent && contiguous(t.shape, t.stride)
			// All views of one dtype share one decoded copy of the storage
			// (legacy storage views start at element-aligned offsets; a
			// view at another phase gets its own).
			size := int64(t.dtype.size)
			v := view{t.dtype, p.byteOff % size}
			start := int(p.byteOff/size + t.offset)
			if !isFloat {
				// Integer and bool tensors (step counts, num_batches_tracked,
				// masks) are small: decode the storage exactly, then gather.
				src, ok := ints[v]
				if !ok {
					raw := make([]byte, p.rootBytes-v.byteOff)
					if err := pf.readRaw(rec, v.byteOff, raw, p.name); err != nil {
						return err
					}
					src = make([]int64, len(raw)/int(size))
					tensor.DecodeInts(src, raw, out.DType, pf.byteOrder())
					ints[v] = src
				}
				out.Ints = make([]int64, p.numel)
				gatherStrided(out.Ints, src, start, t.shape, t.stride)
				continue
			}
			if whole {
				out.Data = make([]float32, p.numel)
				if err := pf.readFloats(rec, p.byteOff, t.dtype, out.Data, buf, p.name); err != nil {
					return err
				}
				continue
			}
			src, ok := floats[v]
			if !ok {
				src = make([]float32, (p.rootBytes-v.byteOff)/size)
				if err := pf.readFloats(rec, v.byteOff, t.dtype, src, buf, p.name); err != nil {
					return err
				}
				floats[v] = src
			}
			out.Data = make([]float32, p.numel)
			gatherStrided(out.Data, src, start, t.shape, t.stride)
		}
	}
	return nil
}

// byteOrder is the order of the file's multi-byte elements.
func (pf *ptFile) byteOrder() binary.ByteOrder {
	if pf.bigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// readRaw reads len(dst) bytes of rec starting byteOff bytes in.
func (pf *ptFile) readRaw(rec *ptRecord, byteOff int64, dst []byte, what string) error {
	r, closer, err := pf.openRecord(rec, byteOff)
	if err != nil {
		return &FormatError{File: pf.name, Record: rec.name, Msg: fmt.Sprintf("reading for tensor %s: %v", what, err)}
	}
	if closer != nil {
		defer closer.Close()
	}
	if _, err := io.ReadFull(r, dst); err != nil {
		return &FormatError{File: pf.name, Record: rec.name, Msg: fmt.Sprintf("reading for tensor %s: %v", what, err)}
	}
	return nil
}

// hostLittleEndian is true on the machines whose float32 memory layout is
// the one little-endian files store.
var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// readFloats decodes len(dst) elements of dtype from rec, starting byteOff
// bytes in, streaming through buf.
func (pf *ptFile) readFloats(rec *ptRecord, byteOff int64, dtype *ptDType, dst []float32, buf []byte, what string) error {
	r, closer, err := pf.openRecord(rec, byteOff)
	if err != nil {
		return &FormatError{File: pf.name, Record: rec.name, Msg: fmt.Sprintf("reading for tensor %s: %v", what, err)}
	}
	if closer != nil {
		defer closer.Close()
	}
	if dtype.name == "float32" && !pf.bigEndian && hostLittleEndian && len(dst) > 0 {
		// The stored bytes are already dst's bytes: read them in place,
		// with no decode pass and no intermediate buffer.
		raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 4*len(dst))
		if _, err := io.ReadFull(r, raw); err != nil {
			return &FormatError{File: pf.name, Record: rec.name, Msg: fmt.Sprintf("reading for tensor %s: %v", what, err)}
		}
		return nil
	}
	per := len(buf) / dtype.size
	for len(dst) > 0 {
		n := min(per, len(dst))
		chunk := buf[:n*dtype.size]
		if _, err := io.ReadFull(r, chunk); err != nil {
			return &FormatError{File: pf.name, Record: rec.name, Msg: fmt.Sprintf("reading for tensor %s: %v", what, err)}
		}
		tensor.DecodeFloats(dst[:n], chunk, tensor.DType(dtype.name), pf.byteOrder())
		dst = dst[n:]
	}
	return nil
}
