package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/auth"
)

// maxCommentBytes bounds the text of a comment.
const maxCommentBytes = 8 << 10

// anomalyJSON is an anomaly event in responses.
type anomalyJSON struct {
	ID           string             `json:"id"`
	Series       string             `json:"series,omitempty"`
	Device       string             `json:"device"`
	Start        time.Time          `json:"start"`
	End          time.Time          `json:"end,omitzero"`
	Ongoing      bool               `json:"ongoing"`
	PeakScore    float64            `json:"peak_score"`
	Severity     appdb.Severity     `json:"severity"`
	Detectors    []string           `json:"detectors"`
	Sensors      []string           `json:"sensors"`
	ModelVersion string             `json:"model_version,omitempty"`
	State        appdb.AnomalyState `json:"state"`
	Assignee     string             `json:"assignee"`
	Comments     []commentJSON      `json:"comments"`
	CreatedAt    time.Time          `json:"created_at"`
	UpdatedAt    time.Time          `json:"updated_at"`
	Version      int64              `json:"version"`
}

type commentJSON struct {
	Author string    `json:"author"`
	Text   string    `json:"text"`
	At     time.Time `json:"at"`
}

func anomalyOf(a appdb.Anomaly) anomalyJSON {
	out := anomalyJSON{
		ID: a.ID, Series: a.SeriesKey, Device: a.Device, Start: a.Start, End: a.End, Ongoing: a.Ongoing(),
		PeakScore: a.PeakScore, Severity: a.Severity, Detectors: a.Detectors, Sensors: a.Sensors,
		ModelVersion: a.ModelVersion, State: a.State, Assignee: a.Assignee,
		Comments:  make([]commentJSON, len(a.Comments)),
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt, Version: a.Version,
	}
	for i, c := range a.Comments {
		out.Comments[i] = commentJSON(c)
	}
	if out.Detectors == nil {
		out.Detectors = []string{}
	}
	if out.Sensors == nil {
		out.Sensors = []string{}
	}
	return out
}

func parseState(field, v string) (appdb.AnomalyState, error) {
	switch st := appdb.AnomalyState(v); st {
	case appdb.StateOpen, appdb.StateAcknowledged, appdb.StateResolved:
		return st, nil
	}
	return "", badRequest("%s %q: want open, acknowledged or resolved", field, v)
}

// transition checks the workflow: open -> acknowledged -> resolved, open ->
// resolved, and reopen (-> open) from acknowledged or resolved. It reports
// whether the state changes; to == from is an idempotent no-op.
func transition(id string, from, to appdb.AnomalyState) (bool, error) {
	if from == to {
		return false, nil
	}
	switch {
	case to == appdb.StateOpen, // reopen
		from == appdb.StateOpen, // -> acknowledged or resolved
		from == appdb.StateAcknowledged && to == appdb.StateResolved:
		return true, nil
	}
	return false, fmt.Errorf("anomaly %s: %s -> %s (a resolved anomaly is final; reopen it with state open first): %w", id, from, to, errTransition)
}

// changeAnomaly applies fn to the stored anomaly and stores the result.
// With want (If-Match) not 0, the stored version must be want. Without, a
// stale-version conflict re-reads and re-applies fn, so that concurrent
// changes are all kept. fn reports whether it changed anything; when not,
// nothing is written.
func changeAnomaly(ctx context.Context, db AppStore, id string, want int64, fn func(*appdb.Anomaly) (bool, error)) (appdb.Anomaly, error) {
	for attempt := 1; ; attempt++ {
		a, err := db.Anomalies().Get(ctx, id)
		if err != nil {
			return appdb.Anomaly{}, err
		}
		if err := checkVersion("anomaly", id, want, a.Version); err != nil {
			return appdb.Anomaly{}, err
		}
		changed, err := fn(&a)
		if err != nil || !changed {
			return a, err
		}
		u, err := db.Anomalies().Update(ctx, a)
		if err == nil {
			return u, nil
		}
		if !errors.Is(err, appdb.ErrConflict) || attempt >= maxChangeAttempts {
			return appdb.Anomaly{}, err
		}
		if want != 0 {
			return appdb.Anomaly{}, fmt.Errorf("anomaly %s: changed concurrently since version %d: %w", id, want, errPrecondition)
		}
	}
}

// listAnomalies is GET /api/v1/anomalies: filters device, series, state,
// severity, ongoing, from/to (on the start time); newest first by default.
func (s *Server) listAnomalies(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	f, err := s.anomalyFilter(r)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	as, next, err := db.Anomalies().Find(r.Context(), f)
	writePage(s, w, r, "anomalies", as, next, err, anomalyOf)
}

func (s *Server) anomalyFilter(r *http.Request) (appdb.AnomalyFilter, error) {
	q := r.URL.Query()
	page, err := pageOf(q, appdb.Desc)
	if err != nil {
		return appdb.AnomalyFilter{}, err
	}
	f := appdb.AnomalyFilter{Device: q.Get("device"), SeriesKey: q.Get("series"), Page: page}
	if v := q.Get("state"); v != "" {
		if f.State, err = parseState("state", v); err != nil {
			return f, err
		}
	}
	switch v := appdb.Severity(q.Get("severity")); v {
	case "", appdb.SeverityInfo, appdb.SeverityWarning, appdb.SeverityCritical:
		f.Severity = v
	default:
		return f, badRequest("severity %q: want info, warning or critical", v)
	}
	if f.Ongoing, err = boolParam(q, "ongoing"); err != nil {
		return f, err
	}
	f.Start, err = s.rangeParams(q)
	return f, err
}

// getAnomaly is GET /api/v1/anomalies/{id}.
func (s *Server) getAnomaly(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err == nil {
		var a appdb.Anomaly
		if a, err = db.Anomalies().Get(r.Context(), r.PathValue("id")); err == nil {
			writeVersioned(w, http.StatusOK, a.Version, anomalyOf(a))
			return
		}
	}
	writeError(w, r, styleV2, s.log, err)
}

// setState is the acknowledge and resolve actions.
func (s *Server) setState(w http.ResponseWriter, r *http.Request, to appdb.AnomalyState) {
	s.changeAnomalyHandler(w, r, func(a *appdb.Anomaly) (bool, error) {
		changed, err := transition(a.ID, a.State, to)
		a.State = to
		return changed, err
	})
}

// acknowledgeAnomaly is POST /api/v1/anomalies/{id}/acknowledge.
func (s *Server) acknowledgeAnomaly(w http.ResponseWriter, r *http.Request) {
	s.setState(w, r, appdb.StateAcknowledged)
}

// resolveAnomaly is POST /api/v1/anomalies/{id}/resolve.
func (s *Server) resolveAnomaly(w http.ResponseWriter, r *http.Request) {
	s.setState(w, r, appdb.StateResolved)
}

// anomalyPatch is the body of PATCH /api/v1/anomalies/{id}; absent fields
// are left alone.
type anomalyPatch struct {
	Assignee *string `json:"assignee"`
	State    *string `json:"state"`
}

// patchAnomaly is PATCH /api/v1/anomalies/{id}: assignee and state.
func (s *Server) patchAnomaly(w http.ResponseWriter, r *http.Request) {
	var p anomalyPatch
	if err := decodeJSON(w, r, &p); err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	if p.Assignee == nil && p.State == nil {
		writeError(w, r, styleV2, s.log, badRequest("body: give assignee, state or both"))
		return
	}
	var to appdb.AnomalyState
	if p.State != nil {
		var err error
		if to, err = parseState("state", *p.State); err != nil {
			writeError(w, r, styleV2, s.log, err)
			return
		}
	}
	if p.Assignee != nil && (len(*p.Assignee) > appdb.MaxIDLen || !utf8.ValidString(*p.Assignee)) {
		writeError(w, r, styleV2, s.log, badRequest("assignee: want valid UTF-8 of at most %d bytes", appdb.MaxIDLen))
		return
	}
	s.changeAnomalyHandler(w, r, func(a *appdb.Anomaly) (bool, error) {
		changed := false
		if p.State != nil {
			c, err := transition(a.ID, a.State, to)
			if err != nil {
				return false, err
			}
			changed, a.State = c, to
		}
		if p.Assignee != nil && *p.Assignee != a.Assignee {
			changed, a.Assignee = true, *p.Assignee
		}
		return changed, nil
	})
}

func (s *Server) changeAnomalyHandler(w http.ResponseWriter, r *http.Request, fn func(*appdb.Anomaly) (bool, error)) {
	db, err := s.store()
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	want, err := ifMatch(r)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	a, err := changeAnomaly(r.Context(), db, r.PathValue("id"), want, fn)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	writeVersioned(w, http.StatusOK, a.Version, anomalyOf(a))
}

// commentAnomaly is POST /api/v1/anomalies/{id}/comments: {"text": ...},
// authored by the token's name.
func (s *Server) commentAnomaly(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	var body struct {
		Text string `json:"text"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	switch {
	case body.Text == "":
		err = badRequest("text: required")
	case len(body.Text) > maxCommentBytes || !utf8.ValidString(body.Text):
		err = badRequest("text: want valid UTF-8 of at most %d bytes", maxCommentBytes)
	}
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	p, _ := auth.PrincipalFrom(r.Context())
	author := p.TokenName
	if author == "" {
		author = p.TokenID
	}
	a, err := db.Anomalies().AddComment(r.Context(), r.PathValue("id"), appdb.Comment{Author: author, Text: body.Text, At: s.now()})
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	writeVersioned(w, http.StatusCreated, a.Version, anomalyOf(a))
}
