// Package jute encodes and decodes the ZooKeeper client wire protocol: the
// jute primitives (big-endian integers, length-prefixed strings and buffers,
// vectors), the records a client and server exchange, and the op and error
// codes. It does no I/O: a frame's 4-byte length prefix is handled by the
// caller, and every decoder works on one complete frame.
package jute

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxFrame is jute.maxbuffer's default: Apache ZooKeeper closes a connection
// whose frame length is larger than 0xfffff bytes.
const MaxFrame = 0xfffff

// ErrShort is returned when a frame ends before the record does.
var ErrShort = errors.New("jute: frame too short")

// Encoder appends jute-encoded values to a byte slice.
type Encoder struct{ B []byte }

// Int32 appends v big-endian.
func (e *Encoder) Int32(v int32) { e.B = binary.BigEndian.AppendUint32(e.B, uint32(v)) }

// Int64 appends v big-endian.
func (e *Encoder) Int64(v int64) { e.B = binary.BigEndian.AppendUint64(e.B, uint64(v)) }

// Bool appends v as one byte.
func (e *Encoder) Bool(v bool) {
	if v {
		e.B = append(e.B, 1)
	} else {
		e.B = append(e.B, 0)
	}
}

// String appends a length-prefixed string.
func (e *Encoder) String(s string) {
	e.Int32(int32(len(s)))
	e.B = append(e.B, s...)
}

// Buffer appends a length-prefixed buffer; nil is encoded as length -1, the
// way Java writes a null byte[].
func (e *Encoder) Buffer(b []byte) {
	if b == nil {
		e.Int32(-1)
		return
	}
	e.Int32(int32(len(b)))
	e.B = append(e.B, b...)
}

// Strings appends a vector of strings.
func (e *Encoder) Strings(ss []string) {
	e.Int32(int32(len(ss)))
	for _, s := range ss {
		e.String(s)
	}
}

// ACLs appends a vector of ACL records.
func (e *Encoder) ACLs(acl []ACL) {
	e.Int32(int32(len(acl)))
	for _, a := range acl {
		e.Int32(a.Perms)
		e.String(a.Scheme)
		e.String(a.ID)
	}
}

// Stat appends a Stat record.
func (e *Encoder) Stat(s *Stat) {
	e.Int64(s.Czxid)
	e.Int64(s.Mzxid)
	e.Int64(s.Ctime)
	e.Int64(s.Mtime)
	e.Int32(s.Version)
	e.Int32(s.Cversion)
	e.Int32(s.Aversion)
	e.Int64(s.EphemeralOwner)
	e.Int32(s.DataLength)
	e.Int32(s.NumChildren)
	e.Int64(s.Pzxid)
}

// Decoder reads jute values from one frame. The first error sticks: later
// reads return zero values, so a record decodes in straight-line code and
// the caller checks Err once.
type Decoder struct {
	B   []byte
	Off int
	err error
}

// NewDecoder returns a decoder over b.
func NewDecoder(b []byte) *Decoder { return &Decoder{B: b} }

// Err is the first error met, if any.
func (d *Decoder) Err() error { return d.err }

// Remaining is the number of undecoded bytes.
func (d *Decoder) Remaining() int { return len(d.B) - d.Off }

func (d *Decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || d.Off+n > len(d.B) {
		d.fail(ErrShort)
		return nil
	}
	b := d.B[d.Off : d.Off+n]
	d.Off += n
	return b
}

// Int32 reads a big-endian int32.
func (d *Decoder) Int32() int32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

// Int64 reads a big-endian int64.
func (d *Decoder) Int64() int64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// Bool reads one byte; any non-zero value is true, as in Java.
func (d *Decoder) Bool() bool {
	b := d.take(1)
	return b != nil && b[0] != 0
}

// Buffer reads a length-prefixed buffer; length -1 is nil. The result is a
// copy, so it may outlive the frame.
func (d *Decoder) Buffer() []byte {
	n := d.Int32()
	if d.err != nil || n == -1 {
		return nil
	}
	if n < -1 {
		d.fail(fmt.Errorf("jute: negative length %d", n))
		return nil
	}
	b := d.take(int(n))
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// String reads a length-prefixed string; a null string reads as "".
func (d *Decoder) String() string {
	n := d.Int32()
	if d.err != nil || n == -1 {
		return ""
	}
	if n < -1 {
		d.fail(fmt.Errorf("jute: negative length %d", n))
		return ""
	}
	return string(d.take(int(n)))
}

// vecLen reads a vector length and checks it against what is left of the
// frame (each element takes at least min bytes), so that a hostile count
// cannot make us allocate.
func (d *Decoder) vecLen(min int) int {
	n := d.Int32()
	if d.err != nil || n == -1 {
		return 0
	}
	if n < -1 || int(n)*min > d.Remaining() {
		d.fail(fmt.Errorf("jute: bad vector length %d", n))
		return 0
	}
	return int(n)
}

// Strings reads a vector of strings.
func (d *Decoder) Strings() []string {
	n := d.vecLen(4)
	out := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.String())
	}
	return out
}

// ACLs reads a vector of ACL records. A null vector is nil.
func (d *Decoder) ACLs() []ACL {
	n := d.vecLen(12)
	if n == 0 {
		return nil
	}
	out := make([]ACL, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, ACL{Perms: d.Int32(), Scheme: d.String(), ID: d.String()})
	}
	return out
}

// Stat reads a Stat record.
func (d *Decoder) Stat() Stat {
	return Stat{
		Czxid: d.Int64(), Mzxid: d.Int64(), Ctime: d.Int64(), Mtime: d.Int64(),
		Version: d.Int32(), Cversion: d.Int32(), Aversion: d.Int32(),
		EphemeralOwner: d.Int64(), DataLength: d.Int32(), NumChildren: d.Int32(),
		Pzxid: d.Int64(),
	}
}

// Stat is a znode's metadata, field for field as in org.apache.zookeeper.data.Stat.
type Stat struct {
	Czxid, Mzxid, Ctime, Mtime  int64
	Version, Cversion, Aversion int32
	EphemeralOwner              int64
	DataLength, NumChildren     int32
	Pzxid                       int64
}

// ACL is one access control entry: permission bits for an identity.
type ACL struct {
	Perms  int32
	Scheme string
	ID     string
}

// Permission bits.
const (
	PermRead   int32 = 1
	PermWrite  int32 = 2
	PermCreate int32 = 4
	PermDelete int32 = 8
	PermAdmin  int32 = 16
	PermAll    int32 = 31
)

// OpenACL is world:anyone with every permission (ZooDefs.Ids.OPEN_ACL_UNSAFE).
var OpenACL = []ACL{{Perms: PermAll, Scheme: "world", ID: "anyone"}}
