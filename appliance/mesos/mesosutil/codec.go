package mesosutil

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
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

// ReadCall reads a v1 API call (POST, Content-Type JSON or protobuf, at
// most maxBytes) into call and returns the media type to answer in. On
// a bad request it answers it as Mesos does (405, 415, 406, 413 or 400,
// with a message naming what was wrong) and returns ok false.
func ReadCall(w http.ResponseWriter, r *http.Request, maxBytes int, call Message) (out string, ok bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Expecting a 'POST' request", http.StatusMethodNotAllowed)
		return "", false
	}
	in, out := MediaTypes(r)
	if in == "" {
		http.Error(w, "Expecting 'Content-Type' of application/json or application/x-protobuf", http.StatusUnsupportedMediaType)
		return "", false
	}
	if out == "" {
		http.Error(w, "Expecting 'Accept' to allow application/json or application/x-protobuf", http.StatusNotAcceptable)
		return "", false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(maxBytes)+1))
	if err != nil {
		http.Error(w, "Failed to read the request body: "+err.Error(), http.StatusBadRequest)
		return "", false
	}
	if len(body) > maxBytes {
		http.Error(w, fmt.Sprintf("Request body is larger than %d bytes", maxBytes), http.StatusRequestEntityTooLarge)
		return "", false
	}
	if err := Decode(in, body, call); err != nil {
		http.Error(w, "Failed to parse body into Call: "+err.Error(), http.StatusBadRequest)
		return "", false
	}
	return out, true
}

// VersionInfo is the /version document (VersionJSON) as the v1 APIs'
// protobuf: the Mesos API version and aurorabox's build fields.
func VersionInfo(build string) mesos.VersionInfo {
	v := VersionJSON(build)
	str := func(key string) *string {
		s, _ := v[key].(string)
		return &s
	}
	opt := func(key string) *string {
		if s := str(key); *s != "" {
			return s
		}
		return nil
	}
	var bt float64
	switch t := v["build_time"].(type) {
	case int:
		bt = float64(t)
	case float64:
		bt = t
	}
	return mesos.VersionInfo{
		Version: *str("version"), BuildDate: str("build_date"), BuildTime: &bt, BuildUser: str("build_user"),
		GitSHA: opt("git_sha"), GitBranch: opt("git_branch"), GitTag: opt("git_tag"),
	}
}
