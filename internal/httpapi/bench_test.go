package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/auth"
	"github.com/vigil-iot/vigil/internal/httpapi"
	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/timeseries/embedts"
)

// BenchmarkHTTPIngest measures end-to-end ingest of line protocol through
// the HTTP handler (auth, body read, parse, limits, cardinality) into the
// real embedded store: batches of 5,000 lines × 10 fields (50,000 points),
// 100 devices, every batch at new timestamps. It reports points/s (wall
// clock) and points/cpu-s (process CPU time during the requests).
//
//	go test ./internal/httpapi -run '^$' -bench HTTPIngest -benchtime 50x -count 6
func BenchmarkHTTPIngest(b *testing.B) {
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("lines=5000/fields=10/gzip=%v", gz), func(b *testing.B) {
			benchIngest(b, gz)
		})
	}
}

func benchIngest(b *testing.B, gz bool) {
	const lines, fields, devices = 5000, 10, 100
	clockNow := now
	store, err := embedts.Open(b.TempDir(), embedts.Options{Now: func() time.Time { return clockNow }})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	secret, hash, err := auth.Generate()
	if err != nil {
		b.Fatal(err)
	}
	api := httpapi.New(httpapi.Deps{
		Series:   store,
		Ingester: ingest.New(store, ingest.Options{Now: func() time.Time { return clockNow }}),
		Verifier: auth.NewVerifier(auth.NewMemoryStore(auth.Token{ID: "w", Role: auth.RoleWrite, Hash: hash}), time.Now),
	})
	// Timestamps start 23h back and advance 1 ms per line of a device, so
	// every batch writes new samples inside the store's window.
	base := now.Add(-23 * time.Hour).UnixMilli()
	perDevice := lines / devices
	body := func(batch int) []byte {
		var buf bytes.Buffer
		buf.Grow(lines * 160)
		for i := range lines {
			dev, k := i%devices, i/devices
			ts := base + int64(batch*perDevice+k)
			fmt.Fprintf(&buf, "sensors,device=dev-%03d,site=s%d", dev, dev%7)
			for f := range fields {
				if f == 0 {
					buf.WriteByte(' ')
				} else {
					buf.WriteByte(',')
				}
				fmt.Fprintf(&buf, "f%d=%s", f, strconv.FormatFloat(float64(batch+k*f)/8, 'g', -1, 64))
			}
			fmt.Fprintf(&buf, " %d\n", ts)
		}
		if !gz {
			return buf.Bytes()
		}
		return gzipBytes(b, buf.Bytes())
	}
	b.ReportAllocs()
	batch := 0
	var bytesIn int64
	var cpu time.Duration // process CPU time (user+system) spent in ServeHTTP
	for b.Loop() {
		b.StopTimer()
		data := body(batch)
		req := httptest.NewRequest(http.MethodPost, "/api/v2/write?precision=ms&bucket=b&org=o", bytes.NewReader(data))
		req.Header.Set("Authorization", "Token "+secret)
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		bytesIn += int64(len(data))
		cpu0 := cpuTime(b)
		b.StartTimer()
		api.ServeHTTP(rec, req)
		b.StopTimer()
		cpu += cpuTime(b) - cpu0
		b.StartTimer()
		if rec.Code != http.StatusNoContent {
			b.Fatalf("batch %d: got %d %s", batch, rec.Code, rec.Body)
		}
		batch++
	}
	points := float64(batch * lines * fields)
	b.ReportMetric(points/b.Elapsed().Seconds(), "points/s")
	// Throughput per CPU-second: less sensitive than points/s to other
	// processes competing for the machine.
	b.ReportMetric(points/cpu.Seconds(), "points/cpu-s")
	b.SetBytes(bytesIn / int64(max(batch, 1)))
}

// cpuTime returns the CPU time (user+system) used by the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func gzipBytes(b *testing.B, data []byte) []byte {
	b.Helper()
	return gz(b, string(data)).Bytes()
}
