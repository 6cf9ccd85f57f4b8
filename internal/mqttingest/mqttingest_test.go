package mqttingest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
	"github.com/vigil-iot/vigil/internal/auth"
	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/mqttingest"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/testutil/tcpproxy"
	"github.com/vigil-iot/vigil/internal/timeseries"
	"github.com/vigil-iot/vigil/internal/timeseries/embedts"
)

// env is a real write path: embedded TSDB, ingest pipeline, SQLite tokens.
type env struct {
	ts       *embedts.Store
	in       *ingest.Ingester
	db       *sqlitedb.Store
	verifier *auth.Verifier
	dec      *mqttingest.Decoder
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	ts, err := embedts.Open(dir+"/tsdb", embedts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	db, err := sqlitedb.Open(t.Context(), dir+"/vigil.db", sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &env{
		ts:       ts,
		in:       ingest.New(ts, ingest.Options{}),
		db:       db,
		verifier: auth.NewVerifier(auth.AppDBTokens{Repo: db.Tokens()}, time.Now),
		dec:      mqttingest.NewDecoder(telemetry.Millisecond, telemetry.DefaultLimits(), time.Now),
	}
}

func (e *env) token(t *testing.T, role appdb.Role, prefix string) string {
	t.Helper()
	secret, hash, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Tokens().Create(t.Context(), appdb.APIToken{Name: "t", Role: role, DevicePrefix: prefix, SecretHash: hash}); err != nil {
		t.Fatal(err)
	}
	return secret
}

// values returns every stored sample of measurement m, by series key.
func (e *env) values(t *testing.T, m string) map[string][]timeseries.Sample {
	t.Helper()
	res, err := e.ts.QueryRange(t.Context(), timeseries.Selector{Measurement: m}, timeseries.Range{Start: 0, End: time.Now().Add(time.Hour).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]timeseries.Sample{}
	for _, s := range res {
		got[s.Series.Key()] = s.Samples
	}
	return got
}

// waitValues polls until measurement m has n samples in all, or fails.
func (e *env) waitValues(t *testing.T, m string, n int) map[string][]timeseries.Sample {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := e.values(t, m)
		c := 0
		for _, s := range got {
			c += len(s)
		}
		if c >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func TestTemplate(t *testing.T) {
	tmpl, err := mqttingest.ParseTemplate("site/+/{device}/telemetry")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tmpl.Filter(), "site/+/+/telemetry"; got != want {
		t.Errorf("Filter() = %q, want %q", got, want)
	}
	tests := []struct {
		topic, device string
		ok            bool
	}{
		{"site/north/pump-1/telemetry", "pump-1", true},
		{"site/north/pump-1/status", "", false},
		{"site/north//telemetry", "", false},
		{"site/north/pump-1/telemetry/x", "", false},
	}
	for _, tt := range tests {
		d, ok := tmpl.Device(tt.topic)
		if d != tt.device || ok != tt.ok {
			t.Errorf("Device(%q) = %q, %v; want %q, %v", tt.topic, d, ok, tt.device, tt.ok)
		}
	}
	for _, bad := range []string{"vigil/telemetry", "vigil/{device}/{device}", "vigil/#/{device}", "a/{dev}/x"} {
		if _, err := mqttingest.ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q): got nil error", bad)
		}
	}
}

func TestDecoderBindsPointsToTopicDevice(t *testing.T) {
	dec := mqttingest.NewDecoder(telemetry.Millisecond, telemetry.DefaultLimits(), func() time.Time { return time.UnixMilli(5000) })
	tests := []struct {
		name     string
		payload  string
		want     []string // series keys
		rejected int
		wantErr  string
	}{
		{"line protocol without device", "env temp=1,hum=2 1000", []string{"env,device=d1 temp", "env,device=d1 hum"}, 0, ""},
		{"line protocol with own device", "env,device=d1,site=s temp=1", []string{"env,device=d1,site=s temp"}, 0, ""},
		{"other device refused", "env,device=d2 temp=1\nenv temp=2", []string{"env,device=d1 temp"}, 1, `names device "d2"`},
		{"json", `{"measurement":"env","fields":{"temp":3}}`, []string{"env,device=d1 temp"}, 0, ""},
		{"json array", `[{"measurement":"env","tags":{"device":"d1"},"fields":{"a":1}},{"measurement":"env","fields":{"b":2}}]`, []string{"env,device=d1 a", "env,device=d1 b"}, 0, ""},
		{"bad line", "env temp=", nil, 0, "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pts, res, err := dec.Decode("d1", []byte(tt.payload))
			var keys []string
			for _, p := range pts {
				keys = append(keys, p.Series.Key())
			}
			if diff := cmp.Diff(tt.want, keys); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
			if res.RejectedPoints != tt.rejected {
				t.Errorf("RejectedPoints = %d, want %d", res.RejectedPoints, tt.rejected)
			}
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func connect(t *testing.T, broker, clientID, user, pass string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect %s: timeout", broker)
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func publish(t *testing.T, c paho.Client, topic, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// TestEmbeddedBroker connects devices straight to Vigil's embedded broker:
// a PUBACK means the points are stored; credentials and topics are checked
// per device.
func TestEmbeddedBroker(t *testing.T) {
	e := newEnv(t)
	br, err := mqttingest.NewBroker(e.in, mqttingest.BrokerOptions{Decoder: e.dec, Verifier: e.verifier})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	url := "tcp://" + ln.Addr().String()
	pumpToken := e.token(t, appdb.RoleWrite, "pump-")

	t.Run("refused credentials", func(t *testing.T) {
		for _, c := range []struct{ name, user, pass string }{
			{"wrong token", "pump-1", "vgl_wrong"},
			// MQTT 3.1.1 sends no password without a username.
			{"no username", "", pumpToken},
			{"device outside prefix", "fan-1", pumpToken},
		} {
			if _, err := connect(t, url, unique("c"), c.user, c.pass); err == nil {
				t.Errorf("%s: connect succeeded, want refusal", c.name)
			}
		}
	})

	c, err := connect(t, url, "pump-1-client", "pump-1", pumpToken)
	if err != nil {
		t.Fatalf("connect as pump-1: %v", err)
	}
	t0 := time.Now().Add(-time.Minute).UnixMilli()
	for i := range 20 {
		publish(t, c, "vigil/pump-1/telemetry", fmt.Sprintf("flow,line=a rate=%d.25 %d", i, t0+int64(i)*1000))
	}
	// The PUBACKs came back: everything acknowledged is already stored.
	got := e.values(t, "flow")
	var want []timeseries.Sample
	for i := range 20 {
		want = append(want, timeseries.Sample{Time: t0 + int64(i)*1000, Value: float64(i) + 0.25})
	}
	if diff := cmp.Diff(map[string][]timeseries.Sample{"flow,device=pump-1,line=a rate": want}, got); diff != "" {
		t.Errorf("stored after PUBACK (-want +got):\n%s", diff)
	}

	// Publishing on another device's topic is refused by the ACL: the
	// broker drops the message and the connection.
	tok := c.Publish("vigil/pump-2/telemetry", 1, false, fmt.Sprintf("flow rate=99 %d", t0))
	if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		t.Errorf("publish on another device's topic: acknowledged, want refusal")
	}
	if got := e.values(t, "flow"); len(got) != 1 {
		t.Errorf("after a foreign publish: %d series stored, want only pump-1's", len(got))
	}
}

// TestSubscriberMosquitto follows a topic on the real Mosquitto broker,
// loses the connection, and gets every QoS 1 message published meanwhile
// after it reconnects (persistent session, resubscribe on connect).
func TestSubscriberMosquitto(t *testing.T) {
	broker := os.Getenv("VIGIL_TEST_MQTT")
	if broker == "" {
		t.Skip("VIGIL_TEST_MQTT not set (e.g. tcp://127.0.0.1:1883); skipping the test against a real MQTT broker")
	}
	e := newEnv(t)
	root := unique("vigiltest-")
	tmpl, err := mqttingest.ParseTemplate(root + "/{device}/telemetry")
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(broker, "tcp://")
	px := tcpproxy.New(t, host)
	sub, err := mqttingest.NewSubscriber(e.in, mqttingest.SubscriberOptions{
		BrokerURL: "tcp://" + px.Addr(), Topic: tmpl, ClientID: unique("vigil-sub-"), Decoder: e.dec,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	dev, err := connect(t, broker, unique("dev-"), "", "")
	if err != nil {
		t.Fatalf("connect to %s: %v (is Mosquitto running? see README)", broker, err)
	}
	t0 := time.Now().Add(-time.Minute).UnixMilli()
	line := func(i int) string { return fmt.Sprintf("vib,axis=x g=%d.5 %d", i, t0+int64(i)*100) }
	// The subscription is asynchronous: publish until the first arrives.
	deadline := time.Now().Add(15 * time.Second)
	for len(e.values(t, "vib")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("subscriber received nothing within 15s")
		}
		publish(t, dev, root+"/m-1/telemetry", line(0))
		time.Sleep(100 * time.Millisecond)
	}
	for i := 1; i < 50; i++ {
		publish(t, dev, root+"/m-1/telemetry", line(i))
	}
	e.waitValues(t, "vib", 50)

	px.Cut() // the broker goes away for Vigil
	for i := 50; i < 100; i++ {
		publish(t, dev, root+"/m-1/telemetry", line(i))
	}
	px.Restore()
	got := e.waitValues(t, "vib", 100)
	var want []timeseries.Sample
	for i := range 100 {
		want = append(want, timeseries.Sample{Time: t0 + int64(i)*100, Value: float64(i) + 0.5})
	}
	if diff := cmp.Diff(map[string][]timeseries.Sample{"vib,axis=x,device=m-1 g": want}, got); diff != "" {
		t.Errorf("stored after reconnect (-want +got):\n%s", diff)
	}
}
