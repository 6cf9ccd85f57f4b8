package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
)

// maxJSONBody bounds the JSON body of a management request.
const maxJSONBody = 1 << 20

// maxChangeAttempts bounds the re-read-and-apply loop of a change made
// without If-Match when concurrent changes keep winning.
const maxChangeAttempts = 20

// store returns the application store, or errNoStore.
func (s *Server) store() (AppStore, error) {
	if s.d.DB == nil {
		return nil, errNoStore
	}
	return s.d.DB, nil
}

// decodeJSON decodes the body of r into v, refusing unknown fields, trailing
// data and bodies over maxJSONBody.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("body: empty, want a JSON object")
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return badRequest("body: larger than %d bytes", maxJSONBody)
		}
		return badRequest("body: %v", err)
	}
	if dec.More() {
		return badRequest("body: data after the JSON object")
	}
	return nil
}

// pageOf reads limit, cursor and order; def is the order when none is given.
func pageOf(q url.Values, def appdb.Order) (appdb.Page, error) {
	p := appdb.Page{Order: def, Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > appdb.MaxLimit {
			return p, badRequest("limit %q: want an integer in [1, %d]", v, appdb.MaxLimit)
		}
		p.Limit = n
	}
	switch v := q.Get("order"); v {
	case "":
	case "asc":
		p.Order = appdb.Asc
	case "desc":
		p.Order = appdb.Desc
	default:
		return p, badRequest("order %q: want asc or desc", v)
	}
	return p, nil
}

// boolParam reads an optional true/false parameter.
func boolParam(q url.Values, name string) (*bool, error) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, badRequest("%s %q: want true or false", name, v)
	}
	return &b, nil
}

// timeParam reads an optional time parameter (see parseTime).
func (s *Server) timeParam(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := parseTime(v, s.now())
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// rangeParams reads the optional from and to parameters as a TimeRange.
func (s *Server) rangeParams(q url.Values) (appdb.TimeRange, error) {
	from, err := s.timeParam(q, "from")
	if err != nil {
		return appdb.TimeRange{}, err
	}
	to, err := s.timeParam(q, "to")
	if err != nil {
		return appdb.TimeRange{}, err
	}
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		return appdb.TimeRange{}, badRequest("from %s is after to %s", from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	return appdb.TimeRange{From: from, To: to}, nil
}

// ifMatch returns the version of an If-Match header ("<version>", weak or
// strong); 0 when absent or "*".
func ifMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, badRequest("If-Match %q: want the ETag of the resource, a quoted version such as \"3\"", r.Header.Get("If-Match"))
	}
	return n, nil
}

// checkVersion returns errPrecondition when want (from If-Match; 0: any) is
// not the stored version have.
func checkVersion(kind, id string, want, have int64) error {
	if want != 0 && want != have {
		return fmt.Errorf("%s %s: If-Match version %d, stored version %d: %w", kind, id, want, have, errPrecondition)
	}
	return nil
}

// writeVersioned writes v with status and the ETag of version.
func writeVersioned(w http.ResponseWriter, status int, version int64, v any) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(version, 10)+`"`)
	writeJSON(w, status, v)
}

// scopeJSON is an appdb.Scope in requests and responses.
type scopeJSON struct {
	Kind     appdb.ScopeKind   `json:"kind"`
	Target   string            `json:"target,omitempty"`
	Selector map[string]string `json:"selector,omitempty"`
}

func scopeOf(s appdb.Scope) scopeJSON {
	return scopeJSON{Kind: s.Kind, Target: s.Target, Selector: s.Selector}
}

// toScope validates the scope of a request, naming field.* in errors.
func (sj *scopeJSON) toScope(field string) (appdb.Scope, error) {
	if sj == nil || sj.Kind == "" {
		return appdb.Scope{}, badRequest("%s.kind: required, one of global, device, series, selector", field)
	}
	sc := appdb.Scope{Kind: sj.Kind, Target: sj.Target, Selector: sj.Selector}
	if err := sc.Validate(field); err != nil {
		return appdb.Scope{}, err
	}
	return sc, nil
}

// requestTime parses a required time field of a request body.
func (s *Server) requestTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, badRequest("%s: required", field)
	}
	t, err := parseTime(v, s.now())
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", field, err)
	}
	return t, nil
}

// writePage writes one page of a repository Find as
// {"<key>": [...], "next_cursor": "..."}, or the Find's error.
func writePage[E, J any](s *Server, w http.ResponseWriter, r *http.Request, key string, items []E, next string, err error, conv func(E) J) {
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	out := make([]J, len(items))
	for i, it := range items {
		out[i] = conv(it)
	}
	writeJSON(w, http.StatusOK, map[string]any{key: out, "next_cursor": next})
}
