package jute

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// enc runs f on a fresh Encoder and returns the bytes.
func enc(f func(e *Encoder)) []byte {
	var e Encoder
	f(&e)
	return e.B
}

func TestPrimitiveWireFormat(t *testing.T) {
	// Exact bytes, so a round trip that is symmetric but wrong (say,
	// little-endian both ways) still fails.
	tests := []struct {
		name string
		f    func(e *Encoder)
		want []byte
	}{
		{"int32", func(e *Encoder) { e.Int32(0x01020304) }, []byte{1, 2, 3, 4}},
		{"int32 -1", func(e *Encoder) { e.Int32(-1) }, []byte{0xff, 0xff, 0xff, 0xff}},
		{"int64", func(e *Encoder) { e.Int64(0x0102030405060708) }, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"bool true", func(e *Encoder) { e.Bool(true) }, []byte{1}},
		{"bool false", func(e *Encoder) { e.Bool(false) }, []byte{0}},
		{"string", func(e *Encoder) { e.String("ab") }, []byte{0, 0, 0, 2, 'a', 'b'}},
		{"empty string", func(e *Encoder) { e.String("") }, []byte{0, 0, 0, 0}},
		{"nil buffer", func(e *Encoder) { e.Buffer(nil) }, []byte{0xff, 0xff, 0xff, 0xff}},
		{"empty buffer", func(e *Encoder) { e.Buffer([]byte{}) }, []byte{0, 0, 0, 0}},
		{"buffer", func(e *Encoder) { e.Buffer([]byte{9, 8}) }, []byte{0, 0, 0, 2, 9, 8}},
		{"strings", func(e *Encoder) { e.Strings([]string{"a", ""}) }, []byte{0, 0, 0, 2, 0, 0, 0, 1, 'a', 0, 0, 0, 0}},
		{"acls", func(e *Encoder) { e.ACLs([]ACL{{Perms: 31, Scheme: "w", ID: "x"}}) },
			[]byte{0, 0, 0, 1, 0, 0, 0, 31, 0, 0, 0, 1, 'w', 0, 0, 0, 1, 'x'}},
		{"multi header", func(e *Encoder) { (&MultiHeader{Type: -1, Done: true, Err: -1}).Encode(e) },
			[]byte{0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff}},
		{"reply header", func(e *Encoder) { (&ReplyHeader{Xid: 7, Zxid: 0x100, Err: ErrNoNode}).Encode(e) },
			[]byte{0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0x9b}},
		{"watcher event", func(e *Encoder) {
			(&WatcherEvent{Type: EventNodeCreated, State: StateSyncConnected, Path: "/a"}).Encode(e)
		}, []byte{0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 2, '/', 'a'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := enc(tt.f); !bytes.Equal(got, tt.want) {
				t.Errorf("got % x, want % x", got, tt.want)
			}
		})
	}
}

func TestStatWireFormat(t *testing.T) {
	s := Stat{Czxid: 1, Mzxid: 2, Ctime: 3, Mtime: 4, Version: 5, Cversion: 6, Aversion: 7,
		EphemeralOwner: 8, DataLength: 9, NumChildren: 10, Pzxid: 11}
	b := enc(func(e *Encoder) { e.Stat(&s) })
	if len(b) != 68 {
		t.Fatalf("Stat is %d bytes, want 68", len(b))
	}
	// Field order as in org.apache.zookeeper.data.Stat.
	want := enc(func(e *Encoder) {
		e.Int64(1)
		e.Int64(2)
		e.Int64(3)
		e.Int64(4)
		e.Int32(5)
		e.Int32(6)
		e.Int32(7)
		e.Int64(8)
		e.Int32(9)
		e.Int32(10)
		e.Int64(11)
	})
	if !bytes.Equal(b, want) {
		t.Errorf("got % x\nwant % x", b, want)
	}
}

func TestRoundTrip(t *testing.T) {
	stat := Stat{Czxid: -1, Mzxid: 1 << 40, Ctime: 1700000000000, Mtime: 1700000000001,
		Version: 3, Cversion: -1, Aversion: 2, EphemeralOwner: 0x1234567890, DataLength: 5,
		NumChildren: 2, Pzxid: 99}
	acls := []ACL{
		{Perms: PermAll, Scheme: "world", ID: "anyone"},
		{Perms: PermRead | PermAdmin, Scheme: "digest", ID: "u:h="},
	}
	tests := []struct {
		name   string
		encode func(e *Encoder)
		decode func(d *Decoder) any
		want   any
	}{
		{"int32 max", func(e *Encoder) { e.Int32(1<<31 - 1) }, func(d *Decoder) any { return d.Int32() }, int32(1<<31 - 1)},
		{"int32 min", func(e *Encoder) { e.Int32(-1 << 31) }, func(d *Decoder) any { return d.Int32() }, int32(-1 << 31)},
		{"int64 min", func(e *Encoder) { e.Int64(-1 << 63) }, func(d *Decoder) any { return d.Int64() }, int64(-1 << 63)},
		{"int64", func(e *Encoder) { e.Int64(0x0102030405060708) }, func(d *Decoder) any { return d.Int64() }, int64(0x0102030405060708)},
		{"bool true", func(e *Encoder) { e.Bool(true) }, func(d *Decoder) any { return d.Bool() }, true},
		{"bool false", func(e *Encoder) { e.Bool(false) }, func(d *Decoder) any { return d.Bool() }, false},
		{"string", func(e *Encoder) { e.String("/zoo/ké") }, func(d *Decoder) any { return d.String() }, "/zoo/ké"},
		{"empty string", func(e *Encoder) { e.String("") }, func(d *Decoder) any { return d.String() }, ""},
		{"buffer", func(e *Encoder) { e.Buffer([]byte{0, 1, 0xff}) }, func(d *Decoder) any { return d.Buffer() }, []byte{0, 1, 0xff}},
		{"empty buffer", func(e *Encoder) { e.Buffer([]byte{}) }, func(d *Decoder) any { return d.Buffer() }, []byte{}},
		{"nil buffer", func(e *Encoder) { e.Buffer(nil) }, func(d *Decoder) any { return d.Buffer() }, []byte(nil)},
		{"strings", func(e *Encoder) { e.Strings([]string{"/a", "", "/b/c"}) }, func(d *Decoder) any { return d.Strings() }, []string{"/a", "", "/b/c"}},
		{"no strings", func(e *Encoder) { e.Strings(nil) }, func(d *Decoder) any { return d.Strings() }, []string{}},
		{"acls", func(e *Encoder) { e.ACLs(acls) }, func(d *Decoder) any { return d.ACLs() }, acls},
		{"no acls", func(e *Encoder) { e.ACLs(nil) }, func(d *Decoder) any { return d.ACLs() }, []ACL(nil)},
		{"stat", func(e *Encoder) { e.Stat(&stat) }, func(d *Decoder) any { return d.Stat() }, stat},
		{"multi header", func(e *Encoder) { (&MultiHeader{Type: OpCreate, Err: -101}).Encode(e) },
			func(d *Decoder) any { var h MultiHeader; h.Decode(d); return h }, MultiHeader{Type: OpCreate, Err: -101}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := enc(tt.encode)
			// A trailing sentinel checks that the decoder consumed exactly
			// what the encoder wrote.
			b = append(b, 0xAB, 0xCD, 0xEF, 0x01)
			d := NewDecoder(b)
			got := tt.decode(d)
			if err := d.Err(); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if d.Remaining() != 4 || d.Int32() != int32(-0x543210ff) {
				t.Errorf("decoder stopped at %d of %d; the sentinel was not next", d.Off, len(b))
			}
		})
	}
}

func TestBufferNullVersusEmpty(t *testing.T) {
	// Java distinguishes a null byte[] (length -1) from an empty one; a
	// decoded znode's data must keep the difference.
	d := NewDecoder(enc(func(e *Encoder) { e.Buffer(nil); e.Buffer([]byte{}) }))
	if b := d.Buffer(); b != nil {
		t.Errorf("length -1 decoded as %#v, want nil", b)
	}
	if b := d.Buffer(); b == nil || len(b) != 0 {
		t.Errorf("length 0 decoded as %#v, want non-nil empty", b)
	}
	if d.Err() != nil {
		t.Fatal(d.Err())
	}
}

func TestBufferIsACopy(t *testing.T) {
	frame := enc(func(e *Encoder) { e.Buffer([]byte("data")) })
	b := NewDecoder(frame).Buffer()
	frame[4] = 'X'
	if string(b) != "data" {
		t.Errorf("Buffer aliases the frame: got %q after the frame changed", b)
	}
}

func TestBoolNonZeroIsTrue(t *testing.T) {
	d := NewDecoder([]byte{0, 1, 2, 0xff})
	got := []bool{d.Bool(), d.Bool(), d.Bool(), d.Bool()}
	if want := []bool{false, true, true, true}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestNullStringAndVectors(t *testing.T) {
	// Java writes a null String or vector as length -1.
	d := NewDecoder(enc(func(e *Encoder) { e.Int32(-1); e.Int32(-1); e.Int32(-1) }))
	if s := d.String(); s != "" {
		t.Errorf("null string = %q", s)
	}
	if ss := d.Strings(); len(ss) != 0 {
		t.Errorf("null vector = %q", ss)
	}
	if a := d.ACLs(); a != nil {
		t.Errorf("null ACL vector = %v, want nil", a)
	}
	if d.Err() != nil || d.Remaining() != 0 {
		t.Errorf("err %v, remaining %d", d.Err(), d.Remaining())
	}
}

func TestTruncatedInputIsErrShort(t *testing.T) {
	stat := Stat{Czxid: 1, Pzxid: 2}
	// A record holding a vector may instead fail the vector-count guard
	// (vecLen) when the cut falls inside the vector: the count no longer
	// fits in what is left. Either way the decode must fail; records
	// without vectors must fail with ErrShort exactly.
	records := []struct {
		name   string
		encode func(e *Encoder)
		decode func(d *Decoder)
		vector bool
	}{
		{"int32", func(e *Encoder) { e.Int32(5) }, func(d *Decoder) { d.Int32() }, false},
		{"int64", func(e *Encoder) { e.Int64(5) }, func(d *Decoder) { d.Int64() }, false},
		{"bool", func(e *Encoder) { e.Bool(true) }, func(d *Decoder) { d.Bool() }, false},
		{"string", func(e *Encoder) { e.String("hello") }, func(d *Decoder) { _ = d.String() }, false},
		{"buffer", func(e *Encoder) { e.Buffer([]byte("hello")) }, func(d *Decoder) { d.Buffer() }, false},
		{"strings", func(e *Encoder) { e.Strings([]string{"a", "bc"}) }, func(d *Decoder) { d.Strings() }, true},
		{"acls", func(e *Encoder) { e.ACLs(OpenACL) }, func(d *Decoder) { d.ACLs() }, true},
		{"stat", func(e *Encoder) { e.Stat(&stat) }, func(d *Decoder) { d.Stat() }, false},
		{"create", func(e *Encoder) {
			e.String("/a")
			e.Buffer([]byte("x"))
			e.ACLs(OpenACL)
			e.Int32(0)
		}, func(d *Decoder) { new(CreateRequest).Decode(d) }, true},
		{"setData", func(e *Encoder) { e.String("/a"); e.Buffer(nil); e.Int32(3) },
			func(d *Decoder) { new(SetDataRequest).Decode(d) }, false},
		{"setWatches2", func(e *Encoder) {
			e.Int64(1)
			for i := 0; i < 5; i++ {
				e.Strings([]string{"/p"})
			}
		}, func(d *Decoder) { new(SetWatches).Decode(d, true) }, true},
	}
	for _, r := range records {
		full := enc(r.encode)
		// Every proper prefix must fail with ErrShort, the full record
		// must not.
		for n := 0; n < len(full); n++ {
			d := NewDecoder(full[:n])
			r.decode(d)
			err := d.Err()
			ok := errors.Is(err, ErrShort) ||
				r.vector && err != nil && strings.Contains(err.Error(), "bad vector length")
			if !ok {
				t.Errorf("%s truncated to %d of %d bytes: err = %v, want ErrShort", r.name, n, len(full), err)
			}
		}
		d := NewDecoder(full)
		r.decode(d)
		if d.Err() != nil || d.Remaining() != 0 {
			t.Errorf("%s full: err %v, remaining %d", r.name, d.Err(), d.Remaining())
		}
	}
}

func TestErrorIsSticky(t *testing.T) {
	// Three bytes: Int32 fails; later reads must return zero values and
	// not consume the bytes that are there.
	d := NewDecoder([]byte{1, 2, 3})
	if v := d.Int32(); v != 0 || !errors.Is(d.Err(), ErrShort) {
		t.Fatalf("Int32 = %d, err %v", v, d.Err())
	}
	if d.Bool() || d.Int64() != 0 || d.String() != "" || d.Buffer() != nil || len(d.Strings()) != 0 || d.ACLs() != nil {
		t.Error("reads after an error returned non-zero values")
	}
	if d.Off != 0 {
		t.Errorf("reads after an error advanced Off to %d", d.Off)
	}
	if !errors.Is(d.Err(), ErrShort) {
		t.Errorf("first error replaced by %v", d.Err())
	}
}

// allocBytes reports how many bytes f allocates on the heap.
func allocBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestHostileLengths(t *testing.T) {
	tests := []struct {
		name   string
		prefix int32
		decode func(d *Decoder)
	}{
		{"string huge", 0x7fffffff, func(d *Decoder) { _ = d.String() }},
		{"buffer huge", 0x7fffffff, func(d *Decoder) { d.Buffer() }},
		{"strings huge", 0x7fffffff, func(d *Decoder) { d.Strings() }},
		{"acls huge", 0x7fffffff, func(d *Decoder) { d.ACLs() }},
		{"string negative", -2, func(d *Decoder) { _ = d.String() }},
		{"buffer negative", -2, func(d *Decoder) { d.Buffer() }},
		{"strings negative", -2, func(d *Decoder) { d.Strings() }},
		{"acls negative", -0x80000000, func(d *Decoder) { d.ACLs() }},
		// Counts that just exceed what the 12 bytes left can hold: each
		// string takes at least 4 bytes, each ACL at least 12.
		{"strings one too many", 4, func(d *Decoder) { d.Strings() }},
		{"acls one too many", 2, func(d *Decoder) { d.ACLs() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := enc(func(e *Encoder) { e.Int32(tt.prefix); e.Int32(0); e.Int32(0); e.Int32(0) })
			var d *Decoder
			n := allocBytes(func() {
				for i := 0; i < 100; i++ {
					d = NewDecoder(b)
					tt.decode(d)
				}
			})
			if d.Err() == nil {
				t.Fatal("no error")
			}
			// 100 decodes: a few error values each is fine, a buffer or
			// vector sized by the hostile count is not.
			if n > 1<<20 {
				t.Errorf("100 decodes allocated %d bytes", n)
			}
		})
	}
}

func TestVectorCountAtLimitIsAccepted(t *testing.T) {
	// The hostile-count guard must not reject a count the frame can hold:
	// 3 empty strings fill exactly 12 bytes.
	b := enc(func(e *Encoder) { e.Int32(3); e.Int32(0); e.Int32(0); e.Int32(0) })
	d := NewDecoder(b)
	if ss := d.Strings(); d.Err() != nil || len(ss) != 3 {
		t.Errorf("got %q, err %v", ss, d.Err())
	}
	b = enc(func(e *Encoder) { e.Int32(1); e.Int32(0); e.Int32(0); e.Int32(0) })
	d = NewDecoder(b)
	if a := d.ACLs(); d.Err() != nil || len(a) != 1 {
		t.Errorf("got %v, err %v", a, d.Err())
	}
}

func TestHostileSetWatches(t *testing.T) {
	// setWatches is the one request made of vectors; a 0x7fffffff-count
	// data list after the zxid must fail fast.
	b := enc(func(e *Encoder) { e.Int64(5); e.Int32(0x7fffffff); e.String("/a") })
	var d *Decoder
	n := allocBytes(func() {
		d = NewDecoder(b)
		new(SetWatches).Decode(d, true)
	})
	if d.Err() == nil {
		t.Fatal("no error")
	}
	if n > 1<<20 {
		t.Errorf("allocated %d bytes", n)
	}
}

func TestConnectRequest(t *testing.T) {
	body := func(readOnly []byte) []byte {
		b := enc(func(e *Encoder) {
			e.Int32(0)
			e.Int64(0x55)
			e.Int32(30000)
			e.Int64(0x0102030405060708)
			e.Buffer([]byte("0123456789abcdef"))
		})
		return append(b, readOnly...)
	}
	base := ConnectRequest{ProtocolVersion: 0, LastZxidSeen: 0x55, Timeout: 30000,
		SessionID: 0x0102030405060708, Passwd: []byte("0123456789abcdef")}
	tests := []struct {
		name    string
		frame   []byte
		want    ConnectRequest
		wantErr error
	}{
		{"without readOnly (3.3 client)", body(nil), base, nil},
		{"readOnly false", body([]byte{0}), func() ConnectRequest { c := base; c.HasReadOnly = true; return c }(), nil},
		{"readOnly true", body([]byte{1}), func() ConnectRequest { c := base; c.HasReadOnly, c.ReadOnly = true, true; return c }(), nil},
		{"truncated password", body(nil)[:30], ConnectRequest{}, ErrShort},
		{"null password", enc(func(e *Encoder) {
			e.Int32(0)
			e.Int64(0)
			e.Int32(4000)
			e.Int64(0)
			e.Buffer(nil)
		}), ConnectRequest{Timeout: 4000}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r ConnectRequest
			d := NewDecoder(tt.frame)
			r.Decode(d)
			if !errors.Is(d.Err(), tt.wantErr) {
				t.Fatalf("err = %v, want %v", d.Err(), tt.wantErr)
			}
			if tt.wantErr != nil {
				if r.HasReadOnly {
					t.Error("HasReadOnly set on a failed decode")
				}
				return
			}
			if !reflect.DeepEqual(r, tt.want) {
				t.Errorf("got %+v\nwant %+v", r, tt.want)
			}
			if d.Remaining() != 0 {
				t.Errorf("%d bytes left", d.Remaining())
			}
		})
	}
}

func TestConnectResponseMirrorsReadOnly(t *testing.T) {
	r := ConnectResponse{Timeout: 4000, SessionID: 7, Passwd: make([]byte, 16)}
	without := enc(r.Encode)
	r.HasReadOnly, r.ReadOnly = true, true
	with := enc(r.Encode)
	if len(without) != 4+4+8+4+16 {
		t.Errorf("response without readOnly is %d bytes", len(without))
	}
	if len(with) != len(without)+1 || with[len(with)-1] != 1 || !bytes.Equal(with[:len(without)], without) {
		t.Errorf("response with readOnly = % x", with)
	}
}

func TestRequestRecords(t *testing.T) {
	tests := []struct {
		name   string
		encode func(e *Encoder)
		decode func(d *Decoder) any
		want   any
	}{
		{"header", func(e *Encoder) { e.Int32(42); e.Int32(OpGetData) },
			func(d *Decoder) any { var h RequestHeader; h.Decode(d); return h }, RequestHeader{Xid: 42, Type: OpGetData}},
		{"create", func(e *Encoder) {
			e.String("/a/b-")
			e.Buffer([]byte("v"))
			e.ACLs(OpenACL)
			e.Int32(FlagEphemeral | FlagSequential)
		}, func(d *Decoder) any { var r CreateRequest; r.Decode(d); return r },
			CreateRequest{Path: "/a/b-", Data: []byte("v"), ACL: OpenACL, Flags: 3}},
		{"pathVersion", func(e *Encoder) { e.String("/x"); e.Int32(-1) },
			func(d *Decoder) any { var r PathVersion; r.Decode(d); return r }, PathVersion{Path: "/x", Version: -1}},
		{"pathWatch", func(e *Encoder) { e.String("/x"); e.Bool(true) },
			func(d *Decoder) any { var r PathWatch; r.Decode(d); return r }, PathWatch{Path: "/x", Watch: true}},
		{"setData", func(e *Encoder) { e.String("/x"); e.Buffer(nil); e.Int32(9) },
			func(d *Decoder) any { var r SetDataRequest; r.Decode(d); return r }, SetDataRequest{Path: "/x", Version: 9}},
		{"setACL", func(e *Encoder) {
			e.String("/x")
			e.ACLs([]ACL{{Perms: PermRead, Scheme: "ip", ID: "10.0.0.0/8"}})
			e.Int32(2)
		}, func(d *Decoder) any { var r SetACLRequest; r.Decode(d); return r },
			SetACLRequest{Path: "/x", ACL: []ACL{{Perms: PermRead, Scheme: "ip", ID: "10.0.0.0/8"}}, Version: 2}},
		{"auth", func(e *Encoder) { e.Int32(0); e.String("digest"); e.Buffer([]byte("u:p")) },
			func(d *Decoder) any { var r AuthPacket; r.Decode(d); return r }, AuthPacket{Scheme: "digest", Auth: []byte("u:p")}},
		{"setWatches v1", func(e *Encoder) {
			e.Int64(77)
			e.Strings([]string{"/d"})
			e.Strings([]string{"/e1", "/e2"})
			e.Strings(nil)
		}, func(d *Decoder) any { var r SetWatches; r.Decode(d, false); return r },
			SetWatches{RelativeZxid: 77, Data: []string{"/d"}, Exist: []string{"/e1", "/e2"}, Child: []string{}}},
		{"setWatches v2", func(e *Encoder) {
			e.Int64(77)
			e.Strings(nil)
			e.Strings(nil)
			e.Strings([]string{"/c"})
			e.Strings([]string{"/p"})
			e.Strings([]string{"/r"})
		}, func(d *Decoder) any { var r SetWatches; r.Decode(d, true); return r },
			SetWatches{RelativeZxid: 77, Data: []string{}, Exist: []string{}, Child: []string{"/c"},
				Persistent: []string{"/p"}, PersistentRecursive: []string{"/r"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(enc(tt.encode))
			got := tt.decode(d)
			if d.Err() != nil {
				t.Fatal(d.Err())
			}
			if d.Remaining() != 0 {
				t.Errorf("%d bytes left undecoded", d.Remaining())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCodeError(t *testing.T) {
	tests := []struct {
		code Code
		want string
	}{
		{ErrNoNode, "zookeeper: no node"},
		{ErrNodeExists, "zookeeper: node exists"},
		{ErrNoAuth, "zookeeper: not authenticated"},
		{ErrBadVersion, "zookeeper: bad version"},
		{ErrNotEmpty, "zookeeper: not empty"},
		{ErrInvalidACL, "zookeeper: invalid ACL"},
		{ErrNoChildrenForEphem, "zookeeper: no children for ephemerals"},
		{Code(-999), "zookeeper: error -999"},
		{Code(42), "zookeeper: error 42"},
	}
	for _, tt := range tests {
		if got := tt.code.Error(); got != tt.want {
			t.Errorf("Code(%d).Error() = %q, want %q", int32(tt.code), got, tt.want)
		}
	}
	// Every named code has its own message.
	seen := map[string]Code{}
	for c, n := range codeNames {
		if prev, ok := seen[n]; ok {
			t.Errorf("codes %d and %d share the name %q", prev, c, n)
		}
		seen[n] = c
		if strings.Contains(c.Error(), "error "+fmt.Sprint(int32(c))) {
			t.Errorf("named code %d formatted as unknown: %q", c, c.Error())
		}
	}
}

func TestCodeValuesMatchKeeperException(t *testing.T) {
	// The numbers are wire protocol; a typo would be silent elsewhere.
	want := map[Code]int32{
		OK: 0, ErrSystemError: -1, ErrRuntimeInconsistency: -2, ErrDataInconsistency: -3,
		ErrConnectionLoss: -4, ErrMarshallingError: -5, ErrUnimplemented: -6,
		ErrOperationTimeout: -7, ErrBadArguments: -8, ErrUnknownSession: -12, ErrAPIError: -100,
		ErrNoNode: -101, ErrNoAuth: -102, ErrBadVersion: -103, ErrNoChildrenForEphem: -108,
		ErrNodeExists: -110, ErrNotEmpty: -111, ErrSessionExpired: -112, ErrInvalidCallback: -113,
		ErrInvalidACL: -114, ErrAuthFailed: -115, ErrClosing: -116, ErrNothing: -117,
		ErrSessionMoved: -118, ErrNoWatcher: -121,
	}
	for c, v := range want {
		if int32(c) != v {
			t.Errorf("code %q = %d, want %d", c.Error(), int32(c), v)
		}
	}
	if len(codeNames) != len(want) {
		t.Errorf("codeNames has %d entries, want %d", len(codeNames), len(want))
	}
}

func TestCodeOf(t *testing.T) {
	wrapped := fmt.Errorf("wrapped: %w", ErrNoNode)
	tests := []struct {
		name string
		err  error
		want Code
	}{
		{"nil", nil, OK},
		{"code", ErrNoNode, ErrNoNode},
		{"code as error", error(ErrBadVersion), ErrBadVersion},
		{"unknown code", Code(-999), Code(-999)},
		{"other error", errors.New("boom"), ErrSystemError},
		{"ErrShort", ErrShort, ErrSystemError},
		// CodeOf does not unwrap: a wrapped Code is a system error.
		{"wrapped code", wrapped, ErrSystemError},
	}
	for _, tt := range tests {
		if got := CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%s) = %d, want %d", tt.name, got, tt.want)
		}
	}
}
