package mesosutil

import (
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
