package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"

	"github.com/vigil-iot/vigil/internal/detect"
)

// Actions announced for an event.
const (
	ActionOpen     = "open"     // the event started
	ActionEscalate = "escalate" // its severity rose
	ActionClose    = "close"    // it ended
)

// tracker turns a stream of detector results of one series (or device) into
// events with hysteresis. It is part of the checkpointed state, hence the
// exported fields with JSON names.
type tracker struct {
	// Open is true while an event (or a muted episode) is open.
	Open bool `json:"open,omitempty"`
	// Muted marks an episode that started inside a maintenance window: it
	// is tracked like an event, so that it ends the same way, but nothing is
	// recorded or announced.
	Muted     bool            `json:"muted,omitempty"`
	ID        string          `json:"id,omitempty"`
	Start     int64           `json:"start,omitempty"`
	LastHot   int64           `json:"last_hot,omitempty"`
	Peak      float64         `json:"peak,omitempty"`
	Severity  detect.Severity `json:"severity,omitempty"`
	Detectors []string        `json:"detectors,omitempty"`
	Sensors   []string        `json:"sensors,omitempty"`
	Clean     int             `json:"clean,omitempty"`
}

// step is what one result did to the tracker.
type step struct {
	actions []announce // in order; empty for an extension or nothing
	changed bool       // the event record changed (write it)
}

// announce is one action on an event, with the severity at that moment.
type announce struct {
	action   string
	severity detect.Severity
}

// eventID is the deterministic identity of the event of key starting at
// start (Unix ms): a redelivered or replayed reading yields the same ID, in
// any process.
func eventID(key string, start int64) string {
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, start, 10))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// notificationID is the deterministic identity of one announcement of an
// event: the outbox message ID and the webhook's X-Vigil-Event-Id.
func notificationID(event, action string, sev detect.Severity) string {
	h := sha256.Sum256([]byte(event + "\x00" + action + "\x00" + sev.String()))
	return hex.EncodeToString(h[:16])
}

// hot reports whether r keeps an event open: an alarm, or a score at least
// extend (the ensemble reports scores just under its threshold while it
// rests after an alarm, so a sustained anomaly stays hot).
func hot(r detect.Result, extend float64) bool {
	return r.Anomaly || r.Score >= extend
}

// update feeds the result r at time t. mutedAt is consulted only when an
// event would open; it reports whether t is inside a maintenance window.
func (tr *tracker) update(key string, t int64, r detect.Result, extend float64, closeAfter int, mutedAt func() (bool, error)) (step, error) {
	var st step
	isHot := hot(r, extend)
	if !tr.Open {
		if !r.Anomaly {
			return st, nil
		}
		muted, err := mutedAt()
		if err != nil {
			return st, err
		}
		*tr = tracker{Open: true, Muted: muted, ID: eventID(key, t), Start: t, LastHot: t,
			Peak: r.Score, Severity: max(r.Severity, detect.SeverityInfo)}
		tr.merge(r)
		if !muted {
			st.actions = append(st.actions, announce{ActionOpen, tr.Severity})
			st.changed = true
		}
		return st, nil
	}
	if isHot {
		tr.Clean = 0
		tr.LastHot = t
		if r.Score > tr.Peak {
			tr.Peak = r.Score
			st.changed = true
		}
		if r.Anomaly && r.Severity > tr.Severity {
			tr.Severity = r.Severity
			st.changed = true
			st.actions = append(st.actions, announce{ActionEscalate, tr.Severity})
		}
		if tr.merge(r) {
			st.changed = true
		}
	} else {
		tr.Clean++
		if tr.Clean >= closeAfter {
			st.actions = append(st.actions, announce{ActionClose, tr.Severity})
			st.changed = true
			tr.Open = false
		}
	}
	if tr.Muted {
		return step{}, nil
	}
	return st, nil
}

// merge adds r's detectors and sensors; it reports whether any was new.
func (tr *tracker) merge(r detect.Result) bool {
	changed := false
	for _, d := range r.Detectors {
		if !slices.Contains(tr.Detectors, d) {
			tr.Detectors = append(tr.Detectors, d)
			changed = true
		}
	}
	for _, s := range r.Sensors {
		if !slices.Contains(tr.Sensors, s) {
			tr.Sensors = append(tr.Sensors, s)
			changed = true
		}
	}
	return changed
}
