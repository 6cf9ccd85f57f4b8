// Package mqttingest brings MQTT telemetry into Vigil: a Subscriber that
// follows a topic on an external broker (Mosquitto, EMQX, HiveMQ, ...) and an
// embedded Broker (mochi-mqtt) that devices connect to straight, with
// per-device credentials. Both decode payloads (line protocol or JSON),
// bind every point to the device named by the topic, and acknowledge a QoS 1
// message only after its points are durable in the time-series store.
//
// Anomaly notifications go out on MQTT too: a Publisher sends them to an
// external broker, and the embedded Broker's Publish relays them to the
// clients subscribed on it (read tokens, and each device for its own).
package mqttingest

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid marks bad configuration or a payload that can never be
// written; such messages are acknowledged and dropped (and logged).
var ErrInvalid = errors.New("invalid")

// DefaultTopic is the default topic template.
const DefaultTopic = "vigil/{device}/telemetry"

// Template is a topic template with one {device} level, such as
// "vigil/{device}/telemetry". Other levels are literal or the MQTT
// wildcard "+".
type Template struct {
	levels      []string
	deviceLevel int
}

// ParseTemplate parses a topic template. It must have exactly one level that
// is "{device}", and no "#".
func ParseTemplate(s string) (Template, error) {
	levels := strings.Split(s, "/")
	t := Template{levels: levels, deviceLevel: -1}
	for i, l := range levels {
		switch {
		case l == "{device}":
			if t.deviceLevel >= 0 {
				return Template{}, fmt.Errorf("topic template %q: {device} appears twice: %w", s, ErrInvalid)
			}
			t.deviceLevel = i
		case strings.ContainsAny(l, "#{}"):
			return Template{}, fmt.Errorf("topic template %q: level %q: only literal levels, \"+\" and one {device} are allowed: %w", s, l, ErrInvalid)
		}
	}
	if t.deviceLevel < 0 {
		return Template{}, fmt.Errorf("topic template %q: needs a {device} level, e.g. %s: %w", s, DefaultTopic, ErrInvalid)
	}
	return t, nil
}

// Filter is the MQTT subscription filter of the template ({device} → +).
func (t Template) Filter() string {
	ls := append([]string(nil), t.levels...)
	ls[t.deviceLevel] = "+"
	return strings.Join(ls, "/")
}

// Device returns the device a topic names, and whether the topic matches
// the template.
func (t Template) Device(topic string) (string, bool) {
	ls := strings.Split(topic, "/")
	if len(ls) != len(t.levels) {
		return "", false
	}
	for i, l := range t.levels {
		switch {
		case i == t.deviceLevel:
			if ls[i] == "" {
				return "", false
			}
		case l == "+":
		case l != ls[i]:
			return "", false
		}
	}
	return ls[t.deviceLevel], true
}

// Topic returns the topic on which device publishes.
func (t Template) Topic(device string) string {
	ls := append([]string(nil), t.levels...)
	ls[t.deviceLevel] = device
	for i, l := range ls {
		if l == "+" {
			ls[i] = "data"
		}
	}
	return strings.Join(ls, "/")
}

// String returns the template as written.
func (t Template) String() string {
	ls := append([]string(nil), t.levels...)
	ls[t.deviceLevel] = "{device}"
	return strings.Join(ls, "/")
}
