package zkcompat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/go-zookeeper/zk"
)

// A minimal jute client, independent of go-zookeeper/zk, for what that
// client cannot send: Create2, paths it would refuse client-side, and
// packets larger than the server's limit.

const (
	opCreate   = 1
	opGetData  = 4
	opSetData  = 5
	opExists   = 3
	opDelete   = 2
	opChildren = 8
	opCreate2  = 15
)

type juteW struct{ b []byte }

func (w *juteW) i32(v int32) *juteW { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)); return w }
func (w *juteW) i64(v int64) *juteW { w.b = binary.BigEndian.AppendUint64(w.b, uint64(v)); return w }
func (w *juteW) boolean(v bool) *juteW {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
	return w
}
func (w *juteW) str(s string) *juteW { w.i32(int32(len(s))); w.b = append(w.b, s...); return w }
func (w *juteW) buf(b []byte) *juteW {
	if b == nil {
		return w.i32(-1)
	}
	w.i32(int32(len(b)))
	w.b = append(w.b, b...)
	return w
}
func (w *juteW) acls(acl []zk.ACL) *juteW {
	w.i32(int32(len(acl)))
	for _, a := range acl {
		w.i32(a.Perms).str(a.Scheme).str(a.ID)
	}
	return w
}

type juteR struct {
	b   []byte
	err error
}

func (r *juteR) need(n int) bool {
	if r.err != nil {
		return false
	}
	if len(r.b) < n {
		r.err = io.ErrUnexpectedEOF
		return false
	}
	return true
}
func (r *juteR) i32() int32 {
	if !r.need(4) {
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}
func (r *juteR) i64() int64 {
	if !r.need(8) {
		return 0
	}
	v := int64(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}
func (r *juteR) bytes() []byte {
	n := r.i32()
	if n < 0 || !r.need(int(n)) {
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *juteR) str() string { return string(r.bytes()) }
func (r *juteR) stat() zk.Stat {
	return zk.Stat{
		Czxid: r.i64(), Mzxid: r.i64(), Ctime: r.i64(), Mtime: r.i64(),
		Version: r.i32(), Cversion: r.i32(), Aversion: r.i32(),
		EphemeralOwner: r.i64(), DataLength: r.i32(), NumChildren: r.i32(), Pzxid: r.i64(),
	}
}

// rawConn is one session on one TCP connection; it does no pings, so keep
// its use short or the session times out.
type rawConn struct {
	c         net.Conn
	xid       int32
	SessionID int64
	Timeout   int32
}

type rawReply struct {
	Xid  int32
	Zxid int64
	Err  int32
	Body []byte
}

func rawDial(addr string, timeout time.Duration) (*rawConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	rc := &rawConn{c: c}
	req := (&juteW{}).i32(0).i64(0).i32(int32(timeout.Milliseconds())).i64(0).buf(make([]byte, 16)).boolean(false)
	if err := rc.writeFrame(req.b); err != nil {
		c.Close()
		return nil, err
	}
	body, err := rc.readFrame()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connect response: %w", err)
	}
	r := &juteR{b: body}
	_ = r.i32() // protocol version
	rc.Timeout = r.i32()
	rc.SessionID = r.i64()
	_ = r.bytes()
	if r.err != nil {
		c.Close()
		return nil, r.err
	}
	return rc, nil
}

func (rc *rawConn) writeFrame(b []byte) error {
	_ = rc.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	_, err := rc.c.Write(append(frame, b...))
	return err
}

func (rc *rawConn) readFrame() ([]byte, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(rc.c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("frame too large: %d", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(rc.c, b)
	return b, err
}

// errConnClosedByServer is returned by call when the server drops the
// connection instead of replying.
var errConnClosedByServer = errors.New("server closed the connection")

// call sends one request and returns its reply, skipping watch events.
func (rc *rawConn) call(op int32, body []byte) (*rawReply, error) {
	rc.xid++
	req := (&juteW{}).i32(rc.xid).i32(op)
	req.b = append(req.b, body...)
	if err := rc.writeFrame(req.b); err != nil {
		return nil, errConnClosedByServer
	}
	for {
		b, err := rc.readFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnReset(err) {
				return nil, errConnClosedByServer
			}
			return nil, err
		}
		r := &juteR{b: b}
		rep := &rawReply{Xid: r.i32(), Zxid: r.i64(), Err: r.i32()}
		if r.err != nil {
			return nil, r.err
		}
		rep.Body = r.b
		if rep.Xid == -1 { // watch event
			continue
		}
		if rep.Xid != rc.xid {
			return nil, fmt.Errorf("reply xid %d, want %d", rep.Xid, rc.xid)
		}
		return rep, nil
	}
}

// awaitClose reads (and drops) whatever the server still sends until it
// closes the connection. It fails if the connection is still open after
// timeout.
func (rc *rawConn) awaitClose(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	_ = rc.c.SetReadDeadline(deadline)
	buf := make([]byte, 4096)
	for {
		_, err := rc.c.Read(buf)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("still open after %v", timeout)
		case errors.Is(err, io.EOF), isConnReset(err):
			return nil
		default:
			return err
		}
	}
}

func isConnReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

func (rc *rawConn) Close() error {
	// Best effort closeSession (-11) so the session ends promptly.
	rc.xid++
	_ = rc.writeFrame((&juteW{}).i32(rc.xid).i32(-11).b)
	_ = rc.c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = rc.readFrame()
	return rc.c.Close()
}

func createBody(path string, data []byte, acl []zk.ACL, flags int32) []byte {
	return (&juteW{}).str(path).buf(data).acls(acl).i32(flags).b
}

func pathBody(path string, watch bool) []byte { return (&juteW{}).str(path).boolean(watch).b }
