package zkcompat

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// Helpers around github.com/go-zookeeper/zk shared by the suites.

const waitTimeout = 15 * time.Second

type quietLogger struct{}

func (quietLogger) Printf(string, ...interface{}) {}

// eventLog records every event a connection delivers, in order, through
// zk.WithEventCallback. Unlike the event channel it never drops events.
type eventLog struct {
	mu  sync.Mutex
	evs []zk.Event
	sig chan struct{}
}

func newEventLog() *eventLog { return &eventLog{sig: make(chan struct{}, 1)} }

func (l *eventLog) add(e zk.Event) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
	select {
	case l.sig <- struct{}{}:
	default:
	}
}

func (l *eventLog) all() []zk.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]zk.Event(nil), l.evs...)
}

// nodeEvents returns the watch notifications for path seen so far.
func (l *eventLog) nodeEvents(path string) []zk.Event {
	var out []zk.Event
	for _, e := range l.all() {
		if e.Type != zk.EventSession && e.Type != zk.EventNotWatching && e.Path == path {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits until pred holds for the log or the timeout passes.
func (l *eventLog) waitFor(timeout time.Duration, pred func([]zk.Event) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if pred(l.all()) {
			return true
		}
		select {
		case <-l.sig:
		case <-deadline.C:
			return pred(l.all())
		}
	}
}

func (l *eventLog) waitState(timeout time.Duration, s zk.State) bool {
	return l.waitFor(timeout, func(evs []zk.Event) bool {
		for _, e := range evs {
			if e.Type == zk.EventSession && e.State == s {
				return true
			}
		}
		return false
	})
}

// connect opens a session and waits until it is established. The
// connection is closed at cleanup.
func connect(tb testing.TB, addr string, sessionTimeout time.Duration) (*zk.Conn, *eventLog) {
	tb.Helper()
	log := newEventLog()
	c, _, err := zk.Connect([]string{addr}, sessionTimeout,
		zk.WithLogger(quietLogger{}), zk.WithLogInfo(false), zk.WithEventCallback(log.add))
	if err != nil {
		tb.Fatalf("connect %s: %v", addr, err)
	}
	tb.Cleanup(c.Close)
	if !log.waitState(waitTimeout, zk.StateHasSession) {
		tb.Fatalf("no session with %s within %v (events %v)", addr, waitTimeout, log.all())
	}
	return c, log
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func wantErr(tb testing.TB, what string, got, want error) {
	tb.Helper()
	if !errors.Is(got, want) {
		tb.Errorf("%s: error %v, want %v", what, got, want)
	}
}

func mustCreate(tb testing.TB, c *zk.Conn, path string, data []byte, flags int32) string {
	tb.Helper()
	p, err := c.Create(path, data, flags, zk.WorldACL(zk.PermAll))
	if err != nil {
		tb.Fatalf("create %s: %v", path, err)
	}
	return p
}

func mustStat(tb testing.TB, c *zk.Conn, path string) *zk.Stat {
	tb.Helper()
	ok, st, err := c.Exists(path)
	if err != nil || !ok {
		tb.Fatalf("exists %s: %v %v", path, ok, err)
	}
	return st
}

// waitWatch waits for a one-shot watch to fire with the wanted type.
func waitWatch(tb testing.TB, ch <-chan zk.Event, want zk.EventType, path string) {
	tb.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			tb.Fatalf("watch on %s: channel closed without event", path)
		}
		if e.Type != want || e.Path != path || e.Err != nil {
			tb.Fatalf("watch on %s: got %v path=%q err=%v, want %v", path, e.Type, e.Path, e.Err, want)
		}
	case <-time.After(waitTimeout):
		tb.Fatalf("watch on %s: no %v within %v", path, want, waitTimeout)
	}
}

func fmtStat(s *zk.Stat) string {
	if s == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{czxid:%#x mzxid:%#x pzxid:%#x ver:%d cver:%d aver:%d owner:%#x len:%d kids:%d}",
		s.Czxid, s.Mzxid, s.Pzxid, s.Version, s.Cversion, s.Aversion, s.EphemeralOwner, s.DataLength, s.NumChildren)
}
