package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// Notification is the JSON payload of a TopicAnomalies outbox message, as
// the webhook receives it.
type Notification struct {
	// ID identifies this announcement (event, action and severity); it is
	// stable across re-sends, so receivers deduplicate on it.
	ID string `json:"id"`
	// Action is ActionOpen, ActionEscalate or ActionClose.
	Action  string    `json:"action"`
	Anomaly EventView `json:"anomaly"`
}

// EventView is the announced state of an anomaly event.
type EventView struct {
	ID        string    `json:"id"`
	SeriesKey string    `json:"series,omitempty"` // empty for a device-level event
	Device    string    `json:"device"`
	Start     time.Time `json:"start"`
	// End is null while the event is ongoing.
	End          *time.Time `json:"end"`
	PeakScore    float64    `json:"peak_score"`
	Severity     string     `json:"severity"`
	Detectors    []string   `json:"detectors,omitempty"`
	Sensors      []string   `json:"sensors,omitempty"`
	ModelVersion string     `json:"model_version,omitempty"`
}

// event is one change of one event, produced by a batch.
type event struct {
	anomaly appdb.Anomaly
	actions []announce
}

func severityOf(s detect.Severity) appdb.Severity {
	switch s {
	case detect.SeverityCritical:
		return appdb.SeverityCritical
	case detect.SeverityWarning:
		return appdb.SeverityWarning
	}
	return appdb.SeverityInfo
}

// snapshot is the anomaly record of tr's event as of now; end is set when
// the event has closed.
func (tr *tracker) snapshot(device, seriesKey, model string) appdb.Anomaly {
	a := appdb.Anomaly{
		ID:           tr.ID,
		SeriesKey:    seriesKey,
		Device:       device,
		Start:        telemetry.FromMillis(tr.Start),
		PeakScore:    min(max(tr.Peak, 0), 1),
		Severity:     severityOf(tr.Severity),
		Detectors:    slices.Clone(tr.Detectors),
		Sensors:      slices.Clone(tr.Sensors),
		ModelVersion: model,
	}
	if !tr.Open {
		a.End = telemetry.FromMillis(tr.LastHot)
	}
	return a
}

func view(a appdb.Anomaly) EventView {
	v := EventView{
		ID: a.ID, SeriesKey: a.SeriesKey, Device: a.Device, Start: a.Start.UTC(),
		PeakScore: a.PeakScore, Severity: string(a.Severity),
		Detectors: a.Detectors, Sensors: a.Sensors, ModelVersion: a.ModelVersion,
	}
	if !a.End.IsZero() {
		end := a.End.UTC()
		v.End = &end
	}
	return v
}

// maxTxAttempts bounds the retries of an event transaction that lost an
// optimistic-concurrency race (a user acknowledging an event meanwhile).
const maxTxAttempts = 5

// writeEvents records evs and their announcements in one transaction.
// Records are upserted by their deterministic ID, detection fields only
// (workflow fields — state, assignee, comments — are the users'); an
// announcement whose ID exists is not written again. So writing the same
// events twice (a redelivery, a replay after a restart) changes nothing.
func writeEvents(ctx context.Context, db appdb.Store, evs []event) error {
	if len(evs) == 0 {
		return nil
	}
	var err error
	for range maxTxAttempts {
		err = db.InTx(ctx, func(tx appdb.Tx) error {
			for _, ev := range evs {
				if err := upsertEvent(ctx, tx, ev); err != nil {
					return err
				}
			}
			return nil
		})
		if !errors.Is(err, appdb.ErrConflict) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %d anomaly events: %w", len(evs), err)
	}
	return nil
}

func upsertEvent(ctx context.Context, tx appdb.Tx, ev event) error {
	a := ev.anomaly
	cur, err := tx.Anomalies().Get(ctx, a.ID)
	switch {
	case errors.Is(err, appdb.ErrNotFound):
		a.State = appdb.StateOpen
		if cur, err = tx.Anomalies().Create(ctx, a); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		next := cur
		next.SeriesKey, next.Device, next.Start, next.End = a.SeriesKey, a.Device, a.Start, a.End
		next.PeakScore, next.Severity, next.ModelVersion = a.PeakScore, a.Severity, a.ModelVersion
		next.Detectors, next.Sensors = a.Detectors, a.Sensors
		next.Normalize()
		if !sameDetection(cur, next) {
			if cur, err = tx.Anomalies().Update(ctx, next); err != nil {
				return err
			}
		}
	}
	for _, act := range ev.actions {
		id := notificationID(a.ID, act.action, act.severity)
		if _, err := tx.Outbox().Get(ctx, id); err == nil {
			continue
		} else if !errors.Is(err, appdb.ErrNotFound) {
			return err
		}
		body, err := json.Marshal(Notification{ID: id, Action: act.action, Anomaly: view(cur)})
		if err != nil {
			return fmt.Errorf("encode notification of anomaly %s: %w", a.ID, err)
		}
		if _, err := tx.Outbox().Create(ctx, appdb.OutboxMessage{ID: id, Topic: TopicAnomalies, Key: a.Device, Payload: body}); err != nil {
			return err
		}
	}
	return nil
}

func sameDetection(a, b appdb.Anomaly) bool {
	return a.SeriesKey == b.SeriesKey && a.Device == b.Device && a.Start.Equal(b.Start) && a.End.Equal(b.End) &&
		a.PeakScore == b.PeakScore && a.Severity == b.Severity && a.ModelVersion == b.ModelVersion &&
		slices.Equal(a.Detectors, b.Detectors) && slices.Equal(a.Sensors, b.Sensors)
}
