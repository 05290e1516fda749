package tensor

import (
	"encoding/binary"
	"math"
	"testing"
)

// Every binary16 value survives HalfToFloat32 then Float32ToHalf, and the
// decoded value is the exact one (checked through float64 arithmetic).
func TestHalfRoundTripAll(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := HalfToFloat32(uint16(h))
		exp, mant := (h>>10)&0x1f, h&0x3ff
		if exp != 0x1f {
			want := float64(mant) / 1024
			if exp == 0 {
				want *= math.Pow(2, -14)
			} else {
				want = (1 + want) * math.Pow(2, float64(exp-15))
			}
			if h&0x8000 != 0 {
				want = -want
			}
			if float64(f) != want || math.Signbit(float64(f)) != (h&0x8000 != 0) {
				t.Fatalf("HalfToFloat32(%#04x) = %v, want %v", h, f, want)
			}
		}
		if back := Float32ToHalf(f); back != uint16(h) {
			t.Fatalf("Float32ToHalf(HalfToFloat32(%#04x)) = %#04x", h, back)
		}
	}
}

// Rounding to half: ties go to even, overflow to Inf, tiny values to zero.
func TestFloat32ToHalfRounding(t *testing.T) {
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3c00},
		{1 + 1.0/2048, 0x3c00},               // tie, even stays
		{1 + 3.0/2048, 0x3c02},               // tie, odd rounds up
		{1 + 1.0/2048 + 1.0/65536, 0x3c01},   // above the tie
		{65504, 0x7bff},                      // largest finite
		{65520, 0x7c00},                      // rounds to Inf
		{float32(math.Pow(2, -24)), 0x0001},  // smallest subnormal
		{float32(math.Pow(2, -25)), 0x0000},  // tie to even zero
		{float32(1.5 * math.Pow(2, -25)), 1}, // above the tie
		{-float32(math.Pow(2, -26)), 0x8000}, // negative zero
		{float32(math.Inf(-1)), 0xfc00},
	} {
		if got := Float32ToHalf(c.f); got != c.want {
			t.Errorf("Float32ToHalf(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	if h := Float32ToHalf(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN became %#04x", h)
	}
}

func TestBFloat16(t *testing.T) {
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3f80}, {-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, even
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, odd up
		{math.Float32frombits(0x3f808001), 0x3f81},
	} {
		if got := Float32ToBFloat16(c.f); got != c.want {
			t.Errorf("Float32ToBFloat16(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
		if BFloat16ToFloat32(c.want) != math.Float32frombits(uint32(c.want)<<16) {
			t.Errorf("BFloat16ToFloat32(%#04x)", c.want)
		}
	}
	if !math.IsNaN(float64(BFloat16ToFloat32(Float32ToBFloat16(float32(math.NaN()))))) {
		t.Error("bfloat16 NaN lost")
	}
}

// Every dtype decodes to the same values whichever decoder reads it, and
// encoding then decoding gives the values back.
func TestDecodeEncode(t *testing.T) {
	ints := []int64{0, 1, -1, 127, -128, 5, 100}
	for _, dt := range []DType{Int64, Int32, Int16, Int8, Uint8, Uint16, Uint32, Uint64, Bool} {
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			src := make([]int64, len(ints))
			for i, v := range ints {
				switch {
				case dt == Bool:
					src[i] = min(1, v*v)
				case dt == Uint8 || dt == Uint16 || dt == Uint32 || dt == Uint64:
					src[i] = max(0, v)
				default:
					src[i] = v
				}
			}
			raw := AppendInts(nil, src, dt, bo.(binary.AppendByteOrder))
			if len(raw) != len(src)*dt.Size() {
				t.Fatalf("%s: %d bytes", dt, len(raw))
			}
			got := Decode(raw, dt, bo, []int{len(src)})
			fl := make([]float32, len(src))
			DecodeFloats(fl, raw, dt, bo)
			for i := range src {
				if got.Ints[i] != src[i] || fl[i] != float32(src[i]) {
					t.Fatalf("%s %v: element %d: ints %d floats %g, want %d", dt, bo, i, got.Ints[i], fl[i], src[i])
				}
			}
		}
	}
	// One rule for booleans: any non-zero byte is true.
	b := Decode([]byte{0, 1, 2, 255}, Bool, binary.LittleEndian, []int{4})
	if b.Ints[0] != 0 || b.Ints[1] != 1 || b.Ints[2] != 1 || b.Ints[3] != 1 {
		t.Fatalf("bool decode %v", b.Ints)
	}
	fs := []float32{0, 1, -2.5, 65504, float32(math.Inf(1)), 1e-3}
	for _, dt := range []DType{Float32, Float64, Float16, BFloat16} {
		raw := AppendFloats(nil, fs, dt, binary.LittleEndian)
		got := Decode(raw, dt, binary.LittleEndian, []int{len(fs)})
		for i, f := range fs {
			want := f
			switch dt {
			case Float16:
				want = HalfToFloat32(Float32ToHalf(f))
			case BFloat16:
				want = BFloat16ToFloat32(Float32ToBFloat16(f))
			}
			if got.Data[i] != want {
				t.Fatalf("%s element %d: %g, want %g", dt, i, got.Data[i], want)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	if err := New(2, 3).Check(); err != nil {
		t.Fatal(err)
	}
	if err := FromFloats(make([]float32, 5), 2, 3).Check(); err == nil {
		t.Fatal("5 values for (2, 3) passed")
	}
	if err := FromInts(Int64, []int64{1}, 1).Check(); err != nil {
		t.Fatal(err)
	}
	if err := (&Tensor{Shape: []int{1}, DType: Int64, Data: []float32{1}}).Check(); err == nil {
		t.Fatal("int64 tensor with float data passed")
	}
	if got := ShapeString([]int{3}); got != "(3,)" {
		t.Fatal(got)
	}
}
