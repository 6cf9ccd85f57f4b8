package models

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-iot/vigil/internal/detect"
)

// FormatVersion is the version of the artifact format written by Encode
// (see FORMAT.md).
const FormatVersion = 1

// magic starts every artifact.
var magic = [4]byte{'V', 'G', 'M', 'A'}

// maxHeader bounds the JSON header of an artifact (64 MiB).
const maxHeader = 64 << 20

// Artifact is the content of a model: the detector configuration and the
// learned state of every series of the scope, and of the device detector
// for a device scope.
type Artifact struct {
	Scope  Scope
	Config detect.Config
	// Series holds one state per series, sorted by key.
	Series []SeriesState
	// Device is the multivariate detector of a device scope with at least
	// two series; nil otherwise.
	Device *DeviceState
}

// SeriesState is the learned Ensemble state of one series.
type SeriesState struct {
	Key      string
	Readings int64  // readings the state learned from
	Warm     bool   // the warm-up was completed
	State    []byte // detect.Ensemble.MarshalBinary
}

// DeviceState is the learned DeviceDetector state of one device.
type DeviceState struct {
	Config  detect.DeviceConfig
	Sensors []string // series keys, in the detector's column order
	Rows    int64
	Warm    bool
	State   []byte // detect.DeviceDetector.MarshalBinary
}

// header is the JSON part of the encoding.
type header struct {
	Format int            `json:"format"`
	Scope  string         `json:"scope"`
	Config detect.Config  `json:"config"`
	Series []seriesHeader `json:"series"`
	Device *deviceHeader  `json:"device,omitempty"`
}

type seriesHeader struct {
	Key      string `json:"key"`
	Readings int64  `json:"readings"`
	Warm     bool   `json:"warm"`
	Size     int    `json:"size"`
}

type deviceHeader struct {
	Config  detect.DeviceConfig `json:"config"`
	Sensors []string            `json:"sensors"`
	Rows    int64               `json:"rows"`
	Warm    bool                `json:"warm"`
	Size    int                 `json:"size"`
}

// Encode returns the bytes of a (FORMAT.md).
func (a Artifact) Encode() ([]byte, error) {
	if err := a.Scope.Validate(); err != nil {
		return nil, fmt.Errorf("encode artifact: %w", err)
	}
	h := header{Format: FormatVersion, Scope: a.Scope.Name(), Config: a.Config, Series: make([]seriesHeader, len(a.Series))}
	n := 0
	for i, s := range a.Series {
		if i > 0 && strings.Compare(a.Series[i-1].Key, s.Key) >= 0 {
			return nil, fmt.Errorf("encode artifact %s: %w: series %q not sorted or repeated", a.Scope, ErrInvalid, s.Key)
		}
		h.Series[i] = seriesHeader{Key: s.Key, Readings: s.Readings, Warm: s.Warm, Size: len(s.State)}
		n += len(s.State)
	}
	if d := a.Device; d != nil {
		h.Device = &deviceHeader{Config: d.Config, Sensors: d.Sensors, Rows: d.Rows, Warm: d.Warm, Size: len(d.State)}
		n += len(d.State)
	}
	js, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode artifact %s: %w", a.Scope, err)
	}
	out := make([]byte, 0, len(magic)+4+len(js)+n)
	out = append(out, magic[:]...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(js)))
	out = append(out, js...)
	for _, s := range a.Series {
		out = append(out, s.State...)
	}
	if a.Device != nil {
		out = append(out, a.Device.State...)
	}
	return out, nil
}

// DecodeArtifact parses bytes written by Encode. Malformed input is an
// error wrapping ErrCorrupt. The states returned alias nothing of b.
func DecodeArtifact(b []byte) (Artifact, error) {
	bad := func(format string, args ...any) (Artifact, error) {
		return Artifact{}, fmt.Errorf("decode artifact: %w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(b) < len(magic)+4 || !bytes.Equal(b[:4], magic[:]) {
		return bad("missing magic %q", magic[:])
	}
	hl := binary.LittleEndian.Uint32(b[4:8])
	if hl > maxHeader || int(hl) > len(b)-8 {
		return bad("header length %d beyond the %d bytes left", hl, len(b)-8)
	}
	var h header
	dec := json.NewDecoder(bytes.NewReader(b[8 : 8+hl]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return bad("header: %v", err)
	}
	if h.Format != FormatVersion {
		return bad("format version %d, this binary reads %d", h.Format, FormatVersion)
	}
	scope, err := ParseName(h.Scope)
	if err != nil {
		return bad("scope: %v", err)
	}
	if err := h.Config.Validate(); err != nil {
		return bad("config: %v", err)
	}
	a := Artifact{Scope: scope, Config: h.Config, Series: make([]SeriesState, len(h.Series))}
	rest := b[8+hl:]
	take := func(n int, what string) ([]byte, error) {
		if n < 0 || n > len(rest) {
			return nil, fmt.Errorf("decode artifact: %w: %s: %d bytes, %d left", ErrCorrupt, what, n, len(rest))
		}
		s := slices.Clone(rest[:n])
		rest = rest[n:]
		return s, nil
	}
	for i, s := range h.Series {
		if i > 0 && strings.Compare(h.Series[i-1].Key, s.Key) >= 0 {
			return bad("series %q not sorted or repeated", s.Key)
		}
		st, err := take(s.Size, "series "+s.Key)
		if err != nil {
			return Artifact{}, err
		}
		a.Series[i] = SeriesState{Key: s.Key, Readings: s.Readings, Warm: s.Warm, State: st}
	}
	if d := h.Device; d != nil {
		if err := d.Config.Validate(); err != nil {
			return bad("device config: %v", err)
		}
		st, err := take(d.Size, "device state")
		if err != nil {
			return Artifact{}, err
		}
		a.Device = &DeviceState{Config: d.Config, Sensors: d.Sensors, Rows: d.Rows, Warm: d.Warm, State: st}
	}
	if len(rest) != 0 {
		return bad("%d trailing bytes", len(rest))
	}
	return a, nil
}

// Lookup returns the state of the series with key, and whether a has it.
func (a Artifact) Lookup(key string) (SeriesState, bool) {
	i, ok := slices.BinarySearchFunc(a.Series, key, func(s SeriesState, k string) int { return strings.Compare(s.Key, k) })
	if !ok {
		return SeriesState{}, false
	}
	return a.Series[i], true
}

// Ensemble returns a detector of the series with key restored from the
// artifact, configured with a.Config. It fails with ErrNotFound when the
// artifact has no such series and ErrCorrupt when the state does not decode.
func (a Artifact) Ensemble(key string) (*detect.Ensemble, error) {
	s, ok := a.Lookup(key)
	if !ok {
		return nil, fmt.Errorf("model %s: series %q: %w", a.Scope, key, ErrNotFound)
	}
	return restoreEnsemble(a.Config, s.State)
}

// DeviceDetector returns the device detector restored from the artifact. It
// fails with ErrNotFound when the artifact has none.
func (a Artifact) DeviceDetector() (*detect.DeviceDetector, error) {
	if a.Device == nil {
		return nil, fmt.Errorf("model %s: device detector: %w", a.Scope, ErrNotFound)
	}
	return restoreDevice(a.Device.Config, a.Device.Sensors, a.Device.State)
}

func restoreEnsemble(cfg detect.Config, state []byte) (*detect.Ensemble, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("restore ensemble: %w: %w", ErrCorrupt, err)
	}
	e := detect.NewEnsemble(cfg)
	if err := e.UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restore ensemble: %w: %w", ErrCorrupt, err)
	}
	return e, nil
}

func restoreDevice(cfg detect.DeviceConfig, sensors []string, state []byte) (*detect.DeviceDetector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("restore device detector: %w: %w", ErrCorrupt, err)
	}
	if len(sensors) == 0 || len(sensors) > maxSensors {
		return nil, fmt.Errorf("restore device detector: %w: %d sensors", ErrCorrupt, len(sensors))
	}
	d := detect.NewDeviceDetector(cfg, sensors)
	if err := d.UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restore device detector: %w: %w", ErrCorrupt, err)
	}
	return d, nil
}

// maxSensors is the most sensors detect.NewDeviceDetector accepts.
const maxSensors = 256
