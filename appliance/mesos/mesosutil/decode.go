package mesosutil

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
)

// EventStream is a subscription's response (a v1 scheduler or executor
// SUBSCRIBE) decoded on a goroutine of its own, so that its client can
// select on the events beside its timers.
type EventStream[E any] struct {
	// Events are the decoded events, in order.
	Events <-chan *E
	// Err gets the error that ended the stream (io.EOF at its end).
	Err <-chan error

	resp mesos.Response
	stop chan struct{}
	done chan struct{}
}

// DecodeEvents starts decoding resp's events of type E (*E must be a
// mesos-go message: scheduler.Event, executor.Event).
func DecodeEvents[E any, P interface {
	*E
	encoding.Unmarshaler
}](resp mesos.Response) *EventStream[E] {
	events := make(chan *E)
	errc := make(chan error, 1)
	s := &EventStream[E]{Events: events, Err: errc, resp: resp, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			ev := new(E)
			if err := resp.Decode(P(ev)); err != nil {
				errc <- err
				return
			}
			select {
			case events <- ev:
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

// Close ends the stream: it closes the response, which ends a Decode in
// progress, and waits for the decoding goroutine, so that nothing of the
// subscription outlives it.
func (s *EventStream[E]) Close() {
	close(s.stop)
	s.resp.Close()
	<-s.done
}
