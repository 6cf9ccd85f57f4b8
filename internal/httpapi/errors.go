package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/auth"
	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// Error kinds of the HTTP layer itself.
var (
	errBadRequest = errors.New("bad request")
	errNoRoute    = errors.New("not found")
	errMethod     = errors.New("method not allowed")
	// errPrecondition: an If-Match version is not the stored one.
	errPrecondition = errors.New("precondition failed")
	// errTransition: an anomaly state change the workflow does not allow.
	errTransition = errors.New("state transition not allowed")
	// errNoStore: the route needs the application store, which is not
	// configured.
	errNoStore = errors.New("application store not configured")
)

var errNoCredential = fmt.Errorf("no token: send \"Authorization: Token <token>\", a Bearer token, basic auth with the token as password, or the p query parameter: %w", auth.ErrUnauthenticated)

func errNotFound(r *http.Request) error {
	return fmt.Errorf("%s %s: no such route: %w", r.Method, r.URL.Path, errNoRoute)
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errBadRequest)...)
}

// statusOf maps an error kind to an HTTP status and an InfluxDB 2.x error
// code. It is the only place where kinds become statuses.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, auth.ErrForbidden), errors.Is(err, ingest.ErrForbiddenDevice):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, errNoRoute), errors.Is(err, appdb.ErrNotFound):
		return http.StatusNotFound, "not found"
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, "method not allowed"
	case errors.Is(err, errPrecondition):
		return http.StatusPreconditionFailed, "precondition failed"
	case errors.Is(err, errTransition), errors.Is(err, appdb.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, errNoStore):
		return http.StatusNotImplemented, "not implemented"
	case errors.Is(err, ingest.ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge, "request too large"
	case errors.Is(err, ingest.ErrUnsupportedEncoding):
		return http.StatusUnsupportedMediaType, "unsupported media type"
	case errors.Is(err, ingest.ErrBusy):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, telemetry.ErrInvalid), errors.Is(err, telemetry.ErrLimit),
		errors.Is(err, timeseries.ErrInvalid), errors.Is(err, errBadRequest),
		errors.Is(err, appdb.ErrInvalid): // *appdb.FieldError: the message names the field
		return http.StatusBadRequest, "invalid"
	case errors.Is(err, timeseries.ErrOutOfWindow), errors.Is(err, ingest.ErrSeriesLimit):
		return http.StatusUnprocessableEntity, "unprocessable entity"
	case errors.Is(err, timeseries.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, timeseries.ErrUnavailable), errors.Is(err, timeseries.ErrClosed),
		errors.Is(err, appdb.ErrClosed):
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal error"
}

// retryAfterSeconds is the Retry-After sent with 503 and 429.
const retryAfterSeconds = 1

// writeError writes err in the route's style. Server-side failures (5xx
// other than 503) are logged and answered with a generic message.
func writeError(w http.ResponseWriter, r *http.Request, style errStyle, log *slog.Logger, err error) {
	status, code := statusOf(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	}
	h := w.Header()
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Token realm="vigil"`)
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if style == styleV1 {
		h.Set("X-Influxdb-Error", msg)
	}
	w.WriteHeader(status)
	var body any
	if style == styleV1 {
		body = struct {
			Error string `json:"error"`
		}{msg}
	} else {
		body = struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}{code, msg}
	}
	_ = json.NewEncoder(w).Encode(body) // the client is gone if this fails
}
