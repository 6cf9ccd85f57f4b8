package telemetry

import (
	"errors"
	"fmt"
	"strings"
)

// Error kinds of the codecs. Errors returned by this package wrap exactly one
// of them; callers branch with errors.Is.
var (
	// ErrInvalid: the input is malformed — a syntax error, a value out of
	// range, a missing or duplicate element.
	ErrInvalid = errors.New("invalid telemetry input")
	// ErrLimit: the input exceeds one of the configured Limits.
	ErrLimit = errors.New("telemetry limit exceeded")
)

// LineError is the rejection of one line of line protocol.
type LineError struct {
	// Line is the 1-based number of the line in the body (blank lines and
	// comments count).
	Line int
	// Column is the 1-based byte offset in the line where the problem was
	// found, or 0 when the problem concerns the whole line.
	Column int
	// Kind is ErrInvalid or ErrLimit.
	Kind error
	// Msg says what is wrong, naming the element (field, tag, limit).
	Msg string
}

// Error returns e.g. `line 3, col 18: field "temp": invalid number "1.2.3"`.
func (e *LineError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("line %d, col %d: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// Unwrap returns the error kind.
func (e *LineError) Unwrap() error { return e.Kind }

// LineErrors is the list of rejected lines of a body, in line order.
type LineErrors []*LineError

// Error names the first failing line and how many more failed.
func (es LineErrors) Error() string {
	switch len(es) {
	case 0:
		return "no errors"
	case 1:
		return es[0].Error()
	}
	var b strings.Builder
	b.WriteString(es[0].Error())
	fmt.Fprintf(&b, " (and %d more rejected lines)", len(es)-1)
	return b.String()
}

// Unwrap lets errors.Is match the kind of any rejected line.
func (es LineErrors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// perr is an error found inside a line before the line number is known.
type perr struct {
	off  int // 0-based byte offset in the line, -1 when not applicable
	kind error
	msg  string
}

func invalidAt(off int, format string, args ...any) *perr {
	return &perr{off: off, kind: ErrInvalid, msg: fmt.Sprintf(format, args...)}
}

func limitAt(off int, format string, args ...any) *perr {
	return &perr{off: off, kind: ErrLimit, msg: fmt.Sprintf(format, args...)}
}
