// Package engine is Vigil's live detection engine. It consumes the stored
// readings published on the bus topic "telemetry" (consumer group "detect"),
// scores every reading with a per-series detect.Ensemble and, for devices
// with two series or more, a per-device detect.DeviceDetector, and turns the
// results into anomaly events recorded in the application database together
// with an outbox message announcing them (topic "anomalies"), in one
// transaction.
//
// # Events
//
// An event opens on a reading the detector flags (Result.Anomaly), stays
// open while readings stay "hot" (flagged, or with a score of at least
// ExtendRatio × the threshold: the ensemble reports just-under-threshold
// scores while it rests after an alarm), and closes after CloseAfter
// consecutive clean readings; its End is the last hot reading. An event is
// announced when it opens, when its severity rises (escalate) and when it
// closes. Its ID is derived from the series key (or "device:" + device) and
// its start, so a redelivered or replayed reading never duplicates an event,
// in any process; announcements have deterministic IDs too (see
// Notification.ID). Only detection fields are written by the engine; the
// workflow (acknowledge, assign, comment, resolve) is plain appdb updates
// and needs no engine logic.
//
// An event that would open inside an active maintenance window covering its
// device or series (appdb.MaintenanceWindow: global, device, series or tag
// selector scope) is muted: the episode is tracked to its end but nothing is
// recorded or announced. Readings in the window are still scored.
//
// # No data
//
// Run checks silence every SilenceCheck (CheckSilence), at the engine's
// clock (Options.Now), for every device in memory. A series is judged only
// when its detector is warm (it has a learned reporting interval) and its
// last reading was live: when scored, it was at most GapFactor learned
// intervals older than the clock. So a backfill of old history, or a replay
// of readings long past, opens no no-data event. A judged series is silent
// when detect.Ensemble.Silent says so (longer than its silence limit since
// its last reading); its silence starts at its last reading plus its
// learned interval.
//
// When every judged series of a device is silent, one device-level event
// opens (no series key, detectors ["nodata"], sensors the silent series'
// keys) at the latest silence start, and closes at the device's next
// reading. When some series are silent while another reports (a reading
// after the silence start), each silent series gets a series-level event
// (sensors its field), closed at its next reading; a silent series whose
// siblings have not reported since is not reported yet (the device may be
// stopping). The events are recorded and announced like the others (one
// transaction, deterministic IDs from "nodata:" + the series key, or
// "nodata:device:" + device, and the start; maintenance windows active at
// the start mute them), and the gap a silence check reported is not
// reported again by the detector's own gap result when readings resume.
// The silence state is checkpointed with each series, so a restart neither
// duplicates an event nor loses its close. An idle device is not evicted
// while a live series of it awaits judgment (up to 4 × GapFactor intervals
// after its last reading), so a silence longer than IdleTimeout is still
// found; a device evicted for MaxSeries, or one not loaded since a restart
// without checkpoint, is not judged until it reports.
//
// # Order, late readings, redelivery
//
// Per series, readings are scored in timestamp order. A reading whose time is
// not after the last scored reading of its series is stored (the engine never
// rejects data) but not scored: it is a redelivery or a late arrival, and
// feeding it would break the detectors' time order. Stats.Late counts them.
// For the device detector a row is the set of a device's readings with the
// same timestamp within one batch; a row's readings split over two batches
// are scored per series, and by the device detector only from the first
// batch. The device detector's sensors are the device's series when it got
// its second series; series added later are scored per series only.
//
// # Starting state: models and detector configurations
//
// A series seen for the first time (no checkpoint) gets its detector from,
// in order:
//
//   - the detector configurations of the application database
//     (appdb.DetectorConfig, Detector DetectorEnsemble for series,
//     DetectorDevice for the device detector): the most specific one
//     covering the series wins (series > device > tag selector > global;
//     among equals, the newest). Enabled false turns detection of the
//     series off (its readings are stored, not scored, not checkpointed);
//     otherwise Params, a JSON object with the field names of detect.Config
//     (detect.DeviceConfig), overrides the engine's Config.Ensemble
//     (Config.Device), which is detect.DefaultConfig() by default. A config
//     with an unknown detector, an unknown field or a value that does not
//     validate is logged once (naming its ID and the field) and ignored, as
//     if absent;
//   - the active model of the series or its device (Options.Models,
//     models.Registry.InitialState): the detector starts warm from the
//     model's state, with the model's configuration (parameter overrides do
//     not apply to it; enabled false does), and its events carry
//     ModelVersion "series:<key>@<version>" (or "device:<id>@<version>"). A
//     corrupt model is logged and the series starts cold; a failure to
//     reach the registry fails the batch, which is redelivered;
//   - else a cold detector with the resolved configuration.
//
// The device detector is made likewise (InitialDevice; with a model, its
// sensors are the model's) once the device has two enabled series. The
// configurations, and the names of the active models when Options.Models
// lists them (ModelNamer: the registry is then asked only for series and
// devices that have a model), are read at the start of Run and every
// ConfigRefresh (RefreshConfigs; default 30s): a promotion reaches new
// series within ConfigRefresh.
//
// # Configuration changes
//
// A created, updated or deleted detector configuration takes effect at the
// first refresh after it (within ConfigRefresh under Run), for new series
// and running detectors alike. A refresh that reads different
// configurations than the previous one bumps a generation; each device in
// memory is re-resolved against the configurations once per generation,
// before its next batch or silence check (so a device that sends nothing
// is still reconciled within SilenceCheck), and a device loaded from its
// checkpoints (at start, or after eviction) is resolved against the
// current configurations before its catch-up: a checkpoint never keeps a
// detector the configurations have turned off. Model promotions alone do
// not re-resolve running detectors. Per series (the device detector
// likewise, with DetectorDevice configurations), from the next reading on:
//
//   - now disabled: the detector is dropped and the series' readings are
//     stored but not scored. An open event closes as CloseAfter clean
//     readings would close it: End its last hot reading, a close
//     announced (a muted episode just ends); an open series-level no-data
//     event closes at the engine clock, the device-level one too when no
//     enabled series of the device is left. The checkpoint is deleted at
//     the device's next checkpoint (after those events are recorded; a
//     crash before it restores it and closes the same events again, with
//     the same IDs). A device detector keeps a disabled series as a
//     sensor, with its readings missing from its rows;
//   - enabled again: a new detector, as for a new series (the active
//     model's, else cold with the configuration's params);
//   - params changed, the detector not started from a model: a new
//     detector likewise; the event tracker, the silence state and the time
//     of the last scored reading carry over, so an open event goes on
//     (closing after CloseAfter clean readings of the new detector, which
//     scores nothing while it warms up) and redeliveries stay late. The
//     new detector's state replaces the checkpoint. A detector started
//     from a model keeps running: params do not apply to it.
//
// # Checkpoints and restart
//
// Each series (and device detector) has an appdb.Checkpoint: the time of its
// last scored reading and its serialised state (detector state plus event
// tracker). Changed state is checkpointed every CheckpointInterval, when a
// device is evicted (idle for IdleTimeout, or least recently used beyond
// MaxSeries) and when Run returns. A checkpoint never runs ahead of the
// recorded events: events of a batch are committed before the batch's
// state can be checkpointed, and a batch whose events fail to commit drops
// the device's state, which is then reloaded from its checkpoint.
//
// Loading a device (at start for every checkpointed device, or when an
// evicted device sends again) restores its checkpoints and scores the
// readings stored since, reading the time-series store: so after a crash
// nothing stored is left unscored, even readings whose bus messages were
// lost, and nothing is scored twice. Replay is deterministic, so the events
// are the same as in an uninterrupted run. A series never checkpointed (new
// in the last CheckpointInterval before a crash) restarts from its next
// reading.
//
// # Device registry
//
// The engine keeps the device registry (appdb.Device) current for every
// device that sends data: for each device it notes the times of the
// readings it handles (every finite reading of a valid series, scored or
// not: late readings and series with detection off count too, so do the
// readings scored by catch-up) and, at every checkpoint (Flush: every
// CheckpointInterval, and when Run returns), writes for each device that
// got readings since its last registry write:
//
//   - FirstSeen and LastSeen, with appdb.DeviceRepository.Seen (which
//     creates the device when missing and only widens the range), called
//     with the earliest reading time when it is before the stored first
//     seen (or the stored entry is not known yet) and with the latest
//     when it is after the stored last seen;
//   - ReportInterval, the device's learned reporting interval: the median
//     of the learned intervals (detect.Ensemble.Interval) of its series
//     with detection on (the lower middle one for an even count), so that
//     one odd series does not set it. It is written only when it differs
//     by more than 10% from the stored one (or none is stored), by Get,
//     then Update, retried once on a version conflict.
//
// Only these fields are written: Name and Labels set by users are kept. A
// device that got no reading since its last write is not written at all.
// The writes are made without holding the device, so scoring goes on
// meanwhile; a failed write is logged and retried at the next checkpoint,
// and never fails scoring or Flush. A device evicted or dropped before its
// registry write keeps its unwritten times for the next checkpoint.
//
// # Checkpoint format
//
// Keys are "det:" + len(device) + ":" + device + ":" + series key (empty for
// the device detector). State is "VGE1", a uint32 little-endian length n, n
// bytes of detect state (MarshalBinary), then JSON {"tracker": {...},
// "sensors": [...], "model": "name@version", "config": {...},
// "device_config": {...}, "nodata": {...}}, "sensors" being the device detector's series
// order and "config" ("device_config") the detector's configuration when it
// is not the engine's (restored with the engine's when absent), "nodata"
// a series' silence state (absent when empty).
// An unreadable checkpoint is logged and the series re-warms.
//
// # Telemetry messages
//
// Messages builds them: one message per device and batch, Key the device,
// Payload the device's points in the binary telemetry encoding, version 1
// (integers are Go's encoding/binary varints: "uvarint" unsigned, "varint"
// zig-zag signed):
//
//	message = "VGT" version:byte(1) nseries:uvarint series{nseries}
//	          npoints:uvarint point{npoints}
//	series  = len:uvarint key:byte{len}       // telemetry.Series.Key()
//	point   = index:uvarint delta:varint value:8 bytes
//
// index is the point's series, a position in the series list; delta is its
// time (Unix ms) minus the previous point's (the first point's minus 0);
// value is the IEEE 754 bits of the reading, little-endian. Points keep the
// order they were written in. A decoder rejects (ErrBadMessage) another
// magic or version, a truncated message, bytes after the last point, an
// index out of range and (DecodeMessage) a key ParseSeriesKey rejects;
// Handle parses a key only for a series new to the message's device, and
// drops (logs) a reading whose key is malformed or of another device.
// PublishingWriter publishes after a durable write. A change of layout gets
// a new version byte; the engine logs and acknowledges a message it cannot
// read (its readings stay stored, unscored), so deploy readers before
// writers.
package engine
