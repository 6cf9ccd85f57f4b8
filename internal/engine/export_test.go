package engine

import "context"

// Evict runs the idle eviction of the checkpoint loop (tests only).
func (e *Engine) Evict(ctx context.Context) { e.evict(ctx) }
