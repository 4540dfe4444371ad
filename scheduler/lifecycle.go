package scheduler

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// lifecycle owns the scheduler's background work: Run's loops, the
// goroutines they (and the API) start, and the state machine's timers. Run
// returns only once all of it has ended, so that the store can be closed
// after it without a write racing the close.
type lifecycle struct {
	// ctx is cancelled when the scheduler stops: work not started from
	// Run's own context (timer callbacks, coordinator calls) uses it.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	stopping bool
	wg       sync.WaitGroup
	timers   map[*time.Timer]struct{}
}

func newLifecycle() *lifecycle {
	ctx, cancel := context.WithCancel(context.Background())
	return &lifecycle{ctx: ctx, cancel: cancel, timers: map[*time.Timer]struct{}{}}
}

// enter registers work about to run; it reports false once the scheduler
// is stopping, when the work must not run. Each true needs an exit.
func (l *lifecycle) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		return false
	}
	l.wg.Add(1)
	return true
}

func (l *lifecycle) exit() { l.wg.Done() }

// goFunc runs f on its own goroutine unless the scheduler is stopping.
func (l *lifecycle) goFunc(f func()) {
	if !l.enter() {
		return
	}
	go func() {
		defer l.exit()
		f()
	}()
}

// afterFunc is time.AfterFunc for work that must not run once the
// scheduler has stopped: stop cancels the timer, and a callback that fires
// as it stops does nothing.
func (l *lifecycle) afterFunc(d time.Duration, f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		l.mu.Lock()
		delete(l.timers, t)
		ok := !l.stopping
		if ok {
			l.wg.Add(1)
		}
		l.mu.Unlock()
		if !ok {
			return
		}
		defer l.wg.Done()
		f()
	})
	l.timers[t] = struct{}{}
}

// stop stops the timers, refuses new work, cancels ctx and waits for the
// work in flight. Calling it again only waits.
func (l *lifecycle) stop() {
	l.mu.Lock()
	l.stopping = true
	for t := range l.timers {
		t.Stop()
	}
	clear(l.timers)
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

// track counts h's requests as work in flight, so that stop waits for
// them; once the scheduler is stopping, requests get 503 (a client retries
// them, on the next leader).
func (l *lifecycle) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.enter() {
			http.Error(w, "The scheduler is stopping.", http.StatusServiceUnavailable)
			return
		}
		defer l.exit()
		h.ServeHTTP(w, r)
	})
}
