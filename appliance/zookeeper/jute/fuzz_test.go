package jute

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// decodeBody decodes the record that follows a RequestHeader of type typ,
// as the server does. It reports whether typ has a body this package
// decodes.
func decodeBody(typ int32, d *Decoder) bool {
	switch typ {
	case OpCreateSession:
		new(ConnectRequest).Decode(d)
	case OpCreate, OpCreate2, OpCreateContainer, OpCreateTTL:
		new(CreateRequest).Decode(d)
		if typ == OpCreateTTL {
			d.Int64()
		}
	case OpDelete, OpCheck:
		new(PathVersion).Decode(d)
	case OpExists, OpGetData, OpGetChildren, OpGetChildren2:
		new(PathWatch).Decode(d)
	case OpSetData:
		new(SetDataRequest).Decode(d)
	case OpSetACL:
		new(SetACLRequest).Decode(d)
	case OpAuth:
		new(AuthPacket).Decode(d)
	case OpSetWatches:
		new(SetWatches).Decode(d, false)
	case OpSetWatches2:
		new(SetWatches).Decode(d, true)
	case OpSync, OpGetACL, OpGetEphemerals, OpGetAllChildren:
		_ = d.String()
	default:
		return false
	}
	return true
}

// checkDecoder asserts the invariants every decode must keep, whatever the
// input: the offset stays inside the frame, and after an error the
// decoder is inert.
func checkDecoder(t *testing.T, d *Decoder) {
	t.Helper()
	if d.Off < 0 || d.Off > len(d.B) || d.Remaining() < 0 {
		t.Fatalf("offset %d outside a %d-byte frame", d.Off, len(d.B))
	}
	if d.Err() == nil {
		return
	}
	off, err := d.Off, d.Err()
	if d.Int32() != 0 || d.Int64() != 0 || d.Bool() || d.String() != "" || d.Buffer() != nil ||
		len(d.Strings()) != 0 || d.ACLs() != nil || d.Stat() != (Stat{}) {
		t.Fatal("a read after an error returned a non-zero value")
	}
	if d.Off != off || !errors.Is(d.Err(), err) {
		t.Fatalf("a read after error %v moved the offset or replaced the error with %v", err, d.Err())
	}
}

// frame builds a request frame body (no length prefix): header then body.
func frame(xid, typ int32, body func(e *Encoder)) []byte {
	var e Encoder
	e.Int32(xid)
	e.Int32(typ)
	if body != nil {
		body(&e)
	}
	return e.B
}

// seedFrames are valid frames for the fuzzer to start from; they are also
// written, in corpus-file form, under testdata/fuzz/FuzzDecodeRequest.
func seedFrames() [][]byte {
	connect := func(readOnly bool) []byte {
		var e Encoder
		e.Int32(0)     // protocol version
		e.Int64(0)     // last zxid seen
		e.Int32(30000) // timeout
		e.Int64(0)     // session id
		e.Buffer(make([]byte, 16))
		if readOnly {
			e.Bool(false)
		}
		return e.B
	}
	return [][]byte{
		frame(1, OpCreate, func(e *Encoder) {
			e.String("/app")
			e.Buffer([]byte("hello"))
			e.ACLs(OpenACL)
			e.Int32(0)
		}),
		frame(2, OpGetData, func(e *Encoder) { e.String("/app"); e.Bool(true) }),
		frame(3, OpMulti, func(e *Encoder) {
			(&MultiHeader{Type: OpCreate, Err: -1}).Encode(e)
			e.String("/app/seq-")
			e.Buffer(nil)
			e.ACLs(OpenACL)
			e.Int32(FlagEphemeral | FlagSequential)
			(&MultiHeader{Type: OpSetData, Err: -1}).Encode(e)
			e.String("/app")
			e.Buffer([]byte("v2"))
			e.Int32(0)
			(&MultiHeader{Type: -1, Done: true, Err: -1}).Encode(e)
		}),
		frame(XidSetWatches, OpSetWatches, func(e *Encoder) {
			e.Int64(0x10)
			e.Strings([]string{"/app"})
			e.Strings([]string{"/missing"})
			e.Strings([]string{"/"})
		}),
		frame(XidSetWatches, OpSetWatches2, func(e *Encoder) {
			e.Int64(0x10)
			e.Strings(nil)
			e.Strings(nil)
			e.Strings([]string{"/app"})
			e.Strings([]string{"/p"})
			e.Strings(nil)
		}),
		// The first frame of a connection has no RequestHeader.
		connect(true),
		connect(false),
		frame(XidAuth, OpAuth, func(e *Encoder) { e.Int32(0); e.String("digest"); e.Buffer([]byte("u:p")) }),
		frame(4, OpSetACL, func(e *Encoder) {
			e.String("/app")
			e.ACLs([]ACL{{Perms: PermRead, Scheme: "ip", ID: "10.0.0.0/8"}})
			e.Int32(-1)
		}),
		frame(5, OpDelete, func(e *Encoder) { e.String("/app"); e.Int32(3) }),
	}
}

// seedNames name the committed corpus files, one per seedFrames entry.
var seedNames = []string{
	"seed-create", "seed-getdata-watch", "seed-multi-two-ops", "seed-setwatches",
	"seed-setwatches2", "seed-connect-readonly", "seed-connect-no-readonly",
	"seed-auth", "seed-setacl", "seed-delete",
}

const corpusDir = "testdata/fuzz/FuzzDecodeRequest"

// TestSeedCorpus checks that every seed frame is committed in corpus-file
// form, so that plain `go test` replays them even with the f.Add calls
// gone. JUTE_WRITE_SEED_CORPUS=1 (re)writes the files.
func TestSeedCorpus(t *testing.T) {
	seeds := seedFrames()
	if len(seeds) != len(seedNames) {
		t.Fatalf("%d seeds, %d names", len(seeds), len(seedNames))
	}
	if os.Getenv("JUTE_WRITE_SEED_CORPUS") == "1" {
		if err := os.MkdirAll(corpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(corpusDir, seedNames[i]), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, s := range seeds {
		raw, err := os.ReadFile(filepath.Join(corpusDir, seedNames[i]))
		if err != nil {
			t.Errorf("seed %s not committed: %v", seedNames[i], err)
			continue
		}
		got, err := parseCorpusFile(raw)
		if err != nil {
			t.Errorf("%s: %v", seedNames[i], err)
			continue
		}
		if !bytes.Equal(got, s) {
			t.Errorf("%s holds % x, the seed is % x", seedNames[i], got, s)
		}
	}
}

// parseCorpusFile reads a one-value []byte corpus file.
func parseCorpusFile(raw []byte) ([]byte, error) {
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("not a one-value corpus file: %q", raw)
	}
	q, ok1 := strings.CutPrefix(lines[1], "[]byte(")
	q, ok2 := strings.CutSuffix(q, ")")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("not a []byte value: %q", lines[1])
	}
	s, err := strconv.Unquote(q)
	return []byte(s), err
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// A connection's first frame is a ConnectRequest with no header.
		d := NewDecoder(b)
		var cr ConnectRequest
		cr.Decode(d)
		checkDecoder(t, d)
		if d.Err() != nil && cr.HasReadOnly {
			t.Fatal("HasReadOnly set on a failed ConnectRequest")
		}

		// Every later frame is a RequestHeader and a body.
		d = NewDecoder(b)
		var h RequestHeader
		h.Decode(d)
		checkDecoder(t, d)
		if d.Err() != nil {
			if len(b) >= 8 {
				t.Fatalf("an %d-byte frame failed its 8-byte header: %v", len(b), d.Err())
			}
			return
		}
		if h.Type != OpMulti {
			decodeBody(h.Type, d)
			checkDecoder(t, d)
			return
		}
		for i := 0; ; i++ {
			// Every op starts with a 9-byte MultiHeader, so the loop is
			// bounded by the frame; if decoding ever stopped consuming
			// input it would spin forever here instead.
			if i > len(b)/9+1 {
				t.Fatalf("multi loop ran %d times on a %d-byte frame", i, len(b))
			}
			var mh MultiHeader
			mh.Decode(d)
			if d.Err() != nil || mh.Done {
				break
			}
			before := d.Off
			if !decodeBody(mh.Type, d) {
				break // the server rejects an op it does not know
			}
			if d.Err() == nil && d.Off == before {
				t.Fatalf("op %d decoded from zero bytes", mh.Type)
			}
		}
		checkDecoder(t, d)
	})
}
