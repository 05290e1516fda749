package loader

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits on one pickle. gopickle allocates the length an opcode declares
// before it reads the bytes, builds an object per opcode and turns long
// integers into big.Int in quadratic time, so an untrusted pickle is first
// walked by scanPickle, which checks these limits and that every declared
// length fits in the bytes that follow. Only then is it handed to gopickle.
const (
	// maxPickleBytes caps a pickle (data.pkl or a legacy file's pickles).
	// Tensor bytes never live in the pickle; a state_dict's pickle is a few
	// hundred bytes per tensor, so this leaves room for large embedded
	// numpy arrays and configs.
	maxPickleBytes = 256 << 20
	// maxPickleOps caps the opcodes of one pickle, which bounds the number
	// of objects gopickle creates (about 100 bytes each at worst). A
	// state_dict needs some 20 opcodes per tensor, a pickled module ~100.
	maxPickleOps = 4 << 20
	// maxPickleMarks caps nested MARKs (each costs gopickle a saved stack);
	// Python itself refuses to pickle deeper than its recursion limit.
	maxPickleMarks = 1000
	// maxLongBytes caps LONG1/LONG4 integers (the legacy magic number has
	// 10 bytes; nothing a checkpoint holds is near this).
	maxLongBytes = 64
	// maxNumberLine caps the text of protocol-0 numbers (INT, LONG, FLOAT,
	// GET, PUT).
	maxNumberLine = 256
)

// Opcode argument kinds, as in Python's pickletools.
const (
	argNone    = iota
	argFixed   // n bytes
	argLen1    // 1-byte length, then that many bytes
	argLen4    // 4-byte little-endian length, then bytes
	argLen8    // 8-byte little-endian length, then bytes
	argLine    // text up to '\n'
	argNumLine // text number up to '\n'
	argTwoLine // two lines (GLOBAL, INST)
	argFrame   // 8-byte frame length; the frame's opcodes follow inline
)

type opInfo struct {
	kind  int
	n     int // argFixed size
	marks int // +1 pushes a mark, -1 pops one
	long  bool
}

// pickleOps lists exactly the opcodes gopickle v0.3.0 dispatches; anything
// else is rejected here (gopickle would index past its table on 0xff).
var pickleOps = func() map[byte]opInfo {
	m := map[byte]opInfo{}
	for _, c := range []byte("(.0212NRabd}e]lost)u\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98Q") {
		m[byte(c)] = opInfo{kind: argNone}
	}
	for _, c := range []byte("Kqh\x80\x82") {
		m[byte(c)] = opInfo{kind: argFixed, n: 1}
	}
	for _, c := range []byte("M\x83") {
		m[byte(c)] = opInfo{kind: argFixed, n: 2}
	}
	for _, c := range []byte("Jjr\x84") {
		m[byte(c)] = opInfo{kind: argFixed, n: 4}
	}
	m['G'] = opInfo{kind: argFixed, n: 8}
	for _, c := range []byte("UC\x8c") {
		m[byte(c)] = opInfo{kind: argLen1}
	}
	m['\x8a'] = opInfo{kind: argLen1, long: true}
	for _, c := range []byte("TXB") {
		m[byte(c)] = opInfo{kind: argLen4}
	}
	m['\x8b'] = opInfo{kind: argLen4, long: true}
	for _, c := range []byte("\x8d\x8e\x96") {
		m[byte(c)] = opInfo{kind: argLen8}
	}
	for _, c := range []byte("SVP") {
		m[byte(c)] = opInfo{kind: argLine}
	}
	for _, c := range []byte("FILgp") {
		m[byte(c)] = opInfo{kind: argNumLine}
	}
	for _, c := range []byte("ci") {
		m[byte(c)] = opInfo{kind: argTwoLine}
	}
	m['\x95'] = opInfo{kind: argFrame}
	// Marks: MARK pushes; these pop the topmost one.
	m['('] = opInfo{kind: argNone, marks: 1}
	for _, c := range []byte("1delotu\x90\x91") {
		o := m[byte(c)]
		o.marks = -1
		m[byte(c)] = o
	}
	i := m['i']
	i.marks = -1
	m['i'] = i
	return m
}()

// errPickleLimit marks scan failures that are limits rather than damage.
var errPickleLimit = errors.New("pickle limit")

// scanPickle walks the opcodes of one pickle from r, where avail bytes at
// most remain, and returns the length of the pickle through its STOP
// opcode. It builds nothing and allocates nothing per opcode.
func scanPickle(r *bufio.Reader, avail int64) (int64, error) {
	var pos int64
	marks := 0
	need := func(n int64) error {
		if n < 0 || n > avail-pos {
			return fmt.Errorf("opcode at byte %d needs %d bytes, %d remain", pos, n, avail-pos)
		}
		if pos+n > maxPickleBytes {
			return fmt.Errorf("%w: pickle longer than %d bytes", errPickleLimit, maxPickleBytes)
		}
		return nil
	}
	skip := func(n int64) error {
		if err := need(n); err != nil {
			return err
		}
		if _, err := r.Discard(int(n)); err != nil {
			return fmt.Errorf("truncated at byte %d", pos)
		}
		pos += n
		return nil
	}
	readN := func(n int) ([]byte, error) {
		if err := need(int64(n)); err != nil {
			return nil, err
		}
		b, err := r.Peek(n)
		if err != nil {
			return nil, fmt.Errorf("truncated at byte %d", pos)
		}
		return b, nil
	}
	line := func(max int64) error {
		var n int64
		for {
			if pos >= avail {
				return fmt.Errorf("unterminated text argument at byte %d", pos)
			}
			c, err := r.ReadByte()
			if err != nil {
				return fmt.Errorf("truncated at byte %d", pos)
			}
			pos++
			n++
			if c == '\n' {
				return nil
			}
			if n > max {
				return fmt.Errorf("%w: text argument longer than %d bytes at byte %d", errPickleLimit, max, pos)
			}
		}
	}
	for ops := 0; ; ops++ {
		if ops >= maxPickleOps {
			return 0, fmt.Errorf("%w: more than %d opcodes", errPickleLimit, maxPickleOps)
		}
		if pos >= avail {
			return 0, fmt.Errorf("truncated pickle: no STOP opcode in %d bytes", avail)
		}
		op, err := r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("truncated pickle at byte %d", pos)
		}
		opPos := pos
		pos++
		info, ok := pickleOps[op]
		if !ok {
			return 0, fmt.Errorf("unknown pickle opcode 0x%02x at byte %d", op, opPos)
		}
		marks += info.marks
		if marks > maxPickleMarks {
			return 0, fmt.Errorf("%w: nesting deeper than %d", errPickleLimit, maxPickleMarks)
		}
		if marks < 0 {
			// gopickle reports this itself; keep counting from zero.
			marks = 0
		}
		switch info.kind {
		case argFixed:
			err = skip(int64(info.n))
		case argLen1:
			var b []byte
			if b, err = readN(1); err == nil {
				n := int64(b[0])
				if err = skip(1); err == nil {
					err = skip(n)
				}
			}
		case argLen4:
			var b []byte
			if b, err = readN(4); err == nil {
				n := int64(binary.LittleEndian.Uint32(b))
				if op == 'T' && n >= 1<<31 {
					err = fmt.Errorf("negative BINSTRING length at byte %d", opPos)
					break
				}
				if info.long && n > maxLongBytes {
					err = fmt.Errorf("%w: %d-byte integer at byte %d", errPickleLimit, n, opPos)
					break
				}
				if err = skip(4); err == nil {
					err = skip(n)
				}
			}
		case argLen8, argFrame:
			var b []byte
			if b, err = readN(8); err == nil {
				u := binary.LittleEndian.Uint64(b)
				if u > uint64(avail) {
					err = fmt.Errorf("opcode at byte %d declares %d bytes, only %d remain", opPos, u, avail-pos)
					break
				}
				if err = skip(8); err == nil {
					if info.kind == argFrame {
						// The frame's opcodes are scanned inline.
						err = need(int64(u))
					} else {
						err = skip(int64(u))
					}
				}
			}
		case argLine:
			err = line(avail)
		case argNumLine:
			err = line(maxNumberLine)
		case argTwoLine:
			if err = line(avail); err == nil {
				err = line(avail)
			}
		}
		if err != nil {
			return 0, err
		}
		if op == '.' {
			return pos, nil
		}
	}
}

// scanPickleBytes is scanPickle over memory.
func scanPickleBytes(b []byte) (int64, error) {
	return scanPickle(bufio.NewReaderSize(bytes.NewReader(b), 4096), int64(len(b)))
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64<<10) }
