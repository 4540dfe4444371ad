package zookeeper

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
)

// conn is one client connection. Its reader goroutine decodes frames and
// hands them to the processor; its writer goroutine sends what the
// processor queued, in order, coalescing frames into few writes.
type conn struct {
	s  *Server
	nc net.Conn
	id int64

	mu      sync.Mutex
	queue   []qitem
	closing bool // close once the queue is written
	wake    chan struct{}
	dead    chan struct{}
	once    sync.Once

	recved, sent atomic.Int64
	queued       atomic.Int64
	opened       time.Time

	// Owned by the processor.
	sess *session
	auth []authID
	shut bool // connect refused or session gone: ignore further requests
}

type authID struct{ scheme, id string }

// qitem is a queued frame; raw ones (four-letter-word answers) go out
// without a length prefix.
type qitem struct {
	b   []byte
	raw bool
}

func newConn(s *Server, nc net.Conn, id int64) *conn {
	return &conn{s: s, nc: nc, id: id, wake: make(chan struct{}, 1), dead: make(chan struct{}), opened: time.Now()}
}

// send queues a frame (without its length prefix).
func (c *conn) send(frame []byte, raw bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.queue = append(c.queue, qitem{frame, raw})
	c.queued.Add(1)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// closeAfterSend closes the connection once everything queued is written.
func (c *conn) closeAfterSend() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// kill closes the connection now.
func (c *conn) kill() {
	c.once.Do(func() {
		close(c.dead)
		c.nc.Close()
	})
}

func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	var hdr [4]byte
	for {
		select {
		case <-c.wake:
		case <-c.dead:
			return
		}
		c.mu.Lock()
		q, closing := c.queue, c.closing
		c.queue = nil
		c.mu.Unlock()
		for _, f := range q {
			if !f.raw {
				binary.BigEndian.PutUint32(hdr[:], uint32(len(f.b)))
				w.Write(hdr[:])
			}
			w.Write(f.b)
			c.queued.Add(-1)
			c.sent.Add(1)
		}
		if err := w.Flush(); err != nil {
			c.kill()
			return
		}
		if closing {
			c.kill()
			return
		}
	}
}

// readLoop reads frames until the connection fails, then tells the
// processor the connection is gone.
func (c *conn) readLoop() {
	defer func() {
		c.kill()
		c.s.dropConn(c)
		c.s.p.submit(request{conn: c, kind: reqClosed})
	}()
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var hdr [4]byte
	first := true
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		if first {
			if cmd := string(hdr[:]); isFourLetter(cmd) {
				c.s.p.submit(request{conn: c, kind: reqFourLetter, flw: cmd})
				// The processor answers and closes; wait for that.
				<-c.dead
				return
			}
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n < 0 || n > c.s.cfg.MaxBuffer || int32(n) < 0 {
			c.s.logger.Warn("closing connection: frame length out of range", "remote", c.nc.RemoteAddr().String(), "len", int32(n))
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		c.recved.Add(1)
		req := request{conn: c, body: frame, at: time.Now()}
		if first {
			req.kind = reqConnect
			first = false
		} else {
			req.kind = reqPacket
			d := jute.NewDecoder(frame)
			req.hdr.Decode(d)
			if d.Err() != nil {
				c.s.logger.Warn("closing connection: short request header", "remote", c.nc.RemoteAddr().String())
				return
			}
			req.body = frame[8:]
		}
		c.s.p.submit(req)
	}
}
