package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vigil-iot/vigil/internal/detect"
)

// Checkpoint keys. Every checkpoint of device d starts with devicePrefix(d)
// = "det:" + len(d) + ":" + d + ":"; a series checkpoint appends the series
// key, the device detector's checkpoint appends nothing. The length makes
// the prefix unambiguous whatever the device ID contains.
const checkpointPrefix = "det:"

func devicePrefix(device string) string {
	return checkpointPrefix + strconv.Itoa(len(device)) + ":" + device + ":"
}

// parseCheckpointKey returns the device and series key ("" for the device
// detector) of a checkpoint key.
func parseCheckpointKey(key string) (device, series string, err error) {
	rest, ok := strings.CutPrefix(key, checkpointPrefix)
	if !ok {
		return "", "", fmt.Errorf("checkpoint key %q: no %q prefix: %w", key, checkpointPrefix, ErrBadCheckpoint)
	}
	n, rest, ok := strings.Cut(rest, ":")
	l, err := strconv.Atoi(n)
	if !ok || err != nil || l < 0 || len(rest) < l+1 || rest[l] != ':' {
		return "", "", fmt.Errorf("checkpoint key %q: malformed device part: %w", key, ErrBadCheckpoint)
	}
	return rest[:l], rest[l+1:], nil
}

// ErrBadCheckpoint: a stored checkpoint cannot be read. The engine then
// starts that series afresh (re-warming its detectors).
var ErrBadCheckpoint = errors.New("unreadable detection checkpoint")

// Checkpoint state format (the State of an appdb.Checkpoint written by the
// engine): the 4 bytes "VGE1", a uint32 little-endian length n, n bytes of
// detector state (detect's MarshalBinary), then a JSON object:
//
//	{"tracker": {...event tracker...}, "sensors": ["series key", ...]}
//
// "sensors" is present for the device detector only (its sensor order).
const stateMagic = "VGE1"

type stateMeta struct {
	Tracker tracker  `json:"tracker"`
	Sensors []string `json:"sensors,omitempty"`
	// Model is the model the detector started from ("name@version").
	Model string `json:"model,omitempty"`
	// Config (series) or DeviceConfig (device) is the detector's
	// configuration; absent in older checkpoints, which restore with the
	// engine's.
	Config       *detect.Config       `json:"config,omitempty"`
	DeviceConfig *detect.DeviceConfig `json:"device_config,omitempty"`
	// NoData is a series' silence check state (see CheckSilence).
	NoData *seriesNoData `json:"nodata,omitempty"`
}

func encodeState(det []byte, meta stateMeta) ([]byte, error) {
	js, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	b := make([]byte, 0, 8+len(det)+len(js))
	b = append(b, stateMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(det)))
	b = append(b, det...)
	return append(b, js...), nil
}

func decodeState(b []byte) (det []byte, meta stateMeta, err error) {
	if len(b) < 8 || string(b[:4]) != stateMagic {
		return nil, meta, fmt.Errorf("checkpoint state: bad header: %w", ErrBadCheckpoint)
	}
	n := int(binary.LittleEndian.Uint32(b[4:8]))
	if n > len(b)-8 {
		return nil, meta, fmt.Errorf("checkpoint state: detector state of %d bytes truncated: %w", n, ErrBadCheckpoint)
	}
	det = b[8 : 8+n]
	if err := json.Unmarshal(b[8+n:], &meta); err != nil {
		return nil, meta, fmt.Errorf("checkpoint state: %w: %w", ErrBadCheckpoint, err)
	}
	return det, meta, nil
}
