package mesosutil

import (
	"encoding/json"
	"mime"
	"net/http"
)

// The media types of Mesos' v1 HTTP APIs.
const (
	MediaJSON     = "application/json"
	MediaProtobuf = "application/x-protobuf"
	MediaRecordIO = "application/recordio"
)

// Message is what both codecs need of a mesos-go type.
type Message interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// Encode renders m in the media type (MediaProtobuf, else JSON).
func Encode(media string, m Message) ([]byte, error) {
	if media == MediaProtobuf {
		return m.Marshal()
	}
	return json.Marshal(m)
}

// Decode parses b, in the media type (MediaProtobuf, else JSON), into m.
func Decode(media string, b []byte, m Message) error {
	if media == MediaProtobuf {
		return m.Unmarshal(b)
	}
	return json.Unmarshal(b, m)
}

// MediaTypes picks a v1 API request's encoding (its Content-Type) and its
// answer's (Accept, defaulting to the request's); "" means unsupported: in
// == "" is answered 415, out == "" 406.
func MediaTypes(r *http.Request) (in, out string) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (ct != MediaJSON && ct != MediaProtobuf) {
		return "", ""
	}
	out = ct
	if acc := r.Header.Get("Accept"); acc != "" && acc != "*/*" {
		a, _, err := mime.ParseMediaType(acc)
		switch {
		case err == nil && (a == MediaJSON || a == MediaProtobuf):
			out = a
		case err == nil && a == MediaRecordIO:
			out = ct // Mesos ≥1.2 accepts this with Message-Accept; we keep the call's type
		default:
			return ct, ""
		}
	}
	return ct, out
}
