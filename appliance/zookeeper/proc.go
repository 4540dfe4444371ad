package zookeeper

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
	"github.com/aurorabox/aurorabox/appliance/zookeeper/ztree"
)

type reqKind int

const (
	reqConnect reqKind = iota
	reqPacket
	reqClosed
	reqFourLetter
)

// request is what a connection hands the processor.
type request struct {
	conn *conn
	kind reqKind
	hdr  jute.RequestHeader
	body []byte // after the header
	flw  string
	at   time.Time
}

// outItem is a frame held until the batch it belongs to is durable.
type outItem struct {
	c     *conn
	frame []byte
	raw   bool      // no length prefix (four-letter words)
	close bool      // close the connection after this (frame may be nil)
	at    time.Time // request arrival, for latency; zero for notifications
}

// processor applies requests one at a time; see the package comment.
type processor struct {
	s      *Server
	cfg    Config
	in     chan request
	quit   chan struct{}
	halted chan struct{} // closed when run returns

	tree     *ztree.Tree
	watches  *ztree.Watches
	sessions map[int64]*session
	conns    map[ztree.WatcherID]*conn
	zxid     int64
	wal      *wal
	out      []outItem

	nextSession int64
	sinceSnap   int
	snapping    atomic.Bool
	snapDone    chan struct{}

	// Latency and traffic figures for srvr/mntr, in ms.
	latMin, latMax, latSum, latN int64
	closeErr                     error
}

func newProcessor(s *Server, rec *recovered) *processor {
	p := &processor{
		s: s, cfg: s.cfg, in: make(chan request, 1024), quit: make(chan struct{}), halted: make(chan struct{}),
		tree: rec.tree, watches: ztree.NewWatches(), sessions: rec.sessions,
		conns: map[ztree.WatcherID]*conn{}, zxid: rec.zxid, wal: rec.wal, latMin: -1,
		sinceSnap: rec.txns,
	}
	p.tree.TakeChanges() // replay's changes: no watch can be waiting for them
	now := p.cfg.Now()
	// Recovered sessions get a full timeout to reconnect, as in ZooKeeper;
	// those whose clients are gone expire then, taking their ephemerals.
	for _, sess := range p.sessions {
		sess.expires = now.Add(time.Duration(sess.timeout) * time.Millisecond)
	}
	// Session ids as ZooKeeper makes them: time in the high bits, so ids
	// from before a restart are not reused.
	p.nextSession = int64(uint64(now.UnixMilli()<<24) >> 8)
	return p
}

// submit hands r to the processor; it drops r once the processor stopped.
func (p *processor) submit(r request) {
	select {
	case p.in <- r:
	case <-p.halted:
		if r.conn != nil {
			r.conn.kill()
		}
	}
}

func (p *processor) stop() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
}

func (p *processor) run() {
	defer close(p.halted)
	tick := p.cfg.TickTime / 2
	if tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case r := <-p.in:
			p.handle(r)
		drain:
			for i := 0; i < 4096; i++ {
				select {
				case r := <-p.in:
					p.handle(r)
				default:
					break drain
				}
			}
		case <-ticker.C:
			p.expireSessions()
		case <-p.quit:
			p.shutdown()
			return
		}
		if err := p.commit(); err != nil {
			p.s.logger.Error("zookeeper: cannot write the transaction log; stopping", "err", err)
			p.closeErr = err
			p.out = nil
			go p.s.Close()
			<-p.quit
			p.shutdown()
			return
		}
	}
}

func (p *processor) shutdown() {
	if p.closeErr == nil {
		p.closeErr = p.commit()
	}
	if p.snapDone != nil {
		<-p.snapDone
	}
	if err := p.wal.close(); err != nil && p.closeErr == nil {
		p.closeErr = err
	}
	for _, c := range p.conns {
		c.kill()
	}
}

// commit makes the batch durable, then releases its output.
func (p *processor) commit() error {
	if p.wal.pending() {
		if err := p.wal.sync(); err != nil {
			return err
		}
	}
	now := time.Now()
	for _, o := range p.out {
		if o.frame != nil {
			o.c.send(o.frame, o.raw)
		}
		if o.close {
			o.c.closeAfterSend()
		}
		if !o.at.IsZero() {
			p.recordLatency(now.Sub(o.at).Milliseconds())
		}
	}
	clear(p.out)
	p.out = p.out[:0]
	if p.sinceSnap >= p.cfg.SnapshotCount && !p.snapping.Load() {
		return p.snapshot()
	}
	return nil
}

func (p *processor) recordLatency(ms int64) {
	if p.latMin < 0 || ms < p.latMin {
		p.latMin = ms
	}
	p.latMax = max(p.latMax, ms)
	p.latSum += ms
	p.latN++
}

// snapshot rolls the log and writes a snapshot of the current, durable
// state in the background.
func (p *processor) snapshot() error {
	b := snapshotBytes(p.zxid, p.tree, p.sessions)
	if err := p.wal.close(); err != nil {
		return err
	}
	w, err := openLog(p.cfg.DataDir, p.zxid+1, 0, p.s.logger)
	if err != nil {
		return err
	}
	p.wal = w
	p.sinceSnap = 0
	p.snapping.Store(true)
	done := make(chan struct{})
	p.snapDone = done
	zxid := p.zxid
	go func() {
		defer close(done)
		defer p.snapping.Store(false)
		start := time.Now()
		if err := writeSnapshot(p.cfg.DataDir, zxid, b); err != nil {
			p.s.logger.Error("zookeeper snapshot failed", "zxid", fmt.Sprintf("%#x", zxid), "err", err)
			return
		}
		if err := purge(p.cfg.DataDir); err != nil {
			p.s.logger.Warn("zookeeper purge failed", "err", err)
		}
		p.s.logger.Info("zookeeper snapshot", "zxid", fmt.Sprintf("%#x", zxid), "bytes", len(b), "took", time.Since(start))
	}()
	return nil
}

// ---- output helpers -----------------------------------------------------------

func (p *processor) reply(r *request, zxid int64, code jute.Code, body func(*jute.Encoder)) {
	e := jute.Encoder{B: make([]byte, 0, 64)}
	h := jute.ReplyHeader{Xid: r.hdr.Xid, Zxid: zxid, Err: code}
	h.Encode(&e)
	if code == jute.OK && body != nil {
		body(&e)
	}
	p.out = append(p.out, outItem{c: r.conn, frame: e.B, at: r.at})
}

func (p *processor) closeConn(c *conn) {
	c.shut = true
	p.out = append(p.out, outItem{c: c, close: true})
}

func (p *processor) notify(c *conn, typ int32, path string) {
	e := jute.Encoder{B: make([]byte, 0, 32+len(path))}
	h := jute.ReplyHeader{Xid: jute.XidNotification, Zxid: -1}
	h.Encode(&e)
	ev := jute.WatcherEvent{Type: typ, State: jute.StateSyncConnected, Path: path}
	ev.Encode(&e)
	p.out = append(p.out, outItem{c: c, frame: e.B})
}

// fire turns the tree's pending changes into notifications.
func (p *processor) fire() {
	for _, ev := range p.watches.Fire(p.tree.TakeChanges()) {
		if c := p.conns[ev.Watcher]; c != nil {
			p.notify(c, ev.Type, ev.Path)
		}
	}
}

func (p *processor) log(t txn) {
	p.wal.append(&t)
	p.sinceSnap++
}

func (p *processor) now() int64 { return p.cfg.Now().UnixMilli() }

// ---- dispatch ------------------------------------------------------------------

func (p *processor) handle(r request) {
	c := r.conn
	switch r.kind {
	case reqClosed:
		p.detach(c)
	case reqFourLetter:
		p.out = append(p.out, outItem{c: c, frame: p.fourLetter(r.flw), raw: true})
		p.closeConn(c)
	case reqConnect:
		p.connect(r)
	case reqPacket:
		if c.shut || c.sess == nil {
			return
		}
		c.sess.expires = p.cfg.Now().Add(time.Duration(c.sess.timeout) * time.Millisecond)
		p.packet(r)
	}
}

func (p *processor) detach(c *conn) {
	delete(p.conns, ztree.WatcherID(c.id))
	p.watches.Remove(ztree.WatcherID(c.id))
	if s := c.sess; s != nil && s.conn == c {
		s.conn = nil
	}
	c.sess = nil
	c.shut = true
}

func (p *processor) connect(r request) {
	c := r.conn
	var cr jute.ConnectRequest
	d := jute.NewDecoder(r.body)
	cr.Decode(d)
	if d.Err() != nil {
		p.s.logger.Warn("closing connection: malformed connect request", "remote", c.nc.RemoteAddr().String(), "err", d.Err())
		p.closeConn(c)
		return
	}
	if cr.LastZxidSeen > p.zxid {
		// The client has seen a newer state than ours: ZooKeeper refuses
		// so that it tries another server instead of going back in time.
		p.s.logger.Warn("refusing session: client has seen a newer zxid", "client_zxid", fmt.Sprintf("%#x", cr.LastZxidSeen),
			"our_zxid", fmt.Sprintf("%#x", p.zxid))
		p.closeConn(c)
		return
	}
	timeout := time.Duration(cr.Timeout) * time.Millisecond
	timeout = min(max(timeout, p.cfg.MinSessionTimeout), p.cfg.MaxSessionTimeout)
	resp := jute.ConnectResponse{HasReadOnly: cr.HasReadOnly}
	var sess *session
	if cr.SessionID == 0 {
		sess = &session{id: p.newSessionID(), timeout: int32(timeout.Milliseconds()), passwd: make([]byte, 16)}
		_, _ = rand.Read(sess.passwd)
		p.sessions[sess.id] = sess
		p.zxid++
		p.log(txn{Session: sess.id, Zxid: p.zxid, Time: p.now(), Type: jute.OpCreateSession, Timeout: sess.timeout, Passwd: sess.passwd})
	} else {
		s, ok := p.sessions[cr.SessionID]
		if !ok || !bytes.Equal(s.passwd, cr.Passwd) {
			// Expired (or never ours): timeout 0 tells the client so.
			resp.Passwd = make([]byte, 16)
			e := jute.Encoder{}
			resp.Encode(&e)
			p.out = append(p.out, outItem{c: c, frame: e.B})
			p.closeConn(c)
			return
		}
		if old := s.conn; old != nil && old != c {
			p.detach(old)
			p.closeConn(old)
		}
		sess = s
	}
	sess.conn = c
	sess.expires = p.cfg.Now().Add(time.Duration(sess.timeout) * time.Millisecond)
	c.sess = sess
	c.auth = []authID{{"ip", remoteIP(c.nc)}}
	p.conns[ztree.WatcherID(c.id)] = c
	resp.Timeout, resp.SessionID, resp.Passwd = sess.timeout, sess.id, sess.passwd
	e := jute.Encoder{}
	resp.Encode(&e)
	p.out = append(p.out, outItem{c: c, frame: e.B, at: r.at})
}

func (p *processor) newSessionID() int64 {
	for {
		p.nextSession++
		if _, taken := p.sessions[p.nextSession]; !taken && p.nextSession != 0 {
			return p.nextSession
		}
	}
}

// expireSessions closes the sessions whose clients have gone quiet.
func (p *processor) expireSessions() {
	now := p.cfg.Now()
	for id, s := range p.sessions {
		if now.Before(s.expires) {
			continue
		}
		p.s.logger.Info("session expired", "session", fmt.Sprintf("%#x", id), "timeout_ms", s.timeout)
		p.closeSession(s)
		if c := s.conn; c != nil {
			p.detach(c)
			p.closeConn(c)
		}
	}
}

func (p *processor) closeSession(s *session) int64 {
	p.zxid++
	p.tree.CloseSession(s.id, p.zxid)
	p.log(txn{Session: s.id, Zxid: p.zxid, Time: p.now(), Type: jute.OpCloseSession})
	delete(p.sessions, s.id)
	p.fire()
	return p.zxid
}

func (p *processor) who(c *conn) *ztree.Who {
	w := &ztree.Who{IDs: make([]ztree.ID, len(c.auth))}
	for i, a := range c.auth {
		w.IDs[i] = ztree.ID{Scheme: a.scheme, ID: a.id}
	}
	return w
}

// malformed closes a connection whose request body did not decode, as
// ZooKeeper does on a marshalling error.
func (p *processor) malformed(r *request, err error) {
	p.s.logger.Warn("closing connection: malformed request", "remote", r.conn.nc.RemoteAddr().String(),
		"op", r.hdr.Type, "err", err)
	p.detach(r.conn)
	p.closeConn(r.conn)
}

func (p *processor) packet(r request) {
	c := r.conn
	d := jute.NewDecoder(r.body)
	switch r.hdr.Type {
	case jute.OpPing:
		p.reply(&r, p.zxid, jute.OK, nil)
	case jute.OpCloseSession:
		zxid := p.closeSession(c.sess)
		p.reply(&r, zxid, jute.OK, nil)
		p.detach(c)
		p.closeConn(c)
	case jute.OpAuth:
		var a jute.AuthPacket
		a.Decode(d)
		if d.Err() != nil {
			p.malformed(&r, d.Err())
			return
		}
		if a.Scheme != "digest" {
			p.reply(&r, p.zxid, jute.ErrAuthFailed, nil)
			p.detach(c)
			p.closeConn(c)
			return
		}
		id := authID{"digest", ztree.DigestID(string(a.Auth))}
		found := false
		for _, x := range c.auth {
			found = found || x == id
		}
		if !found {
			c.auth = append(c.auth, id)
		}
		p.reply(&r, p.zxid, jute.OK, nil)
	case jute.OpSetWatches, jute.OpSetWatches2:
		var sw jute.SetWatches
		sw.Decode(d, r.hdr.Type == jute.OpSetWatches2)
		if d.Err() != nil {
			p.malformed(&r, d.Err())
			return
		}
		p.setWatches(c, &sw)
		p.reply(&r, p.zxid, jute.OK, nil)
	case jute.OpSync:
		path := d.String()
		if d.Err() != nil {
			p.malformed(&r, d.Err())
			return
		}
		p.reply(&r, p.zxid, jute.OK, func(e *jute.Encoder) { e.String(path) })
	case jute.OpExists, jute.OpGetData, jute.OpGetChildren, jute.OpGetChildren2, jute.OpGetACL,
		jute.OpGetEphemerals, jute.OpGetAllChildren, jute.OpWhoAmI:
		p.read(r, d)
	case jute.OpCreate, jute.OpCreate2, jute.OpCreateContainer, jute.OpCreateTTL, jute.OpDelete,
		jute.OpSetData, jute.OpSetACL:
		p.writeOne(r, d)
	case jute.OpMulti:
		p.multi(r, d)
	default:
		// As ZooKeeper: answer Unimplemented, then drop the connection (the
		// session lives on, for the client to resume).
		p.reply(&r, p.zxid, jute.ErrUnimplemented, nil)
		p.detach(r.conn)
		p.closeConn(r.conn)
	}
}

func (p *processor) read(r request, d *jute.Decoder) {
	c := r.conn
	wid := ztree.WatcherID(c.id)
	who := p.who(c)
	var pw jute.PathWatch
	switch r.hdr.Type {
	case jute.OpGetACL, jute.OpGetEphemerals, jute.OpGetAllChildren:
		pw.Path = d.String()
	case jute.OpWhoAmI:
	default:
		pw.Decode(d)
	}
	if d.Err() != nil {
		p.malformed(&r, d.Err())
		return
	}
	switch r.hdr.Type {
	case jute.OpExists:
		st, ok := p.tree.Exists(pw.Path)
		if pw.Watch {
			p.watches.AddData(pw.Path, wid)
		}
		if !ok {
			p.reply(&r, p.zxid, jute.ErrNoNode, nil)
			return
		}
		p.reply(&r, p.zxid, jute.OK, func(e *jute.Encoder) { e.Stat(&st) })
	case jute.OpGetData:
		data, st, err := p.tree.Get(pw.Path, who)
		if err == nil && pw.Watch {
			p.watches.AddData(pw.Path, wid)
		}
		p.reply(&r, p.zxid, jute.CodeOf(err), func(e *jute.Encoder) { e.Buffer(data); e.Stat(&st) })
	case jute.OpGetChildren, jute.OpGetChildren2:
		kids, st, err := p.tree.Children(pw.Path, who)
		if err == nil && pw.Watch {
			p.watches.AddChild(pw.Path, wid)
		}
		two := r.hdr.Type == jute.OpGetChildren2
		p.reply(&r, p.zxid, jute.CodeOf(err), func(e *jute.Encoder) {
			e.Strings(kids)
			if two {
				e.Stat(&st)
			}
		})
	case jute.OpGetACL:
		acl, st, err := p.tree.GetACL(pw.Path, who)
		p.reply(&r, p.zxid, jute.CodeOf(err), func(e *jute.Encoder) { e.ACLs(acl); e.Stat(&st) })
	case jute.OpGetEphemerals:
		var out []string
		for _, e := range p.tree.Ephemerals(c.sess.id) {
			if strings.HasPrefix(e, pw.Path) {
				out = append(out, e)
			}
		}
		p.reply(&r, p.zxid, jute.OK, func(e *jute.Encoder) { e.Strings(out) })
	case jute.OpGetAllChildren:
		n, err := p.tree.Descendants(pw.Path, who)
		p.reply(&r, p.zxid, jute.CodeOf(err), func(e *jute.Encoder) { e.Int32(int32(n)) })
	case jute.OpWhoAmI:
		p.reply(&r, p.zxid, jute.OK, func(e *jute.Encoder) {
			e.Int32(int32(len(c.auth)))
			for _, a := range c.auth {
				e.String(a.scheme)
				e.String(a.id)
			}
		})
	}
}

// setWatches re-registers watches after a reconnect, firing at once those
// whose condition already changed after relativeZxid, as ZooKeeper does.
func (p *processor) setWatches(c *conn, sw *jute.SetWatches) {
	wid := ztree.WatcherID(c.id)
	for _, path := range sw.Data {
		st, ok := p.tree.Exists(path)
		switch {
		case !ok:
			p.notify(c, jute.EventNodeDeleted, path)
		case st.Mzxid > sw.RelativeZxid:
			p.notify(c, jute.EventNodeDataChanged, path)
		default:
			p.watches.AddData(path, wid)
		}
	}
	for _, path := range sw.Exist {
		if _, ok := p.tree.Exists(path); ok {
			p.notify(c, jute.EventNodeCreated, path)
		} else {
			p.watches.AddData(path, wid)
		}
	}
	for _, path := range sw.Child {
		st, ok := p.tree.Exists(path)
		switch {
		case !ok:
			p.notify(c, jute.EventNodeDeleted, path)
		case st.Pzxid > sw.RelativeZxid:
			p.notify(c, jute.EventNodeChildrenChanged, path)
		default:
			p.watches.AddChild(path, wid)
		}
	}
}
