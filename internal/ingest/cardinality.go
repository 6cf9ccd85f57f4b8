package ingest

import (
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/vigil-iot/vigil/internal/telemetry"
)

// cardinality counts distinct series in memory, by a 64-bit hash of their
// key, in total and per device, and refuses points that would create series
// beyond the limits. A hash collision makes two series count as one; at 64
// bits that is negligible below billions of series.
type cardinality struct {
	maxTotal, maxPerDevice int // <0: unlimited
	seedH                  maphash.Seed

	mu        sync.Mutex
	seen      map[uint64]struct{}
	perDevice map[string]int
}

func newCardinality(maxTotal, maxPerDevice int) *cardinality {
	return &cardinality{
		maxTotal: maxTotal, maxPerDevice: maxPerDevice,
		seedH:     maphash.MakeSeed(),
		seen:      make(map[uint64]struct{}),
		perDevice: make(map[string]int),
	}
}

func (c *cardinality) disabled() bool { return c.maxTotal < 0 && c.maxPerDevice < 0 }

func (c *cardinality) hash(h *maphash.Hash, s *telemetry.Series) uint64 {
	h.Reset()
	h.WriteString(s.Measurement)
	h.WriteByte(0)
	for _, t := range s.Tags {
		h.WriteString(t.Key)
		h.WriteByte(0)
		h.WriteString(t.Value)
		h.WriteByte(0)
	}
	h.WriteByte(1)
	h.WriteString(s.Field)
	return h.Sum64()
}

func (c *cardinality) seed(series []telemetry.Series) {
	var h maphash.Hash
	h.SetSeed(c.seedH)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range series {
		k := c.hash(&h, &series[i])
		if _, ok := c.seen[k]; ok {
			continue
		}
		c.seen[k] = struct{}{}
		c.perDevice[series[i].Device()]++
	}
}

func (c *cardinality) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// admit returns the points of pts that stay within the limits (filtered in
// place), how many were refused, and the error of the first refusal. New
// series of admitted points are counted.
func (c *cardinality) admit(pts []telemetry.Point) ([]telemetry.Point, int, error) {
	if c.disabled() || len(pts) == 0 {
		return pts, 0, nil
	}
	var h maphash.Hash
	h.SetSeed(c.seedH)
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := pts[:0]
	refused := 0
	var first error
	for i := range pts {
		p := &pts[i]
		k := c.hash(&h, &p.Series)
		if _, ok := c.seen[k]; ok {
			kept = append(kept, *p)
			continue
		}
		dev := p.Series.Device()
		var err error
		switch {
		case c.maxTotal >= 0 && len(c.seen) >= c.maxTotal:
			err = fmt.Errorf("new series %s refused: limit MaxSeries=%d reached: %w", p.Series.Key(), c.maxTotal, ErrSeriesLimit)
		case c.maxPerDevice >= 0 && c.perDevice[dev] >= c.maxPerDevice:
			err = fmt.Errorf("new series %s refused: device %q has %d series, limit MaxSeriesPerDevice=%d: %w",
				p.Series.Key(), dev, c.perDevice[dev], c.maxPerDevice, ErrSeriesLimit)
		}
		if err != nil {
			refused++
			if first == nil {
				first = err
			}
			continue
		}
		c.seen[k] = struct{}{}
		c.perDevice[dev]++
		kept = append(kept, *p)
	}
	return kept, refused, first
}
