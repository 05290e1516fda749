package loader

// NumPy .npy / .npz reading and writing.
//
// Format reference: numpy/lib/format.py (NEP 1). A .npy file is
//
//	"\x93NUMPY" major minor HEADER_LEN HEADER DATA
//
// where HEADER_LEN is a little-endian uint16 (version 1.0) or uint32
// (versions 2.0 and 3.0) and HEADER is the repr of a Python dict with
// exactly the keys 'descr', 'fortran_order' and 'shape'. A .npz file is a
// zip archive of .npy files (stored by np.savez, deflated by
// np.savez_compressed).

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/convlstm-go/convlstm-go/tensor"
)

const (
	npyMagic = "\x93NUMPY"
	// npyMaxHeaderLen bounds the header dict we are willing to read. NumPy
	// itself refuses headers over 10000 bytes by default; real headers for
	// the dtypes we accept are well under 200 bytes.
	npyMaxHeaderLen = 1 << 16
	// npyMaxDims bounds the number of dimensions (NumPy's NPY_MAXDIMS is 32
	// in 1.x and 64 in 2.x).
	npyMaxDims = 64
	// npyChunk is the size of the buffer the data is decoded through.
	npyChunk = 256 << 10
)

// IsNPY reports whether head (the first bytes of a file) starts with the
// NumPy .npy magic string.
func IsNPY(head []byte) bool {
	return len(head) >= len(npyMagic) && string(head[:len(npyMagic)]) == npyMagic
}

// IsNPZ reports whether head (the first bytes of a file) is the start of a
// zip archive whose first entry's name ends in ".npy", as np.savez and
// np.savez_compressed write. The entry name must lie within head (it starts
// at byte 30 of the local file header).
func IsNPZ(head []byte) bool {
	if len(head) < 30 || string(head[:4]) != "PK\x03\x04" {
		return false
	}
	nameLen := int(binary.LittleEndian.Uint16(head[26:28]))
	if nameLen < len(".npy") || len(head) < 30+nameLen {
		return false
	}
	return strings.HasSuffix(string(head[30:30+nameLen]), ".npy")
}

// npyDType describes one element type we can read.
type npyDType struct {
	descr string       // as in the header, e.g. "<f4"
	name  tensor.DType // e.g. "float32"
	kind  byte         // 'f', 'i', 'u', 'b'
	size  int          // bytes per element
	big   bool         // big-endian
}

// npyParseDescr maps a simple dtype descr string to npyDType.
func npyParseDescr(descr string) (npyDType, bool, string) {
	// ok=false with a non-empty message means "understood but unsupported";
	// ok=false with an empty message means "malformed".
	if len(descr) < 2 {
		return npyDType{}, false, ""
	}
	order, kind, sizeStr := descr[0], descr[1], descr[2:]
	switch order {
	case '<', '>', '|', '=':
	default:
		return npyDType{}, false, ""
	}
	if kind == 'O' {
		return npyDType{}, false, "object dtype '" + descr + "': pickled object arrays are never loaded"
	}
	size, err := strconv.Atoi(sizeStr)
	if err != nil || size <= 0 || strconv.Itoa(size) != sizeStr {
		if strings.IndexByte("mMSUVa", kind) >= 0 {
			// datetime '<M8[ns]', strings, void: valid but not numeric.
			return npyDType{}, false, "dtype '" + descr + "' is not supported (want float16/32/64, int8..64, uint8..64 or bool)"
		}
		return npyDType{}, false, ""
	}
	dt := npyDType{descr: descr, kind: kind, size: size, big: order == '>'}
	switch kind {
	case 'f':
		switch size {
		case 2:
			dt.name = "float16"
		case 4:
			dt.name = "float32"
		case 8:
			dt.name = "float64"
		}
	case 'i', 'u':
		switch size {
		case 1, 2, 4, 8:
			dt.name = tensor.DType(map[byte]string{'i': "int", 'u': "uint"}[kind] + strconv.Itoa(8*size))
		}
	case 'b':
		if size == 1 {
			dt.name = "bool"
		}
	}
	if dt.name == "" {
		return npyDType{}, false, "dtype '" + descr + "' is not supported (want float16/32/64, int8..64, uint8..64 or bool)"
	}
	if size > 1 && order != '<' && order != '>' {
		// '|' is only meaningful for single bytes; '=' (native) is never
		// written by NumPy and its meaning depends on the writer's machine.
		return npyDType{}, false, "dtype '" + descr + "' has no explicit byte order"
	}
	return dt, true, ""
}

// DecodeNPY decodes a .npy stream. name is used in error messages; size is
// the number of bytes r holds (-1 if unknown). When size is known, the
// shape is checked against it before anything is allocated; when it is
// unknown the output grows only as data actually arrives.
func DecodeNPY(name string, r io.Reader, size int64) (*tensor.Tensor, error) {
	return npyDecode(name, "", r, size, true)
}

// ReadNPY reads a .npy file.
func ReadNPY(path string) (*tensor.Tensor, error) {
	return npyFile(path, true)
}

// InspectNPY reads only a .npy file's header: the shape and dtype, checked
// against the file's size as ReadNPY checks them, with no data (Data and
// Ints are nil).
func InspectNPY(path string) (*tensor.Tensor, error) {
	return npyFile(path, false)
}

func npyFile(path string, withData bool) (*tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if !st.Mode().IsRegular() {
		size = -1
	}
	return npyDecode(path, "", f, size, withData)
}

func npyDecode(file, rec string, r io.Reader, size int64, withData bool) (*tensor.Tensor, error) {
	ferr := func(format string, args ...any) error {
		return &FormatError{File: file, Record: rec, Msg: fmt.Sprintf(format, args...)}
	}
	readErr := func(what string, want int, err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ferr("truncated %s: want %d bytes", what, want)
		}
		return ferr("reading %s: %v", what, err)
	}

	var pre [12]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ferr("not a .npy file: shorter than the 8-byte magic and version")
		}
		return nil, readErr("magic", 8, err)
	}
	if !IsNPY(pre[:8]) {
		return nil, ferr("not a .npy file: bad magic %q (want \"\\x93NUMPY\")", pre[:6])
	}
	major, minor := pre[6], pre[7]
	var hlenSize int
	switch {
	case major == 1 && minor == 0:
		hlenSize = 2
	case (major == 2 || major == 3) && minor == 0:
		hlenSize = 4
	default:
		return nil, &UnsupportedError{File: file, Record: rec,
			Msg: fmt.Sprintf(".npy format version %d.%d (want 1.0, 2.0 or 3.0)", major, minor)}
	}
	if _, err := io.ReadFull(r, pre[8:8+hlenSize]); err != nil {
		return nil, readErr("header length", hlenSize, err)
	}
	var hlen int64
	if hlenSize == 2 {
		hlen = int64(binary.LittleEndian.Uint16(pre[8:10]))
	} else {
		hlen = int64(binary.LittleEndian.Uint32(pre[8:12]))
	}
	prefix := int64(8 + hlenSize)
	if hlen > npyMaxHeaderLen {
		return nil, ferr("absurd header length %d (limit %d)", hlen, npyMaxHeaderLen)
	}
	if size >= 0 && prefix+hlen > size {
		return nil, ferr("truncated header: header length %d but only %d bytes follow the preamble", hlen, size-prefix)
	}
	hbuf := make([]byte, hlen)
	if _, err := io.ReadFull(r, hbuf); err != nil {
		return nil, readErr("header", int(hlen), err)
	}
	hdr, err := npyParseHeader(string(hbuf))
	if err != nil {
		return nil, ferr("bad header %q: %v", npyTrunc(string(hbuf)), err)
	}
	if hdr.descrList {
		return nil, &UnsupportedError{File: file, Record: rec, Msg: "structured (record) dtype is not supported"}
	}
	dt, ok, why := npyParseDescr(hdr.descr)
	if !ok {
		if why != "" {
			return nil, &UnsupportedError{File: file, Record: rec, Msg: why}
		}
		return nil, ferr("bad dtype descr %q", hdr.descr)
	}

	// Element count, guarded against overflow.
	n := 1
	limit := math.MaxInt / 8 // so that n*8 and n*4 (the output) fit in int
	for _, d := range hdr.shape {
		if d != 0 && n > limit/d {
			return nil, ferr("absurd shape %s: element count overflows", tensor.ShapeString(hdr.shape))
		}
		n *= d
	}
	nbytes := int64(n) * int64(dt.size)
	shapeStr := tensor.ShapeString(hdr.shape)
	if size >= 0 {
		avail := size - prefix - hlen
		if nbytes > avail {
			return nil, ferr("truncated data: shape %s of %s needs %d bytes, only %d present", shapeStr, dt.descr, nbytes, avail)
		}
		if nbytes < avail {
			return nil, ferr("%d trailing bytes after the data of shape %s of %s (%d bytes)", avail-nbytes, shapeStr, dt.descr, nbytes)
		}
	}

	if !withData {
		return &tensor.Tensor{Shape: append([]int{}, hdr.shape...), DType: dt.name}, nil
	}

	// Floats are read into float32, integers and bools exactly into int64.
	var out []float32
	var ints []int64
	isFloat := dt.name.IsFloat()
	switch {
	case size >= 0 && isFloat:
		out = make([]float32, n)
	case size >= 0:
		ints = make([]int64, n)
	case isFloat:
		out = make([]float32, 0, min(n, npyChunk))
	default:
		ints = make([]int64, 0, min(n, npyChunk))
	}
	bo := binary.ByteOrder(binary.LittleEndian)
	if dt.big {
		bo = binary.BigEndian
	}
	buf := make([]byte, min(nbytes, npyChunk))
	done := 0
	for remaining := nbytes; remaining > 0; {
		c := int(min(remaining, int64(len(buf))))
		if got, err := io.ReadFull(r, buf[:c]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, ferr("truncated data: shape %s of %s needs %d bytes, only %d present",
					shapeStr, dt.descr, nbytes, nbytes-remaining+int64(got))
			}
			return nil, ferr("reading data: %v", err)
		}
		k := c / dt.size
		if isFloat {
			if size < 0 {
				out = slices.Grow(out, k)[:len(out)+k]
			}
			tensor.DecodeFloats(out[done:done+k], buf[:c], dt.name, bo)
		} else {
			if size < 0 {
				ints = slices.Grow(ints, k)[:len(ints)+k]
			}
			tensor.DecodeInts(ints[done:done+k], buf[:c], dt.name, bo)
		}
		done += k
		remaining -= int64(c)
	}
	// Probe for trailing data; this also makes zip readers verify the
	// entry's CRC, which they only do on reaching EOF.
	var probe [1]byte
	for {
		m, err := r.Read(probe[:])
		if m > 0 {
			return nil, ferr("trailing bytes after the data of shape %s of %s (%d bytes)", shapeStr, dt.descr, nbytes)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, ferr("reading data: %v", err)
		}
	}

	shape := append([]int{}, hdr.shape...)
	if hdr.fortran && len(shape) > 1 {
		if isFloat {
			out = npyFortranToC(out, shape)
		} else {
			ints = npyFortranToC(ints, shape)
		}
	}
	return &tensor.Tensor{Shape: shape, Data: out, Ints: ints, DType: dt.name}, nil
}

func npyTrunc(s string) string {
	s = strings.TrimRight(s, " \n")
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// npyFortranToC reorders column-major data into row-major order: a strided
// gather with Fortran strides, the same walk as a .pt tensor view.
func npyFortranToC[E float32 | int64](src []E, shape []int) []E {
	dst := make([]E, len(src))
	if len(src) == 0 {
		return dst
	}
	stride := make([]int, len(shape))
	s := 1
	for i, d := range shape {
		stride[i] = s
		s *= d
	}
	gatherStrided(dst, src, 0, shape, stride)
	return dst
}

// npyHeader is the parsed header dict.
type npyHeader struct {
	descr     string
	descrList bool // descr was a list: a structured dtype
	fortran   bool
	shape     []int
}

// npyParseHeader parses the header dict strictly: a Python dict literal
// with exactly the keys 'descr' (str), 'fortran_order' (bool) and 'shape'
// (tuple of non-negative ints), optionally followed by spaces and a newline.
func npyParseHeader(s string) (*npyHeader, error) {
	p := &npyDictParser{s: s}
	p.skipSpace()
	if !p.eat('{') {
		return nil, errors.New("want a dict starting with '{'")
	}
	h := &npyHeader{}
	seen := map[string]bool{}
	for {
		p.skipSpace()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return nil, fmt.Errorf("dict key: %v", err)
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		p.skipSpace()
		if !p.eat(':') {
			return nil, fmt.Errorf("want ':' after key %q", key)
		}
		p.skipSpace()
		switch key {
		case "descr":
			if p.peek() == '[' {
				h.descrList = true
				if err := p.skipValue(0); err != nil {
					return nil, fmt.Errorf("descr: %v", err)
				}
			} else if h.descr, err = p.str(); err != nil {
				return nil, fmt.Errorf("descr: %v", err)
			}
		case "fortran_order":
			if h.fortran, err = p.boolean(); err != nil {
				return nil, fmt.Errorf("fortran_order: %v", err)
			}
		case "shape":
			if h.shape, err = p.intTuple(); err != nil {
				return nil, fmt.Errorf("shape: %v", err)
			}
		default:
			return nil, fmt.Errorf("unexpected key %q (want only 'descr', 'fortran_order', 'shape')", key)
		}
		p.skipSpace()
		if p.eat(',') {
			continue
		}
		p.skipSpace()
		if !p.eat('}') {
			return nil, fmt.Errorf("want ',' or '}' after value of %q", key)
		}
		break
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return nil, fmt.Errorf("unexpected text after the dict at byte %d", p.pos)
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return nil, fmt.Errorf("missing key %q", k)
		}
	}
	return h, nil
}

type npyDictParser struct {
	s   string
	pos int
}

func (p *npyDictParser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *npyDictParser) eat(c byte) bool {
	if p.peek() == c && p.pos < len(p.s) {
		p.pos++
		return true
	}
	return false
}

func (p *npyDictParser) skipSpace() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *npyDictParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", fmt.Errorf("want a string at byte %d", p.pos)
	}
	start := p.pos + 1
	for i := start; i < len(p.s); i++ {
		switch p.s[i] {
		case q:
			p.pos = i + 1
			return p.s[start:i], nil
		case '\\', '\n':
			return "", errors.New("escapes and newlines in strings are not supported")
		}
	}
	return "", errors.New("unterminated string")
}

func (p *npyDictParser) boolean() (bool, error) {
	switch {
	case strings.HasPrefix(p.s[p.pos:], "True"):
		p.pos += 4
		return true, nil
	case strings.HasPrefix(p.s[p.pos:], "False"):
		p.pos += 5
		return false, nil
	}
	return false, fmt.Errorf("want True or False at byte %d", p.pos)
}

func (p *npyDictParser) intTuple() ([]int, error) {
	if !p.eat('(') {
		return nil, fmt.Errorf("want a tuple at byte %d", p.pos)
	}
	shape := []int{}
	trailingComma := false
	for {
		p.skipSpace()
		if p.eat(')') {
			break
		}
		if len(shape) > 0 && !trailingComma {
			return nil, fmt.Errorf("want ',' or ')' at byte %d", p.pos)
		}
		start := p.pos
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == start {
			return nil, fmt.Errorf("want a non-negative integer at byte %d", p.pos)
		}
		d, err := strconv.ParseInt(p.s[start:p.pos], 10, 64)
		if err != nil || d > math.MaxInt32*int64(1<<20) || int64(int(d)) != d {
			return nil, fmt.Errorf("absurd dimension %s", p.s[start:p.pos])
		}
		shape = append(shape, int(d))
		if len(shape) > npyMaxDims {
			return nil, fmt.Errorf("more than %d dimensions", npyMaxDims)
		}
		p.skipSpace()
		trailingComma = p.eat(',')
	}
	if len(shape) == 1 && !trailingComma {
		return nil, errors.New("(n) is not a tuple; want (n,)")
	}
	return shape, nil
}

// skipValue skips a nested list/tuple value (used for structured descrs,
// which we reject anyway). depth bounds recursion.
func (p *npyDictParser) skipValue(depth int) error {
	if depth > 16 {
		return errors.New("nesting too deep")
	}
	p.skipSpace()
	switch c := p.peek(); c {
	case '[', '(':
		closer := byte(']')
		if c == '(' {
			closer = ')'
		}
		p.pos++
		for {
			p.skipSpace()
			if p.eat(closer) {
				return nil
			}
			if err := p.skipValue(depth + 1); err != nil {
				return err
			}
			p.skipSpace()
			if p.eat(',') {
				continue
			}
			if p.eat(closer) {
				return nil
			}
			return fmt.Errorf("want ',' or %q at byte %d", closer, p.pos)
		}
	case '\'', '"':
		_, err := p.str()
		return err
	default:
		start := p.pos
		for p.pos < len(p.s) && (p.s[p.pos] >= '0' && p.s[p.pos] <= '9' ||
			p.s[p.pos] >= 'A' && p.s[p.pos] <= 'z' || p.s[p.pos] == '-') {
			p.pos++
		}
		if p.pos == start {
			return fmt.Errorf("unexpected %q at byte %d", c, p.pos)
		}
		return nil
	}
}

// ReadNPZ reads a .npz archive (np.savez or np.savez_compressed). It returns
// the tensors by key (the entry name without its ".npy" suffix) and the keys
// in archive order.
func ReadNPZ(path string) (map[string]*tensor.Tensor, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	return npzRead(path, f, st.Size(), true)
}

// InspectNPZ reads only the header of every array in a .npz archive:
// shapes and dtypes by key, keys in archive order, with no data (Data and
// Ints are nil). Stored entries are checked against their sizes as ReadNPZ
// checks them; compressed entries are inflated only as far as their header.
func InspectNPZ(path string) (map[string]*tensor.Tensor, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	return npzRead(path, f, st.Size(), false)
}

// ReadNPZBytes is ReadNPZ for an archive held in memory; name is used in
// error messages.
func ReadNPZBytes(name string, data []byte) (map[string]*tensor.Tensor, []string, error) {
	return npzRead(name, bytes.NewReader(data), int64(len(data)), true)
}

// InspectNPZBytes is InspectNPZ for an archive held in memory.
func InspectNPZBytes(name string, data []byte) (map[string]*tensor.Tensor, []string, error) {
	return npzRead(name, bytes.NewReader(data), int64(len(data)), false)
}

func npzRead(file string, ra io.ReaderAt, size int64, withData bool) (map[string]*tensor.Tensor, []string, error) {
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, nil, &FormatError{File: file, Msg: fmt.Sprintf("not a valid .npz (zip) archive: %v", err)}
	}
	ts := make(map[string]*tensor.Tensor, len(zr.File))
	keys := make([]string, 0, len(zr.File))
	for _, f := range zr.File {
		name := f.Name
		if !strings.HasSuffix(name, ".npy") {
			return nil, nil, &UnsupportedError{File: file, Record: name,
				Msg: "archive entry is not a .npy array (want names ending in \".npy\")"}
		}
		key := strings.TrimSuffix(name, ".npy")
		if _, dup := ts[key]; dup {
			return nil, nil, &FormatError{File: file, Record: key, Msg: "duplicate key in archive"}
		}
		var esize int64 = -1
		switch f.Method {
		case zip.Store:
			if f.CompressedSize64 != f.UncompressedSize64 {
				return nil, nil, &FormatError{File: file, Record: key,
					Msg: fmt.Sprintf("stored entry with compressed size %d != uncompressed size %d", f.CompressedSize64, f.UncompressedSize64)}
			}
			off, err := f.DataOffset()
			if err != nil {
				return nil, nil, &FormatError{File: file, Record: key, Msg: fmt.Sprintf("bad local header: %v", err)}
			}
			if off < 0 || f.UncompressedSize64 > uint64(size) || uint64(off) > uint64(size)-f.UncompressedSize64 {
				return nil, nil, &FormatError{File: file, Record: key,
					Msg: fmt.Sprintf("truncated archive: entry of %d bytes at offset %d, archive has %d bytes", f.UncompressedSize64, off, size)}
			}
			esize = int64(f.UncompressedSize64)
		case zip.Deflate:
			// The declared uncompressed size is not trusted for
			// allocation: output grows as data is actually inflated.
		default:
			return nil, nil, &UnsupportedError{File: file, Record: key,
				Msg: fmt.Sprintf("zip compression method %d (want stored or deflate)", f.Method)}
		}
		rc, err := f.Open()
		if err != nil {
			return nil, nil, &FormatError{File: file, Record: key, Msg: fmt.Sprintf("opening entry: %v", err)}
		}
		t, err := npyDecode(file, key, rc, esize, withData)
		rc.Close()
		if err != nil {
			return nil, nil, err
		}
		ts[key] = t
		keys = append(keys, key)
	}
	return ts, keys, nil
}

// npyCheckTensor verifies that t is consistent before writing it.
func npyCheckTensor(t *tensor.Tensor) error {
	if t == nil {
		return errors.New("nil tensor")
	}
	n := 1
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in shape %s", tensor.ShapeString(t.Shape))
		}
		if d != 0 && n > math.MaxInt/8/d {
			return fmt.Errorf("shape %s overflows", tensor.ShapeString(t.Shape))
		}
		n *= d
	}
	if n != t.Len() {
		return fmt.Errorf("shape %s has %d elements but data has %d", tensor.ShapeString(t.Shape), n, t.Len())
	}
	if _, ok := npyDescr(t); !ok {
		return fmt.Errorf("dtype %s cannot be written", t.DType)
	}
	return nil
}

// npyDescr is the dtype a tensor is written as: float tensors as float32
// (the precision they were computed in), integer and bool tensors as their
// own dtype, all little-endian.
func npyDescr(t *tensor.Tensor) (tensor.DType, bool) {
	if t.IsFloat() {
		return tensor.Float32, true
	}
	_, ok := npyDescrs[t.DType]
	return t.DType, ok
}

var npyDescrs = map[tensor.DType]string{
	tensor.Float32: "<f4", tensor.Int64: "<i8", tensor.Int32: "<i4", tensor.Int16: "<i2", tensor.Int8: "|i1",
	tensor.Uint64: "<u8", tensor.Uint32: "<u4", tensor.Uint16: "<u2", tensor.Uint8: "|u1", tensor.Bool: "|b1",
}

// npyHeaderBytes returns magic, version, header length and padded header
// for a little-endian C-order array of dtype dt, as np.save writes it
// (total preamble a multiple of 64 bytes; version 2.0 only if the header
// needs it).
func npyHeaderBytes(shape []int, dt tensor.DType) []byte {
	var sb strings.Builder
	sb.WriteString("{'descr': '" + npyDescrs[dt] + "', 'fortran_order': False, 'shape': (")
	for i, d := range shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		sb.WriteString(",")
	}
	sb.WriteString("), }")
	dict := sb.String()
	for _, v := range []struct {
		major byte
		lsize int
	}{{1, 2}, {2, 4}} {
		pre := 8 + v.lsize
		total := pre + len(dict) + 1
		pad := (64 - total%64) % 64
		hlen := len(dict) + pad + 1
		if v.lsize == 2 && hlen > math.MaxUint16 {
			continue
		}
		out := make([]byte, 0, pre+hlen)
		out = append(out, npyMagic...)
		out = append(out, v.major, 0)
		if v.lsize == 2 {
			out = binary.LittleEndian.AppendUint16(out, uint16(hlen))
		} else {
			out = binary.LittleEndian.AppendUint32(out, uint32(hlen))
		}
		out = append(out, dict...)
		out = append(out, bytes.Repeat([]byte{' '}, pad)...)
		out = append(out, '\n')
		return out
	}
	panic("unreachable")
}

// npyWriteTo writes t as a little-endian, C-order .npy stream (float
// tensors as float32).
func npyWriteTo(w io.Writer, t *tensor.Tensor) error {
	dt, _ := npyDescr(t)
	if _, err := w.Write(npyHeaderBytes(t.Shape, dt)); err != nil {
		return err
	}
	const per = npyChunk / 8
	buf := make([]byte, 0, min(8*t.Len(), npyChunk))
	for i := 0; i < t.Len(); i += per {
		j := min(t.Len(), i+per)
		if t.IsFloat() {
			buf = tensor.AppendFloats(buf[:0], t.Data[i:j], dt, binary.LittleEndian)
		} else {
			buf = tensor.AppendInts(buf[:0], t.Ints[i:j], dt, binary.LittleEndian)
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// WriteNPY writes t to path as a little-endian, C-order .npy file (float
// tensors as float32, integer and bool tensors as their own dtype)
// (format 1.0, or 2.0 for huge headers). The write is atomic: a temporary
// file in the same directory is renamed into place, and on error no file
// is left behind.
func WriteNPY(path string, t *tensor.Tensor) error {
	if err := npyCheckTensor(t); err != nil {
		return fmt.Errorf("loader: writing %s: %v", path, err)
	}
	err := WriteAtomic(path, func(w io.Writer) error { return npyWriteTo(w, t) })
	if err != nil {
		return fmt.Errorf("loader: writing %s: %w", path, err)
	}
	return nil
}

// npzModDate is the fixed MS-DOS modification date (1980-01-01, 00:00) of
// WriteNPZ entries, so that the output is reproducible.
const npzModDate = 1<<5 | 1

// WriteNPZ writes the tensors named by keys, in that order, to path as an
// uncompressed .npz archive like np.savez (entry "key.npy" per key, each a
// C-order .npy as WriteNPY writes it). The write is atomic like WriteNPY.
func WriteNPZ(path string, keys []string, ts map[string]*tensor.Tensor) error {
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k == "" {
			return fmt.Errorf("loader: writing %s: empty key", path)
		}
		if seen[k] {
			return fmt.Errorf("loader: writing %s: duplicate key %q", path, k)
		}
		seen[k] = true
		t, ok := ts[k]
		if !ok {
			return fmt.Errorf("loader: writing %s: key %q has no tensor", path, k)
		}
		if err := npyCheckTensor(t); err != nil {
			return fmt.Errorf("loader: writing %s: %s: %v", path, k, err)
		}
	}
	err := WriteAtomic(path, func(w io.Writer) error {
		zw := zip.NewWriter(w)
		for _, k := range keys {
			var b bytes.Buffer
			t := ts[k]
			b.Grow(128 + 8*t.Len())
			if err := npyWriteTo(&b, t); err != nil {
				return err
			}
			fh := &zip.FileHeader{
				Name:               k + ".npy",
				Method:             zip.Store,
				ModifiedDate:       npzModDate,
				CRC32:              crc32.ChecksumIEEE(b.Bytes()),
				CompressedSize64:   uint64(b.Len()),
				UncompressedSize64: uint64(b.Len()),
			}
			fw, err := zw.CreateRaw(fh)
			if err != nil {
				return err
			}
			if _, err := fw.Write(b.Bytes()); err != nil {
				return err
			}
		}
		return zw.Close()
	})
	if err != nil {
		return fmt.Errorf("loader: writing %s: %w", path, err)
	}
	return nil
}
