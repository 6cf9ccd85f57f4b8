package appdb

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Order is a sort direction.
type Order int

// Sort directions. The zero value sorts ascending.
const (
	Asc Order = iota
	Desc
)

// String returns "asc" or "desc".
func (o Order) String() string {
	switch o {
	case Asc:
		return "asc"
	case Desc:
		return "desc"
	}
	return fmt.Sprintf("Order(%d)", int(o))
}

// Page limits for Find.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Page selects one page of a Find: the direction, the page size and where to
// continue. It is embedded in every filter.
type Page struct {
	// Order is the direction of the filter's sort field.
	Order Order
	// Limit is the page size; 0 means DefaultLimit. At most MaxLimit.
	Limit int
	// Cursor is "" for the first page, or the cursor returned with the
	// previous page of the same filter (same fields, same Order).
	Cursor string
}

// Validate checks the page, naming the offending field.
func (p Page) Validate() error {
	if p.Order != Asc && p.Order != Desc {
		return Invalid("filter.order", fmt.Sprintf("%d is neither Asc nor Desc", int(p.Order)))
	}
	if p.Limit < 0 || p.Limit > MaxLimit {
		return Invalid("filter.limit", fmt.Sprintf("%d outside [0, %d]", p.Limit, MaxLimit))
	}
	return nil
}

// EffectiveLimit returns Limit, or DefaultLimit when Limit is 0.
func (p Page) EffectiveLimit() int {
	if p.Limit == 0 {
		return DefaultLimit
	}
	return p.Limit
}

// TimeRange is the half-open interval [From, To). A zero bound is unbounded.
type TimeRange struct {
	From, To time.Time
}

// IsZero reports whether the range is unbounded on both sides.
func (r TimeRange) IsZero() bool { return r.From.IsZero() && r.To.IsZero() }

// Validate checks that From is not after To, naming field in the error.
func (r TimeRange) Validate(field string) error {
	if !r.From.IsZero() && !r.To.IsZero() && r.From.After(r.To) {
		return Invalid(field, fmt.Sprintf("from %s after to %s", r.From.Format(time.RFC3339Nano), r.To.Format(time.RFC3339Nano)))
	}
	return nil
}

// Cursor is the decoded form of a page cursor: the sort key and identity of
// the last entity of a page. It is for backends; callers treat cursors as
// opaque strings.
type Cursor struct {
	Order Order  `json:"o"`
	Int   int64  `json:"n,omitempty"` // integer sort key (times in Unix µs)
	Str   string `json:"s,omitempty"` // string sort key
	ID    string `json:"i"`           // identity, the tie-breaker
}

// Encode returns the opaque form of c.
func (c Cursor) Encode() string {
	b, err := json.Marshal(c)
	if err != nil { // cannot happen: the struct has only plain fields
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses an opaque cursor made by Cursor.Encode and checks it was
// made for order. Errors are *FieldError for "filter.cursor".
func DecodeCursor(s string, order Order) (Cursor, error) {
	var c Cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, Invalid("filter.cursor", "not a cursor returned by Find")
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, Invalid("filter.cursor", "not a cursor returned by Find")
	}
	if c.Order != order {
		return c, Invalid("filter.cursor", fmt.Sprintf("cursor made for order %s, filter has %s", c.Order, order))
	}
	return c, nil
}
