package httpapi

import (
	"encoding/json"
	"net/http"
)

// ping answers InfluxDB's /ping: 204 with the version headers, or 200 with
// {"version":...} when verbose=true.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Influxdb-Build", "OSS")
	h.Set("X-Influxdb-Version", s.d.Version)
	if r.URL.Query().Get("verbose") == "true" && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, map[string]string{"version": s.d.Version})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type checkJSON struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// checks runs the readiness func and reports whether all passed.
func (s *Server) checks(r *http.Request) ([]checkJSON, bool) {
	out := []checkJSON{}
	if s.d.Ready == nil {
		return out, true
	}
	ok := true
	for _, c := range s.d.Ready(r.Context()) {
		cj := checkJSON{Name: c.Name, Status: "pass"}
		if c.Err != nil {
			ok = false
			cj.Status, cj.Message = "fail", c.Err.Error()
		}
		out = append(out, cj)
	}
	return out, ok
}

// health answers InfluxDB 2.x's /health: 200 with status "pass" when every
// store is ready, 503 with status "fail" otherwise.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	checks, ok := s.checks(r)
	body := struct {
		Name    string      `json:"name"`
		Message string      `json:"message"`
		Status  string      `json:"status"`
		Checks  []checkJSON `json:"checks"`
		Version string      `json:"version"`
		Commit  string      `json:"commit"`
	}{"influxdb", "ready for queries and writes", "pass", checks, s.d.Version, ""}
	status := http.StatusOK
	if !ok {
		body.Message, body.Status, status = "not ready", "fail", http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}

// healthz is the liveness probe: the process serves HTTP.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is the readiness probe: 200 when every store is ready, else 503,
// with the state of each.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks, ok := s.checks(r)
	status, word := http.StatusOK, "ready"
	if !ok {
		status, word = http.StatusServiceUnavailable, "not ready"
	}
	writeJSON(w, status, struct {
		Status string      `json:"status"`
		Checks []checkJSON `json:"checks"`
	}{word, checks})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client is gone if this fails
}
