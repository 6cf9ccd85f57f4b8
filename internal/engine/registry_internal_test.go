package engine

import (
	"testing"
	"time"
)

func TestMaterially(t *testing.T) {
	tests := []struct {
		old, now time.Duration
		want     bool
	}{
		{0, time.Second, true},
		{time.Second, 0, false},
		{time.Second, time.Second, false},
		{time.Second, 1100 * time.Millisecond, false},
		{time.Second, 1101 * time.Millisecond, true},
		{time.Second, 899 * time.Millisecond, true},
		{time.Second, 5 * time.Second, true},
	}
	for _, tc := range tests {
		if got := materially(tc.old, tc.now); got != tc.want {
			t.Errorf("materially(%v, %v) = %v, want %v", tc.old, tc.now, got, tc.want)
		}
	}
}

func TestSeenMerge(t *testing.T) {
	s := seen{}
	s.add(20)
	s.add(10)
	s.add(30)
	if s.first != 10 || s.last != 30 {
		t.Fatalf("after add(20, 10, 30): [%d, %d], want [10, 30]", s.first, s.last)
	}
	s.merge(seen{first: 5, last: 25, interval: time.Second, ok: true})
	if s.first != 5 || s.last != 30 || s.interval != time.Second {
		t.Errorf("after merging [5, 25] 1s: [%d, %d] %v, want [5, 30] 1s", s.first, s.last, s.interval)
	}
	var empty seen
	empty.merge(seen{first: 1, last: 2, ok: true})
	if !empty.ok || empty.first != 1 || empty.last != 2 {
		t.Errorf("empty merged with [1, 2]: %+v, want [1, 2]", empty)
	}
}
