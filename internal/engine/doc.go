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
// # Checkpoint format
//
// Keys are "det:" + len(device) + ":" + device + ":" + series key (empty for
// the device detector). State is "VGE1", a uint32 little-endian length n, n
// bytes of detect state (MarshalBinary), then JSON {"tracker": {...},
// "sensors": [...]}, "sensors" being the device detector's series order.
// An unreadable checkpoint is logged and the series re-warms.
//
// # Telemetry messages
//
// Messages builds them: one message per device and batch, Key the device,
// Payload line protocol with millisecond timestamps. PublishingWriter
// publishes after a durable write.
package engine
