package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/engine"
)

// detectorJSON is a detector configuration in responses.
type detectorJSON struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Detector  string          `json:"detector"`
	Scope     scopeJSON       `json:"scope"`
	Params    json.RawMessage `json:"params,omitempty"`
	Enabled   bool            `json:"enabled"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Version   int64           `json:"version"`
}

func detectorOf(c appdb.DetectorConfig) detectorJSON {
	return detectorJSON{
		ID: c.ID, Name: c.Name, Detector: c.Detector, Scope: scopeOf(c.Scope), Params: c.Params, Enabled: c.Enabled,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Version: c.Version,
	}
}

// detectorRequest is the body of POST /api/v1/detectors and PUT
// /api/v1/detectors/{id} (a full replacement).
type detectorRequest struct {
	Name     string          `json:"name"`
	Detector string          `json:"detector"`
	Scope    *scopeJSON      `json:"scope"`
	Params   json.RawMessage `json:"params"`
	Enabled  *bool           `json:"enabled"` // absent: true
}

// apply validates req into c, naming the field at fault.
func (req detectorRequest) apply(c *appdb.DetectorConfig) error {
	if req.Detector != engine.DetectorEnsemble && req.Detector != engine.DetectorDevice {
		return badRequest("detector: %q: want %q (the per-series ensemble) or %q (the per-device detector)",
			req.Detector, engine.DetectorEnsemble, engine.DetectorDevice)
	}
	sc, err := req.Scope.toScope("scope")
	if err != nil {
		return err
	}
	params := req.Params
	if string(params) == "null" {
		params = nil
	}
	if len(params) > 0 && params[0] != '{' {
		return badRequest("params: want a JSON object")
	}
	c.Name, c.Detector, c.Scope, c.Params = req.Name, req.Detector, sc, params
	c.Enabled = req.Enabled == nil || *req.Enabled
	return nil
}

// listDetectors is GET /api/v1/detectors: filters detector, kind, target,
// enabled; by creation, ascending by default.
func (s *Server) listDetectors(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	q := r.URL.Query()
	page, err := pageOf(q, appdb.Asc)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	f := appdb.DetectorConfigFilter{Detector: q.Get("detector"), ScopeKind: appdb.ScopeKind(q.Get("kind")), Target: q.Get("target"), Page: page}
	if f.Enabled, err = boolParam(q, "enabled"); err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	cs, next, err := db.Detectors().Find(r.Context(), f)
	writePage(s, w, r, "detectors", cs, next, err, detectorOf)
}

// createDetector is POST /api/v1/detectors.
func (s *Server) createDetector(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	var req detectorRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	var c appdb.DetectorConfig
	if err := req.apply(&c); err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	if c, err = db.Detectors().Create(r.Context(), c); err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	w.Header().Set("Location", "/api/v1/detectors/"+c.ID)
	writeVersioned(w, http.StatusCreated, c.Version, detectorOf(c))
}

// getDetector is GET /api/v1/detectors/{id}.
func (s *Server) getDetector(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err == nil {
		var c appdb.DetectorConfig
		if c, err = db.Detectors().Get(r.Context(), r.PathValue("id")); err == nil {
			writeVersioned(w, http.StatusOK, c.Version, detectorOf(c))
			return
		}
	}
	writeError(w, r, styleV2, s.log, err)
}

// putDetector is PUT /api/v1/detectors/{id}: replaces the configuration.
// With If-Match, only if it is still at that version; without, the last
// writer wins.
func (s *Server) putDetector(w http.ResponseWriter, r *http.Request) {
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
	var req detectorRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	id := r.PathValue("id")
	for attempt := 1; ; attempt++ {
		var c appdb.DetectorConfig
		if c, err = db.Detectors().Get(r.Context(), id); err != nil {
			break
		}
		if err = checkVersion("detector", id, want, c.Version); err != nil {
			break
		}
		if err = req.apply(&c); err != nil {
			break
		}
		if c, err = db.Detectors().Update(r.Context(), c); err == nil {
			writeVersioned(w, http.StatusOK, c.Version, detectorOf(c))
			return
		}
		if !errors.Is(err, appdb.ErrConflict) || attempt >= maxChangeAttempts {
			break
		}
		if want != 0 {
			err = fmt.Errorf("detector %s: changed concurrently since version %d: %w", id, want, errPrecondition)
			break
		}
	}
	writeError(w, r, styleV2, s.log, err)
}

// deleteDetector is DELETE /api/v1/detectors/{id}.
func (s *Server) deleteDetector(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err == nil {
		if err = db.Detectors().Delete(r.Context(), r.PathValue("id")); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeError(w, r, styleV2, s.log, err)
}
