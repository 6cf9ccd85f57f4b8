package auth

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// MemoryStore is a TokenStore held in memory, for bootstrap tokens given in
// configuration and for tests. It is safe for concurrent use.
type MemoryStore struct {
	mu     sync.RWMutex
	byHash map[string]Token
}

var _ TokenStore = (*MemoryStore)(nil)

// NewMemoryStore returns a store holding tokens.
func NewMemoryStore(tokens ...Token) *MemoryStore {
	m := &MemoryStore{byHash: make(map[string]Token, len(tokens))}
	for _, t := range tokens {
		m.Put(t)
	}
	return m
}

// Put adds or replaces the token with t.Hash.
func (m *MemoryStore) Put(t Token) {
	t.Hash = slices.Clone(t.Hash)
	m.mu.Lock()
	m.byHash[string(t.Hash)] = t
	m.mu.Unlock()
}

// TokenByHash implements TokenStore.
func (m *MemoryStore) TokenByHash(_ context.Context, hash []byte) (Token, error) {
	m.mu.RLock()
	t, ok := m.byHash[string(hash)]
	m.mu.RUnlock()
	if !ok {
		return Token{}, fmt.Errorf("token by hash: %w", ErrUnknownToken)
	}
	return t, nil
}
