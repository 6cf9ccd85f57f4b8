package resilience

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"strconv"

	"github.com/vigil-iot/vigil/internal/bus"
)

// ErrPanic is wrapped by the error Recover returns for a handler that
// panicked.
var ErrPanic = errors.New("handler panicked")

// PanicError is the error Recover returns for a panicking handler. It
// matches ErrPanic with errors.Is.
type PanicError struct {
	MessageID string
	Value     any    // the value passed to panic
	Stack     []byte // the stack of the panicking goroutine, for logs
}

// Error names the message and the panic value.
func (e *PanicError) Error() string {
	return fmt.Sprintf("message %q: %v: %v", e.MessageID, ErrPanic, e.Value)
}

// Is reports whether target is ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Recover returns middleware that turns a panic of the handler into a
// *PanicError, so that the bus redelivers and eventually dead-letters the
// message instead of crashing the process. Put it outermost.
func Recover() bus.Middleware {
	return func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, msg bus.Message) (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = &PanicError{MessageID: msg.ID, Value: r, Stack: debug.Stack()}
				}
			}()
			return next(ctx, msg)
		}
	}
}

// Retry returns middleware that runs the handler through p under name:
// errors p classifies retryable are retried in place, with backoff and
// jitter, before the bus sees them; while the breaker of name is open the
// handler is not called and the message fails with ErrCircuitOpen, so the bus
// redelivers it later. Use it for handlers whose failures are mostly a
// dependency being down (the time-series store, a webhook).
func Retry(p *Policy, name string) bus.Middleware {
	return func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, msg bus.Message) error {
			return p.Do(ctx, name, func(ctx context.Context) error { return next(ctx, msg) })
		}
	}
}

// Poison returns middleware that routes messages the handler fails on with
// an error isPoison accepts (typically: not retryable, such as a payload that
// does not decode) to poisonTopic, with bus.HeaderError and bus.HeaderAttempts
// set, and acknowledges them: redelivering them could never succeed. Other
// errors go to the bus unchanged. When publishing to poisonTopic fails, the
// message is not acknowledged and the error says both why it was poison and
// why it could not be routed.
func Poison(pub bus.Publisher, poisonTopic string, isPoison func(error) bool) bus.Middleware {
	return func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, msg bus.Message) error {
			err := next(ctx, msg)
			if err == nil || !isPoison(err) {
				return err
			}
			m := msg
			m.Headers = make(map[string]string, len(msg.Headers)+2)
			maps.Copy(m.Headers, msg.Headers)
			m.Headers[bus.HeaderError] = err.Error()
			m.Headers[bus.HeaderAttempts] = strconv.Itoa(msg.Attempt)
			if perr := pub.Publish(ctx, poisonTopic, m); perr != nil {
				return fmt.Errorf("message %q: route to poison topic %q: %w (handler error: %w)", msg.ID, poisonTopic, perr, err)
			}
			return nil
		}
	}
}
