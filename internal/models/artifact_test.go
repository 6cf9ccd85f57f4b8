package models_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/models"
)

// sampleArtifact returns a device artifact with real detector states.
func sampleArtifact(t testing.TB) models.Artifact {
	t.Helper()
	cfg := detect.DefaultConfig()
	cfg.Warmup = 20
	e := detect.NewEnsemble(cfg)
	dcfg := detect.DefaultDeviceConfig()
	dcfg.Warmup = 20
	sensors := []string{"m,device=d a", "m,device=d b"}
	d := detect.NewDeviceDetector(dcfg, sensors)
	for i := range 40 {
		v := float64(i%7) + 0.1*float64(i%3)
		e.Update(int64(i)*1000, v)
		d.Update(int64(i)*1000, []float64{v, 2 * v})
	}
	es, _ := e.MarshalBinary()
	ds, _ := d.MarshalBinary()
	return models.Artifact{
		Scope:  models.DeviceScope("d"),
		Config: cfg,
		Series: []models.SeriesState{
			{Key: sensors[0], Readings: 40, Warm: true, State: es},
			{Key: sensors[1], Readings: 40, Warm: true, State: es},
		},
		Device: &models.DeviceState{Config: dcfg, Sensors: sensors, Rows: 40, Warm: true, State: ds},
	}
}

func TestArtifactRoundTrip(t *testing.T) {
	cases := map[string]models.Artifact{
		"device": sampleArtifact(t),
		"series without device": {
			Scope: models.SeriesScope("m,device=d a"), Config: detect.DefaultConfig(),
			Series: []models.SeriesState{{Key: "m,device=d a", Readings: 3, State: []byte{1, 2, 3}}},
		},
		"no series": {Scope: models.SeriesScope("x y"), Config: detect.DefaultConfig(), Series: []models.SeriesState{}},
	}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := a.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := models.DecodeArtifact(b)
			if err != nil {
				t.Fatalf("DecodeArtifact: %v", err)
			}
			if diff := cmp.Diff(a, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			again, _ := got.Encode()
			if !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs")
			}
		})
	}
}

func TestArtifactRestoresDetectors(t *testing.T) {
	a := sampleArtifact(t)
	e, err := a.Ensemble(a.Series[0].Key)
	if err != nil {
		t.Fatalf("Ensemble: %v", err)
	}
	if got, _ := e.MarshalBinary(); !bytes.Equal(got, a.Series[0].State) {
		t.Errorf("restored ensemble state differs")
	}
	d, err := a.DeviceDetector()
	if err != nil {
		t.Fatalf("DeviceDetector: %v", err)
	}
	if got, _ := d.MarshalBinary(); !bytes.Equal(got, a.Device.State) {
		t.Errorf("restored device state differs")
	}
	bad := a
	bad.Series = []models.SeriesState{{Key: a.Series[0].Key, State: []byte("garbage")}}
	if _, err := bad.Ensemble(a.Series[0].Key); !errors.Is(err, models.ErrCorrupt) {
		t.Errorf("Ensemble of garbage state: %v, want ErrCorrupt", err)
	}
}

func TestEncodeRejects(t *testing.T) {
	cases := map[string]models.Artifact{
		"unsorted series": {Scope: models.DeviceScope("d"), Config: detect.DefaultConfig(),
			Series: []models.SeriesState{{Key: "b x"}, {Key: "a x"}}},
		"repeated series": {Scope: models.DeviceScope("d"), Config: detect.DefaultConfig(),
			Series: []models.SeriesState{{Key: "a x"}, {Key: "a x"}}},
		"bad scope":    {Scope: models.Scope{Kind: "fleet", Target: "x"}, Config: detect.DefaultConfig()},
		"empty target": {Scope: models.DeviceScope(""), Config: detect.DefaultConfig()},
	}
	for name, a := range cases {
		if _, err := a.Encode(); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("%s: Encode: %v, want ErrInvalid", name, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := sampleArtifact(t).Encode()
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string][]byte{
		"empty":          nil,
		"bad magic":      mutate(func(b []byte) []byte { b[0] = 'X'; return b }),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(bytes.Clone(good), 0),
		"huge header":    mutate(func(b []byte) []byte { b[7] = 0x7f; return b }),
		"header only":    good[:12],
		"other format":   bytes.Replace(good, []byte(`"format":1`), []byte(`"format":2`), 1),
		"unknown field":  bytes.Replace(good, []byte(`"format":1`), []byte(`"formax":1`), 1),
		"bad scope":      bytes.Replace(good, []byte(`"scope":"device:d"`), []byte(`"scope":"fleet:dd"`), 1),
	}
	for name, b := range cases {
		if _, err := models.DecodeArtifact(b); !errors.Is(err, models.ErrCorrupt) {
			t.Errorf("%s: DecodeArtifact: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestParseName(t *testing.T) {
	cases := []struct {
		name    string
		want    models.Scope
		wantErr bool
	}{
		{"series:m,device=a v", models.SeriesScope("m,device=a v"), false},
		{"device:pump:1", models.DeviceScope("pump:1"), false},
		{"device:", models.Scope{}, true},
		{"fleet:x", models.Scope{}, true},
		{"nocolon", models.Scope{}, true},
	}
	for _, c := range cases {
		got, err := models.ParseName(c.name)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("ParseName(%q) = %v, %v; want %v, error %v", c.name, got, err, c.want, c.wantErr)
		}
		if err == nil && got.Name() != c.name {
			t.Errorf("ParseName(%q).Name() = %q", c.name, got.Name())
		}
	}
}

func FuzzDecodeArtifact(f *testing.F) {
	good, err := sampleArtifact(f).Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:20])
	f.Add([]byte("VGMA\x02\x00\x00\x00{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := models.DecodeArtifact(b)
		if err != nil {
			if !errors.Is(err, models.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// What decodes re-encodes and decodes to the same artifact.
		again, err := a.Encode()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		b2, err := models.DecodeArtifact(again)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if again2, err := b2.Encode(); err != nil || !bytes.Equal(again, again2) {
			t.Fatalf("re-decoded artifact encodes differently (%v)", err)
		}
	})
}
