package detect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrBadState is returned by UnmarshalBinary when the encoded state is
// truncated, has an unknown version or kind, or fails a consistency check.
var ErrBadState = errors.New("detect: bad detector state")

// encoder appends fixed-width little-endian fields to a byte slice. See
// doc.go for the state format.
type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)    { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32)  { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) i64(v int64)   { e.b = binary.LittleEndian.AppendUint64(e.b, uint64(v)) }
func (e *encoder) f64(v float64) { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v)) }
func (e *encoder) f32(v float64) {
	e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(float32(v)))
}
func (e *encoder) boolean(v bool) {
	if v {
		e.u8(1)
		return
	}
	e.u8(0)
}
func (e *encoder) f64s(vs []float64) {
	e.u32(uint32(len(vs)))
	for _, v := range vs {
		e.f64(v)
	}
}
func (e *encoder) str(s string) {
	e.u32(uint32(len(s)))
	e.b = append(e.b, s...)
}

// decoder reads what encoder wrote. The first error sticks; later reads
// return zero values, so callers check err once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated reading %s", ErrBadState, what)
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.fail(what)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	p := d.take(1, "byte")
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *decoder) u32() uint32 {
	p := d.take(4, "uint32")
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(p)
}

func (d *decoder) f32() float64 { return float64(math.Float32frombits(d.u32())) }

func (d *decoder) i64() int64 {
	p := d.take(8, "int64")
	if p == nil {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(p))
}

func (d *decoder) f64() float64 {
	p := d.take(8, "float64")
	if p == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(p))
}

func (d *decoder) boolean() bool { return d.u8() != 0 }

// f64s reads a length-prefixed slice; max bounds the length so corrupt input
// cannot make it allocate without limit.
func (d *decoder) f64s(max int) []float64 {
	n := int(d.u32())
	if d.err != nil {
		return nil
	}
	if n > max || n*8 > len(d.b) {
		d.err = fmt.Errorf("%w: slice length %d exceeds limit %d or input", ErrBadState, n, max)
		return nil
	}
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = d.f64()
	}
	return vs
}

func (d *decoder) str(max int) string {
	n := int(d.u32())
	if d.err != nil {
		return ""
	}
	if n > max {
		d.err = fmt.Errorf("%w: string length %d exceeds limit %d", ErrBadState, n, max)
		return ""
	}
	return string(d.take(n, "string"))
}

// header writes the magic kind byte and format version.
func (e *encoder) header(kind, version uint8) {
	e.u8('V')
	e.u8(kind)
	e.u8(version)
}

// header checks the magic, kind and version written by encoder.header.
func (d *decoder) header(kind, version uint8) {
	m, k, v := d.u8(), d.u8(), d.u8()
	if d.err != nil {
		return
	}
	if m != 'V' || k != kind {
		d.err = fmt.Errorf("%w: kind %q, want %q", ErrBadState, k, kind)
		return
	}
	if v != version {
		d.err = fmt.Errorf("%w: version %d, want %d", ErrBadState, v, version)
	}
}

// end reports trailing bytes as corruption and returns the sticky error.
func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrBadState, len(d.b))
	}
	return d.err
}
