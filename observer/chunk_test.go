package observer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/observer/observerapi"
)

// discard is a ResponseWriter that keeps the status, the headers, the byte
// count and the start of the body: serving through it allocates nothing per
// byte, unlike a recorder that buffers the body.
type discard struct {
	h    http.Header
	code int
	n    int64
	head []byte
}

func (d *discard) Header() http.Header { return d.h }
func (d *discard) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}
func (d *discard) Write(b []byte) (int, error) {
	if d.code == 0 {
		d.code = 200
	}
	if len(d.head) < 4096 {
		d.head = append(d.head, b[:min(len(b), 4096-len(d.head))]...)
	}
	d.n += int64(len(b))
	return len(b), nil
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A 1 GiB (sparse) log is served a chunk at a time: every /logdata answer
// is at most MaxChunk long, no request allocates more than a small multiple
// of the chunk, the whole file streams through /download in bounded memory,
// and the heap does not keep any of it.
func TestHugeLogInChunks(t *testing.T) {
	const size = 1 << 30
	f := newFixture(t)
	log := filepath.Join(f.sandbox(activeID), ".logs", "hello", "1", "stdout")
	fh, err := os.OpenFile(log, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tail := "the last line\n"
	if err := fh.Truncate(size - int64(len(tail))); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte(tail), size-int64(len(tail))); err != nil {
		t.Fatal(err)
	}
	fh.Close()

	o := newTestObserver(t, f)
	h := o.Handler()
	serve := func(target string) *discard {
		d := &discard{h: http.Header{}}
		h.ServeHTTP(d, httptest.NewRequest("GET", target, nil))
		return d
	}
	base := "/logdata/" + activeID + "/hello/1/stdout"
	serve(base) // warm up: scan, checkpoint, templates

	var heapBefore, heapAfter runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heapBefore)

	// The end, as the viewer asks first; then the tail.
	var end observerapi.Chunk
	if a := allocated(func() { json.Unmarshal(serve(base+"?offset=-1&length=0").head, &end) }); end.Offset != size || end.Length != 0 || a > 1<<20 {
		t.Fatalf("end: %+v, %d bytes allocated", end, a)
	}
	var last observerapi.Chunk
	json.Unmarshal(serve(fmt.Sprintf("%s?offset=%d&length=100", base, size-int64(len(tail)))).head, &last)
	if last.Data != tail {
		t.Fatalf("tail chunk %+v", last)
	}
	// Whole-file asks (length -1, or huge) anywhere in the file get one
	// chunk each, in bounded memory.
	limit := uint64(16 * DefaultMaxChunk) // JSON of NUL bytes is 6 bytes each, plus buffers
	for _, offset := range []int64{0, 1, size / 3, size / 2, size - DefaultMaxChunk - 7} {
		for _, length := range []int64{-1, size, 1 << 40} {
			var d *discard
			a := allocated(func() { d = serve(fmt.Sprintf("%s?offset=%d&length=%d", base, offset, length)) })
			if d.code != 200 {
				t.Fatalf("offset %d length %d: %d", offset, length, d.code)
			}
			if d.n > int64(limit) {
				t.Fatalf("offset %d: a %d-byte answer", offset, d.n)
			}
			if a > limit {
				t.Fatalf("offset %d length %d: %d bytes allocated for one chunk (limit %d; the file is %d)", offset, length, a, limit, size)
			}
		}
	}
	// The chunk's length field, checked on one answer in full.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", base+"?offset=5&length=-1", nil))
	var c observerapi.Chunk
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil || c.Offset != 5 || c.Length != DefaultMaxChunk || len(c.Data) != DefaultMaxChunk {
		t.Fatalf("chunk at 5: offset %d length %d data %d (%v)", c.Offset, c.Length, len(c.Data), err)
	}
	rec, c = nil, observerapi.Chunk{}

	// The whole file through /download, streamed.
	var d *discard
	a := allocated(func() { d = serve("/download/" + activeID + "/.logs/hello/1/stdout") })
	if d.code != 200 || d.n != size || d.h.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("download: %d, %d bytes, %v", d.code, d.n, d.h)
	}
	if a > 8<<20 {
		t.Fatalf("downloading 1 GiB allocated %d bytes", a)
	}
	// A range of it.
	rd := &discard{h: http.Header{}}
	req := httptest.NewRequest("GET", "/download/"+activeID+"/.logs/hello/1/stdout", nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", size-int64(len(tail))))
	h.ServeHTTP(rd, req)
	if rd.code != http.StatusPartialContent || string(rd.head) != tail {
		t.Fatalf("range: %d %q", rd.code, rd.head)
	}

	runtime.GC()
	runtime.ReadMemStats(&heapAfter)
	if grew := int64(heapAfter.HeapAlloc) - int64(heapBefore.HeapAlloc); grew > 8<<20 {
		t.Fatalf("the heap grew by %d bytes serving a %d-byte log", grew, size)
	}
}

// The viewer's loop against a file that a real process keeps writing:
// asking from the previous end returns exactly what was appended since.
func TestLogFollowsGrowingFile(t *testing.T) {
	f := newFixture(t)
	log := filepath.Join(f.sandbox(activeID), ".logs", "hello", "1", "stdout")
	o := New(Config{WorkDir: f.workDir, MaxChunk: 64})
	h := o.Handler()
	// A real writer: a shell loop appending numbered lines.
	cmd := exec.Command("bash", "-c", `for i in $(seq 1 40); do echo "line $i"; sleep 0.01; done >> "$0"`, log)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var got strings.Builder
	offset := int64(0)
	finished := false
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/logdata/%s/hello/1/stdout?offset=%d&length=64", activeID, offset), nil))
		var c observerapi.Chunk
		if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil || c.Offset != offset || c.Length > 64 {
			t.Fatalf("chunk at %d: %+v %v %s", offset, c, err, rec.Body)
		}
		got.WriteString(c.Data)
		offset += c.Length
		if c.Length == 0 {
			if finished {
				break
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				finished = true // one more read for what came last
			case <-time.After(5 * time.Millisecond):
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer did not finish")
		}
	}
	want := "hello <world>\nhello <world>\n"
	for i := 1; i <= 40; i++ {
		want += fmt.Sprintf("line %d\n", i)
	}
	if got.String() != want {
		t.Fatalf("followed:\n%q\nwant:\n%q", got.String(), want)
	}
	if offset != int64(len(want)) {
		t.Fatalf("offset %d, want %d", offset, len(want))
	}
}

// writeChunk's streaming escaper agrees with encoding/json: the data
// decodes to what encoding/json makes of the same bytes.
func FuzzWriteChunk(f *testing.F) {
	for _, s := range []string{"", "plain\n", "\x00\x01\x1f\x7f", `quote " and \ backslash`, "<script>&</script>",
		"caf\xc3\xa9 \xe2\x80\xa8 \xe2\x80\xa9", "bad \xff\xfe utf8 \xc3", "emoji \xf0\x9f\x98\x80", "\t\r\n"} {
		f.Add([]byte(s), int64(len(s)))
	}
	f.Fuzz(func(t *testing.T, data []byte, offset int64) {
		var b strings.Builder
		if err := writeChunk(&b, offset, data); err != nil {
			t.Fatal(err)
		}
		var got observerapi.Chunk
		if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
			t.Fatalf("%q: invalid JSON %q: %v", data, b.String(), err)
		}
		ref, _ := json.Marshal(string(data))
		var want string
		json.Unmarshal(ref, &want)
		if got.Offset != offset || got.Length != int64(len(data)) || got.Data != want {
			t.Fatalf("%q: got %+v, want data %q", data, got, want)
		}
		if strings.ContainsAny(b.String(), "<>&\u2028\u2029") {
			t.Fatalf("%q: raw markup or line separators in %q", data, b.String())
		}
	})
}
