package mesosutil_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
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
