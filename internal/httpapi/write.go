package httpapi

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/vigil-iot/vigil/internal/auth"
	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// writeV1 is InfluxDB 1.x POST /write. db, rp and consistency are accepted
// and ignored (see WRITES.md); precision is n/ns, u/us, ms, s, m or h.
func (s *Server) writeV1(w http.ResponseWriter, r *http.Request) {
	prec, err := telemetry.ParsePrecision(r.URL.Query().Get("precision"))
	if err != nil {
		writeError(w, r, styleV1, s.log, err)
		return
	}
	s.writeLineProtocol(w, r, styleV1, prec)
}

// writeV2 is InfluxDB 2.x POST /api/v2/write. org and bucket are accepted and
// ignored (see WRITES.md); precision is ns, us, ms or s.
func (s *Server) writeV2(w http.ResponseWriter, r *http.Request) {
	var prec telemetry.Precision
	switch p := r.URL.Query().Get("precision"); p {
	case "", "ns":
		prec = telemetry.Nanosecond
	case "us":
		prec = telemetry.Microsecond
	case "ms":
		prec = telemetry.Millisecond
	case "s":
		prec = telemetry.Second
	default:
		writeError(w, r, styleV2, s.log, badRequest("precision %q: want ns, us, ms or s", p))
		return
	}
	s.writeLineProtocol(w, r, styleV2, prec)
}

func (s *Server) writeLineProtocol(w http.ResponseWriter, r *http.Request, style errStyle, prec telemetry.Precision) {
	body, buf, err := s.readBody(w, r)
	defer s.bufs.Put(buf)
	if err != nil {
		writeError(w, r, style, s.log, err)
		return
	}
	p, _ := auth.PrincipalFrom(r.Context())
	_, err = s.d.Ingester.WriteLineProtocol(r.Context(), ingest.Request{DevicePrefix: p.DevicePrefix, Precision: prec}, body)
	if err != nil {
		writeError(w, r, style, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readBody reads the request body within the body limit, decoding gzip.
// The returned buffer goes back to s.bufs once body is no longer used.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *bytes.Buffer, error) {
	buf, _ := s.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	limit := s.d.Ingester.Limits().MaxBodyBytes
	if limit >= 0 && r.ContentLength > limit && r.Header.Get("Content-Encoding") == "" {
		return nil, buf, fmt.Errorf("read body: Content-Length %d exceeds limit MaxBodyBytes=%d: %w", r.ContentLength, limit, ingest.ErrBodyTooLarge)
	}
	raw := r.Body
	if limit >= 0 {
		raw = http.MaxBytesReader(w, r.Body, limit)
	}
	body, err := ingest.ReadBody(raw, r.Header.Get("Content-Encoding"), limit, buf)
	return body, buf, err
}
