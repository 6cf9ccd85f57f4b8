package appdbtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
)

// RunBenchmarks benchmarks the backend that newHarness makes: anomaly
// Create (alone, and with its outbox message in one transaction) and Find of
// one page of 100.
func RunBenchmarks(b *testing.B, newHarness HarnessMaker) {
	open := func(b *testing.B) appdb.Store {
		b.Helper()
		ctx := context.Background()
		h, err := newHarness(ctx, b)
		if err != nil {
			b.Fatalf("make harness: %v", err)
		}
		s, err := h.Open(ctx, time.Now)
		if err != nil {
			b.Fatalf("open: %v", err)
		}
		b.Cleanup(func() {
			if err := s.Close(); err != nil {
				b.Errorf("close: %v", err)
			}
			if err := h.Close(); err != nil {
				b.Errorf("close harness: %v", err)
			}
		})
		return s
	}

	b.Run("op=anomaly_create", func(b *testing.B) {
		s := open(b)
		ctx := b.Context()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			a := sampleAnomaly(i)
			a.ID = fmt.Sprintf("bench-%09d", i)
			if _, err := s.Anomalies().Create(ctx, a); err != nil {
				b.Fatalf("create: %v", err)
			}
			i++
		}
	})

	b.Run("op=anomaly_create_with_outbox_tx", func(b *testing.B) {
		s := open(b)
		ctx := b.Context()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			n := i
			if err := s.InTx(ctx, func(tx appdb.Tx) error { return eventInTx(ctx, tx, n) }); err != nil {
				b.Fatalf("tx: %v", err)
			}
			i++
		}
	})

	for _, filtered := range []bool{false, true} {
		b.Run(fmt.Sprintf("op=anomaly_find/limit=100/by_device=%v", filtered), func(b *testing.B) {
			s := open(b)
			ctx := b.Context()
			const rows = 5000
			err := s.InTx(ctx, func(tx appdb.Tx) error {
				for i := range rows {
					a := sampleAnomaly(i)
					if _, err := tx.Anomalies().Create(ctx, a); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatalf("fill: %v", err)
			}
			f := appdb.AnomalyFilter{Page: appdb.Page{Limit: 100}}
			if filtered {
				f.Device = "dev-003" // one in 7
			}
			b.ReportAllocs()
			for b.Loop() {
				items, next, err := s.Anomalies().Find(ctx, f)
				if err != nil {
					b.Fatalf("find: %v", err)
				}
				if len(items) == 0 {
					b.Fatalf("find: empty page")
				}
				f.Cursor = next // walk the pages, starting over at the end
			}
		})
	}
}
