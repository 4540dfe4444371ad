package mesostest

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
)

// Pump decodes a subscription's events (*E: scheduler.Event, the master's
// operator Event, ...) into events on a goroutine of its own until the
// stream ends; then it closes the response and events, so that a test
// reading events sees the end.
func Pump[E any, P interface {
	*E
	encoding.Unmarshaler
}](resp mesos.Response, events chan<- *E) {
	go func() {
		defer resp.Close()
		defer close(events)
		for {
			ev := new(E)
			if resp.Decode(P(ev)) != nil {
				return
			}
			events <- ev
		}
	}()
}
