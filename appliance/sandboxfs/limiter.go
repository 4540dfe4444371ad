package sandboxfs

import (
	"fmt"
	"net"
	"net/http"
	"sync"
)

// Default bounds of a Limiter. A browser opens at most six connections to a
// host, the observer's live viewers poll one file each, and the TUI and CLI
// use one or two, so sixteen requests in flight is more than an honest
// client has; 128 in all keeps a crowd of clients (or one client using many
// loopback addresses) from pinning more than that many threads and
// descriptors of the server.
const (
	DefaultPerClient = 16
	DefaultTotal     = 128
)

// Limiter bounds the requests in flight per client address and in total.
// A request over a bound is answered at once, never queued: 429 Too Many
// Requests over the client's bound, 503 Service Unavailable over the total,
// both with Retry-After. The zero value is not usable; use NewLimiter.
type Limiter struct {
	perClient, total int

	mu       sync.Mutex
	inFlight map[string]int
	all      int
}

// NewLimiter returns a Limiter allowing perClient requests per client
// address and total requests at once (values < 1 take the defaults).
func NewLimiter(perClient, total int) *Limiter {
	if perClient < 1 {
		perClient = DefaultPerClient
	}
	if total < 1 {
		total = DefaultTotal
	}
	return &Limiter{perClient: perClient, total: total, inFlight: map[string]int{}}
}

// client is the address a request's bound is counted against: its remote
// IP (the port differs per connection).
func client(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// Acquire takes a slot for r's client. It returns a release function, or
// the HTTP status and message to answer when a bound is reached.
func (l *Limiter) Acquire(r *http.Request) (release func(), status int, msg string) {
	c := client(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight[c] >= l.perClient {
		return nil, http.StatusTooManyRequests, fmt.Sprintf("too many file requests in flight from %s (at most %d at once); retry when one has finished", c, l.perClient)
	}
	if l.all >= l.total {
		return nil, http.StatusServiceUnavailable, fmt.Sprintf("too many file requests in flight (at most %d at once); retry shortly", l.total)
	}
	l.inFlight[c]++
	l.all++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.inFlight[c]--; l.inFlight[c] == 0 {
				delete(l.inFlight, c)
			}
			l.all--
		})
	}, 0, ""
}

// Wrap bounds h: a request over a bound gets its 429 or 503 answer (text,
// with Retry-After: 1) and h does not run.
func (l *Limiter) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, status, msg := l.Acquire(r)
		if release == nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, msg, status)
			return
		}
		defer release()
		h.ServeHTTP(w, r)
	})
}
