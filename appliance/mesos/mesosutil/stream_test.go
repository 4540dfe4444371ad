package mesosutil_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
)

// TestFrameStream: each frame reaches the client as a RecordIO record as
// soon as it is written (the handler waits for the client to read it
// before writing the next).
func TestFrameStream(t *testing.T) {
	frames := [][]byte{[]byte(`{"type":"SUBSCRIBED"}`), bytes.Repeat([]byte("x"), 70000), []byte(`{"type":"HEARTBEAT"}`)}
	read := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mesosutil.NewFrameStream(w, time.Minute)
		for _, f := range frames {
			if err := s.WriteFrame(f); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-read:
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer srv.Close()
	client := &http.Client{Timeout: 30 * time.Second} // bounds a hang
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := recordio.NewReader(resp.Body)
	for i, want := range frames {
		got, err := rd.ReadFrame()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes, %v; want %d bytes", i, len(got), err, len(want))
		}
		read <- struct{}{}
	}
	if _, err := rd.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: %v", err)
	}
}

// TestStreamEvents: queued events are written in order, a heartbeat comes
// when the interval passes, and once the subscription ends what was still
// queued is written before the stream ends, in both codecs.
func TestStreamEvents(t *testing.T) {
	for _, media := range []string{mesosutil.MediaJSON, mesosutil.MediaProtobuf} {
		t.Run(media, func(t *testing.T) {
			queue := make(chan *executor.Event, 10)
			done := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				err := mesosutil.StreamEvents(r.Context(), mesosutil.NewFrameStream(w, time.Minute), media, mesosutil.Events[*executor.Event]{
					Queue: queue, Done: done,
					Heartbeat: &executor.Event{Type: executor.Event_HEARTBEAT}, HeartbeatEvery: 20 * time.Millisecond,
				})
				if err != nil {
					t.Errorf("StreamEvents: %v", err)
				}
			}))
			defer srv.Close()
			queue <- &executor.Event{Type: executor.Event_SUBSCRIBED}
			client := &http.Client{Timeout: 30 * time.Second}
			resp, err := client.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			rd := recordio.NewReader(resp.Body)
			next := func() executor.Event_Type {
				t.Helper()
				b, err := rd.ReadFrame()
				if err != nil {
					t.Fatalf("reading a frame: %v", err)
				}
				var ev executor.Event
				if err := mesosutil.Decode(media, b, &ev); err != nil {
					t.Fatalf("decoding %q: %v", b, err)
				}
				return ev.GetType()
			}
			if got := next(); got != executor.Event_SUBSCRIBED {
				t.Fatalf("first event %v", got)
			}
			for next() != executor.Event_HEARTBEAT {
			}
			// Queued, then the subscription ends: both still arrive.
			queue <- &executor.Event{Type: executor.Event_LAUNCH}
			queue <- &executor.Event{Type: executor.Event_SHUTDOWN}
			close(done)
			var rest []executor.Event_Type
			for {
				b, err := rd.ReadFrame()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				var ev executor.Event
				mesosutil.Decode(media, b, &ev)
				if ev.GetType() != executor.Event_HEARTBEAT {
					rest = append(rest, ev.GetType())
				}
			}
			if len(rest) != 2 || rest[0] != executor.Event_LAUNCH || rest[1] != executor.Event_SHUTDOWN {
				t.Fatalf("after the end: %v, want LAUNCH, SHUTDOWN", rest)
			}
		})
	}
}

// fakeResponse is a mesos.Response over a channel of events; Close ends a
// Decode in progress, as closing an HTTP body does.
type fakeResponse struct {
	events chan executor.Event
	closed chan struct{}
}

func (f *fakeResponse) Decode(u encoding.Unmarshaler) error {
	select {
	case ev, ok := <-f.events:
		if !ok {
			return io.EOF
		}
		b, _ := ev.Marshal()
		return u.Unmarshal(b)
	case <-f.closed:
		return errors.New("response closed")
	}
}

func (f *fakeResponse) Close() error { close(f.closed); return nil }

// DecodeEvents hands the events over in order and the error that ended
// the stream; Close ends it while its goroutine is blocked, and returns
// only once that goroutine is gone.
func TestDecodeEvents(t *testing.T) {
	resp := &fakeResponse{events: make(chan executor.Event, 3), closed: make(chan struct{})}
	resp.events <- executor.Event{Type: executor.Event_SUBSCRIBED}
	resp.events <- executor.Event{Type: executor.Event_LAUNCH}
	close(resp.events)
	s := mesosutil.DecodeEvents[executor.Event](resp)
	for _, want := range []executor.Event_Type{executor.Event_SUBSCRIBED, executor.Event_LAUNCH} {
		if ev := <-s.Events; ev.GetType() != want {
			t.Fatalf("event %v, want %v", ev.GetType(), want)
		}
	}
	if err := <-s.Err; err != io.EOF {
		t.Fatalf("end of stream: %v, want EOF", err)
	}
	s.Close()

	// A stream nobody reads: its goroutine waits to hand over an event,
	// and Close still ends it.
	resp = &fakeResponse{events: make(chan executor.Event, 1), closed: make(chan struct{})}
	resp.events <- executor.Event{Type: executor.Event_HEARTBEAT}
	s = mesosutil.DecodeEvents[executor.Event](resp)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the decoding goroutine")
	}
}
