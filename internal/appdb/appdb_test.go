package appdb_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/appdb"
)

func TestCursorRoundTrip(t *testing.T) {
	tests := []appdb.Cursor{
		{},
		{Order: appdb.Desc, Int: -1, ID: "x"},
		{Order: appdb.Asc, Int: 1 << 62, Str: "ÿ\x00", ID: "dev/1?#"},
	}
	for _, c := range tests {
		s := c.Encode()
		got, err := appdb.DecodeCursor(s, c.Order)
		if err != nil {
			t.Fatalf("decode %q (from %+v): %v", s, c, err)
		}
		if d := cmp.Diff(c, got); d != "" {
			t.Errorf("round trip of %+v (-want +got):\n%s", c, d)
		}
	}
}

func TestDecodeCursorErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		order appdb.Order
	}{
		{"not base64", "!!", appdb.Asc},
		{"not json", "bm90IGpzb24", appdb.Asc},
		{"wrong order", appdb.Cursor{Order: appdb.Asc, ID: "a"}.Encode(), appdb.Desc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := appdb.DecodeCursor(tt.in, tt.order)
			var fe *appdb.FieldError
			if !errors.Is(err, appdb.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "filter.cursor" {
				t.Errorf("DecodeCursor(%q): got %v, want ErrInvalid naming filter.cursor", tt.in, err)
			}
		})
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(appdb.Cursor{Order: appdb.Desc, Int: 42, ID: "a"}.Encode())
	f.Add("")
	f.Add("e30")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := appdb.DecodeCursor(s, appdb.Asc)
		if err != nil {
			if !errors.Is(err, appdb.ErrInvalid) {
				t.Fatalf("DecodeCursor(%q): error %v is not ErrInvalid", s, err)
			}
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, err := appdb.DecodeCursor(c.Encode(), appdb.Asc)
		if err != nil || again != c {
			t.Fatalf("re-decode of %+v: %+v, %v", c, again, err)
		}
	})
}

func TestPageValidate(t *testing.T) {
	tests := []struct {
		page  appdb.Page
		field string // "" for valid
		limit int
	}{
		{appdb.Page{}, "", appdb.DefaultLimit},
		{appdb.Page{Limit: 1, Order: appdb.Desc}, "", 1},
		{appdb.Page{Limit: appdb.MaxLimit}, "", appdb.MaxLimit},
		{appdb.Page{Limit: appdb.MaxLimit + 1}, "filter.limit", 0},
		{appdb.Page{Limit: -1}, "filter.limit", 0},
		{appdb.Page{Order: 2}, "filter.order", 0},
	}
	for _, tt := range tests {
		err := tt.page.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%+v: %v", tt.page, err)
			} else if got := tt.page.EffectiveLimit(); got != tt.limit {
				t.Errorf("%+v: effective limit %d, want %d", tt.page, got, tt.limit)
			}
			continue
		}
		var fe *appdb.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, appdb.ErrInvalid) {
			t.Errorf("%+v: got %v, want ErrInvalid naming %s", tt.page, err, tt.field)
		}
	}
}

func TestTimeRangeValidate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := (appdb.TimeRange{From: t0, To: t0}).Validate("r"); err != nil {
		t.Errorf("empty range: %v", err)
	}
	if err := (appdb.TimeRange{From: t0}).Validate("r"); err != nil {
		t.Errorf("open range: %v", err)
	}
	err := appdb.TimeRange{From: t0.Add(1), To: t0}.Validate("filter.start")
	if !errors.Is(err, appdb.ErrInvalid) || !strings.Contains(err.Error(), "filter.start") {
		t.Errorf("reversed range: got %v, want ErrInvalid naming filter.start", err)
	}
}

func TestNewID(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for i := range 100 {
		id := appdb.NewID(t0.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 32 || seen[id] {
			t.Fatalf("NewID #%d = %q: want 32 hex digits, unique", i, id)
		}
		if id <= prev {
			t.Errorf("NewID at a later millisecond %q sorts before %q", id, prev)
		}
		seen[id], prev = true, id
	}
}

func TestNormalizeTime(t *testing.T) {
	in := time.Date(2026, 1, 1, 10, 0, 0, 123456789, time.FixedZone("X", 3600))
	got := appdb.NormalizeTime(in)
	if got.Location() != time.UTC || got.Nanosecond() != 123456000 || !got.Equal(in.Truncate(time.Microsecond)) {
		t.Errorf("NormalizeTime(%v) = %v", in, got)
	}
	if !appdb.NormalizeTime(time.Time{}).IsZero() {
		t.Errorf("NormalizeTime(zero) is not zero")
	}
}

func TestScopeValidate(t *testing.T) {
	tests := []struct {
		scope appdb.Scope
		field string
	}{
		{appdb.Scope{Kind: appdb.ScopeGlobal}, ""},
		{appdb.Scope{Kind: appdb.ScopeGlobal, Target: "d"}, "s.kind"},
		{appdb.Scope{Kind: appdb.ScopeDevice, Target: "d"}, ""},
		{appdb.Scope{Kind: appdb.ScopeSeries}, "s.target"},
		{appdb.Scope{Kind: appdb.ScopeDevice, Target: "d", Selector: map[string]string{"a": "b"}}, "s.selector"},
		{appdb.Scope{Kind: appdb.ScopeSelector, Selector: map[string]string{"a": "b"}}, ""},
		{appdb.Scope{Kind: appdb.ScopeSelector, Target: "x", Selector: map[string]string{"a": "b"}}, "s.target"},
		{appdb.Scope{Kind: "x"}, "s.kind"},
	}
	for _, tt := range tests {
		err := tt.scope.Validate("s")
		var fe *appdb.FieldError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%+v: %v", tt.scope, err)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("%+v: got %v, want error naming %s", tt.scope, err, tt.field)
		}
	}
}
