package httpapi

import (
	"net/http"

	"github.com/vigil-iot/vigil/internal/auth"
	"github.com/vigil-iot/vigil/internal/ingest"
)

// writePointsJSON is POST /api/v1/points: one JSON point object or an array
// of them (the format of telemetry.ParseJSON), with the partial-write
// semantics of the line-protocol endpoints.
func (s *Server) writePointsJSON(w http.ResponseWriter, r *http.Request) {
	body, buf, err := s.readBody(w, r)
	defer s.bufs.Put(buf)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	p, _ := auth.PrincipalFrom(r.Context())
	if _, err := s.d.Ingester.WriteJSON(r.Context(), ingest.Request{DevicePrefix: p.DevicePrefix}, body); err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
