package master

import (
	"testing"

	mastercall "github.com/mesos/mesos-go/api/v1/lib/master"
)

// TestSlowOperatorSubscriberDropped: a SUBSCRIBE stream that lets its
// queue fill up is dropped (its stream ends) on the next event, without the
// master waiting for it; a subscriber that keeps up is not affected.
func TestSlowOperatorSubscriberDropped(t *testing.T) {
	m := New(Config{})
	m.mu.Lock()
	defer m.mu.Unlock()
	slow := m.subscribeOperatorLocked() // never read: SUBSCRIBED is queued
	fast := m.subscribeOperatorLocked()
	<-fast.events
	event := func() *mastercall.Event { return &mastercall.Event{Type: mastercall.Event_HEARTBEAT} }
	for i := 1; i < opSubscriberQueue; i++ {
		m.publishLocked(event)
		<-fast.events
	}
	select {
	case <-slow.done:
		t.Fatal("dropped with room left in its queue")
	default:
	}
	m.publishLocked(event) // one more than the queue holds
	select {
	case <-slow.done:
	default:
		t.Fatal("a full subscriber was not dropped")
	}
	if _, ok := m.opSubs[slow]; ok {
		t.Fatal("the dropped subscriber is still published to")
	}
	if _, ok := m.opSubs[fast]; !ok || len(fast.events) != 1 {
		t.Fatalf("the subscriber that keeps up lost its stream or its event (%d queued)", len(fast.events))
	}
}
