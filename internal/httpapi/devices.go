package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// deviceJSON is one device in GET /api/v1/devices/{id}.
type deviceJSON struct {
	ID     string            `json:"id"`
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Registered reports whether the application store knows the device
	// (name, labels, first_seen); otherwise only the telemetry is known.
	Registered bool      `json:"registered"`
	FirstSeen  time.Time `json:"first_seen,omitzero"`
	// LastSeen is the later of the stored last reading and the newest
	// sample in the look-back range.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Series counts the device's series with data in the range (start/end,
	// default the last LastLookback).
	Series         int    `json:"series"`
	ReportInterval string `json:"report_interval,omitempty"`
}

// getDevice is GET /api/v1/devices/{id}: the device record of the
// application store (when configured and known) merged with its telemetry
// in the range. 404 when neither knows the device.
func (s *Server) getDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	out := deviceJSON{ID: id}
	if s.d.DB != nil {
		d, err := s.d.DB.Devices().Get(r.Context(), id)
		switch {
		case err == nil:
			out.Registered, out.Name, out.Labels = true, d.Name, d.Labels
			out.FirstSeen, out.LastSeen = d.FirstSeen, d.LastSeen
			if d.ReportInterval > 0 {
				out.ReportInterval = d.ReportInterval.String()
			}
		case !errors.Is(err, appdb.ErrNotFound):
			writeError(w, r, styleV2, s.log, err)
			return
		}
	}
	q := url.Values{"device": {id}}
	for _, k := range []string{"start", "end"} {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	rq := r.Clone(r.Context())
	rq.URL.RawQuery = q.Encode()
	res, err := s.lastOf(rq)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	for _, ss := range res {
		out.Series++
		if t := telemetry.FromMillis(ss.Samples[0].Time); t.After(out.LastSeen) {
			out.LastSeen = t
		}
	}
	if !out.Registered && out.Series == 0 {
		writeError(w, r, styleV2, s.log, fmt.Errorf("device %q: no record and no series in the range: %w", id, errNoRoute))
		return
	}
	writeJSON(w, http.StatusOK, out)
}
