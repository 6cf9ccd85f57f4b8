package httpapi_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	influxdb1 "github.com/influxdata/influxdb1-client/v2"
)

// TestInfluxDB2Client writes with the official 2.x client (blocking API,
// with and without gzip) and reads the exact values back.
func TestInfluxDB2Client(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run("gzip="+map[bool]string{false: "off", true: "on"}[gz], func(t *testing.T) {
			e := newEnv(t, envOptions{})
			opts := influxdb2.DefaultOptions().SetUseGZip(gz).SetPrecision(time.Millisecond)
			c := influxdb2.NewClientWithOptions(e.srv.URL, e.tokens["write"], opts)
			defer c.Close()
			ok, err := c.Ping(t.Context())
			if err != nil || !ok {
				t.Fatalf("Ping: %v, %v", ok, err)
			}
			h, err := c.Health(t.Context())
			if err != nil || h.Status != "pass" {
				t.Fatalf("Health: %+v, %v", h, err)
			}
			w := c.WriteAPIBlocking("org", "bucket")
			t0 := now.Add(-10 * time.Minute)
			p1 := influxdb2.NewPoint("climate", map[string]string{"device": "dev-1", "room": "a b"},
				map[string]any{"temp": 21.5, "hum": int64(40), "note": "text"}, t0)
			p2 := influxdb2.NewPoint("climate", map[string]string{"device": "dev-1", "room": "a b"},
				map[string]any{"temp": -0.125, "hum": int64(41)}, t0.Add(time.Second))
			if err := w.WritePoint(t.Context(), p1, p2); err != nil {
				t.Fatalf("WritePoint: %v", err)
			}
			if err := w.WriteRecord(t.Context(), "climate,device=dev-2 temp=1e-3 "+ms(t0)); err != nil {
				t.Fatalf("WriteRecord: %v", err)
			}
			got := e.query(t, "/api/v1/query", url.Values{"measurement": {"climate"}, "start": {iso(t0.Add(-time.Minute))}})
			want := []seriesResult{
				{Key: "climate,device=dev-1,room=a\\ b hum", Measurement: "climate", Tags: map[string]string{"device": "dev-1", "room": "a b"}, Field: "hum",
					Samples: []sample{{iso(t0), 40.0}, {iso(t0.Add(time.Second)), 41.0}}},
				{Key: "climate,device=dev-1,room=a\\ b temp", Measurement: "climate", Tags: map[string]string{"device": "dev-1", "room": "a b"}, Field: "temp",
					Samples: []sample{{iso(t0), 21.5}, {iso(t0.Add(time.Second)), -0.125}}},
				{Key: "climate,device=dev-2 temp", Measurement: "climate", Tags: map[string]string{"device": "dev-2"}, Field: "temp",
					Samples: []sample{{iso(t0), 0.001}}},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("query after 2.x client write (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInfluxDB1Client writes with the official 1.x client (basic auth,
// second precision) and reads the exact values back.
func TestInfluxDB1Client(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, err := influxdb1.NewHTTPClient(influxdb1.HTTPConfig{Addr: e.srv.URL, Username: "telegraf", Password: e.tokens["write"]})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, version, err := c.Ping(time.Second); err != nil || version != "1.8.10-vigil" {
		t.Fatalf("Ping: version %q, %v; want 1.8.10-vigil", version, err)
	}
	bp, err := influxdb1.NewBatchPoints(influxdb1.BatchPointsConfig{Database: "telegraf", Precision: "s"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := now.Add(-5 * time.Minute)
	for i, v := range []float64{3.25, 1e300, -7} {
		p, err := influxdb1.NewPoint("power", map[string]string{"device": "meter-9"}, map[string]any{"watts": v}, t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		bp.AddPoint(p)
	}
	if err := c.Write(bp); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got := e.query(t, "/api/v1/query", url.Values{"device": {"meter-9"}, "field": {"watts"}, "start": {fmt.Sprint(t0.Unix())}})
	want := []seriesResult{{Key: "power,device=meter-9 watts", Measurement: "power", Tags: map[string]string{"device": "meter-9"}, Field: "watts",
		Samples: []sample{{iso(t0), 3.25}, {iso(t0.Add(time.Second)), 1e300}, {iso(t0.Add(2 * time.Second)), -7.0}}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("query after 1.x client write (-want +got):\n%s", diff)
	}

	// A wrong password is refused with the 1.x error shape.
	bad, err := influxdb1.NewHTTPClient(influxdb1.HTTPConfig{Addr: e.srv.URL, Username: "u", Password: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Write(bp); err == nil {
		t.Error("Write with a wrong password: got nil error")
	}
}
