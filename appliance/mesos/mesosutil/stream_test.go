package mesosutil_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
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
