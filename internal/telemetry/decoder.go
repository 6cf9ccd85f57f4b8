package telemetry

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Decoder parses line protocol from an io.Reader in batches, so that a large
// body needs no full buffering. Lines without a timestamp all get the time
// of the first such line of the stream. A Decoder is not safe for concurrent
// use.
type Decoder struct {
	p      *LineParser
	r      *bufio.Reader
	lineNo int
	long   []byte
	err    error
}

// NewDecoder returns a Decoder reading from r with the options opts.
func NewDecoder(r io.Reader, opts LineOptions) *Decoder {
	p := NewLineParser(opts)
	size := 64 << 10
	if p.lim.MaxLineBytes+2 < size {
		size = max(p.lim.MaxLineBytes+2, 16)
	}
	return &Decoder{p: p, r: bufio.NewReaderSize(r, size)}
}

// Next parses lines until at least maxPoints points have been appended to
// dst or the input ends, and returns them with the errors of the lines read
// (see ParseResult). At the end of the input it returns io.EOF together
// with the last, possibly empty, result. A read error is returned wrapped,
// with the lines read before it.
func (d *Decoder) Next(dst []Point, maxPoints int) (ParseResult, error) {
	res := ParseResult{Points: dst}
	if d.err != nil {
		return res, d.err
	}
	for len(res.Points)-len(dst) < maxPoints {
		line, longLen, err := d.readLine()
		if line != nil || longLen > 0 {
			d.lineNo++
			if longLen > 0 {
				d.p.reject(&res, d.lineNo, limitAt(-1, "line of %d bytes exceeds limit MaxLineBytes=%d", longLen, d.p.lim.MaxLineBytes))
			} else {
				d.p.parseOne(&res, line, d.lineNo)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				err = fmt.Errorf("read line protocol after line %d: %w", d.lineNo, err)
			}
			d.err = err
			return res, err
		}
	}
	return res, nil
}

// readLine returns the next line without "\n"; line is nil at the end of
// the input. For a line longer than MaxLineBytes, whose bytes are skipped
// rather than buffered, it returns a nil line and the line's length without
// its line ending.
func (d *Decoder) readLine() (line []byte, longLen int, err error) {
	frag, err := d.r.ReadSlice('\n')
	switch {
	case err == nil:
		return frag[:len(frag)-1], 0, nil
	case errors.Is(err, bufio.ErrBufferFull):
		d.long = append(d.long[:0], frag...)
		total, tooLong := len(frag), false
		last := frag[len(frag)-1]
		for errors.Is(err, bufio.ErrBufferFull) {
			frag, err = d.r.ReadSlice('\n')
			total += len(frag)
			if len(frag) > 0 && frag[len(frag)-1] != '\n' {
				last = frag[len(frag)-1]
			} else if len(frag) > 1 {
				last = frag[len(frag)-2]
			}
			if !tooLong {
				d.long = append(d.long, frag...)
				tooLong = len(d.long)-2 > d.p.lim.MaxLineBytes // beyond "\r\n"
			}
		}
		if tooLong {
			d.long = d.long[:0]
			if err == nil {
				total-- // "\n"
			}
			if last == '\r' {
				total--
			}
			return nil, total, err
		}
		if err == nil {
			return d.long[:len(d.long)-1], 0, nil
		}
		return d.long, 0, err
	default:
		if len(frag) > 0 {
			return frag, 0, err
		}
		return nil, 0, err
	}
}
