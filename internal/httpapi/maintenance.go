package httpapi

import (
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/auth"
)

// maxReasonBytes bounds the reason of a maintenance window.
const maxReasonBytes = 4 << 10

// maintenanceJSON is a maintenance window in responses.
type maintenanceJSON struct {
	ID        string    `json:"id"`
	Scope     scopeJSON `json:"scope"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Reason    string    `json:"reason"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Version   int64     `json:"version"`
}

func maintenanceOf(m appdb.MaintenanceWindow) maintenanceJSON {
	return maintenanceJSON{
		ID: m.ID, Scope: scopeOf(m.Scope), Start: m.Start, End: m.End, Reason: m.Reason, CreatedBy: m.CreatedBy,
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, Version: m.Version,
	}
}

// listMaintenance is GET /api/v1/maintenance: filters kind and target (the
// scope), active_at, from/to (windows overlapping the range); by start,
// ascending by default.
func (s *Server) listMaintenance(w http.ResponseWriter, r *http.Request) {
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
	f := appdb.MaintenanceFilter{ScopeKind: appdb.ScopeKind(q.Get("kind")), Target: q.Get("target"), Page: page}
	if f.ActiveAt, err = s.timeParam(q, "active_at"); err == nil {
		f.Overlaps, err = s.rangeParams(q)
	}
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	ms, next, err := db.Maintenance().Find(r.Context(), f)
	writePage(s, w, r, "maintenance", ms, next, err, maintenanceOf)
}

// maintenanceRequest is the body of POST /api/v1/maintenance.
type maintenanceRequest struct {
	Scope  *scopeJSON `json:"scope"`
	Start  string     `json:"start"`
	End    string     `json:"end"`
	Reason string     `json:"reason"`
}

// toWindow validates the request, naming the field at fault.
func (s *Server) toWindow(req maintenanceRequest) (appdb.MaintenanceWindow, error) {
	var m appdb.MaintenanceWindow
	var err error
	if m.Scope, err = req.Scope.toScope("scope"); err != nil {
		return m, err
	}
	if m.Start, err = s.requestTime("start", req.Start); err != nil {
		return m, err
	}
	if m.End, err = s.requestTime("end", req.End); err != nil {
		return m, err
	}
	if !m.End.After(m.Start) {
		return m, badRequest("end: %s is not after start %s", m.End.UTC().Format(time.RFC3339Nano), m.Start.UTC().Format(time.RFC3339Nano))
	}
	if len(req.Reason) > maxReasonBytes || !utf8.ValidString(req.Reason) {
		return m, badRequest("reason: want valid UTF-8 of at most %d bytes", maxReasonBytes)
	}
	m.Reason = req.Reason
	return m, nil
}

// createMaintenance is POST /api/v1/maintenance.
func (s *Server) createMaintenance(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	var req maintenanceRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	m, err := s.toWindow(req)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	p, _ := auth.PrincipalFrom(r.Context())
	m.CreatedBy = p.TokenName
	if m, err = db.Maintenance().Create(r.Context(), m); err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	w.Header().Set("Location", "/api/v1/maintenance/"+m.ID)
	writeVersioned(w, http.StatusCreated, m.Version, maintenanceOf(m))
}

// getMaintenance is GET /api/v1/maintenance/{id}.
func (s *Server) getMaintenance(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err == nil {
		var m appdb.MaintenanceWindow
		if m, err = db.Maintenance().Get(r.Context(), r.PathValue("id")); err == nil {
			writeVersioned(w, http.StatusOK, m.Version, maintenanceOf(m))
			return
		}
	}
	writeError(w, r, styleV2, s.log, err)
}

// deleteMaintenance is DELETE /api/v1/maintenance/{id}.
func (s *Server) deleteMaintenance(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err == nil {
		if err = db.Maintenance().Delete(r.Context(), r.PathValue("id")); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeError(w, r, styleV2, s.log, err)
}
