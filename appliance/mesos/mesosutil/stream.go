package mesosutil

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/recordio"
)

// FrameStream writes RecordIO frames (Mesos' streaming format: a decimal
// length, a newline, the record) to an HTTP response and flushes each one,
// so that the client sees every record as it is written.
type FrameStream struct {
	w       *recordio.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

// NewFrameStream streams frames to w. A positive timeout bounds each write:
// a client that stops reading fails the write after that long instead of
// holding the writer forever.
func NewFrameStream(w http.ResponseWriter, timeout time.Duration) *FrameStream {
	return &FrameStream{w: recordio.NewWriter(w), rc: http.NewResponseController(w), timeout: timeout}
}

// WriteFrame writes one record and flushes it.
func (s *FrameStream) WriteFrame(b []byte) error {
	if s.timeout > 0 {
		// Not every ResponseWriter supports deadlines; without one the
		// write is simply unbounded.
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	}
	if err := s.w.WriteFrame(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// Events is a subscription's side of an event stream: the queue its
// producer fills and the channel the producer closes to end the stream.
type Events[E Message] struct {
	Queue <-chan E
	Done  <-chan struct{}
	// Heartbeat is sent every HeartbeatEvery while the stream is idle or
	// busy alike (Mesos' HEARTBEAT events).
	Heartbeat      E
	HeartbeatEvery time.Duration
}

// StreamEvents writes a subscription's events to s, encoded in media, one
// RecordIO frame each, with heartbeats, until the subscription ends (what
// was queued before it ended is still written, such as a failover ERROR),
// ctx ends (the client went away), or a write or an encoding fails. The
// response's headers must have been written.
func StreamEvents[E Message](ctx context.Context, s *FrameStream, media string, ev Events[E]) error {
	write := func(e E) error {
		b, err := Encode(media, e)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		return s.WriteFrame(b)
	}
	hb := time.NewTicker(ev.HeartbeatEvery)
	defer hb.Stop()
	for {
		select {
		case e := <-ev.Queue:
			if err := write(e); err != nil {
				return err
			}
		case <-hb.C:
			if err := write(ev.Heartbeat); err != nil {
				return err
			}
		case <-ev.Done:
			for {
				select {
				case e := <-ev.Queue:
					if err := write(e); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
