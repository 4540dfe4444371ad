// Package zookeeper is aurorabox's embedded ZooKeeper: a single-node
// server that speaks the ZooKeeper client wire protocol (3.4–3.8 clients),
// keeps a fsynced transaction log and snapshots in its data dir, and
// answers the four-letter words. Real ZooKeeper clients (zkCli, Curator,
// kazoo, go-zookeeper) talk to it unchanged.
//
// One goroutine, the processor, owns the data tree and the session table
// and applies requests in arrival order, like ZooKeeper's request
// pipeline. It takes requests in batches: it applies a batch in memory,
// writes and fsyncs the batch's transactions once (group commit), and only
// then releases the batch's responses and watch events, so no client sees
// a change that is not durable.
package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Version is what srvr, stat and mntr report. Clients parse the "3.x"
// prefix; the suffix says what answers.
const Version = "3.8.4-aurorabox"

// Config configures a Server. Zero values take Apache ZooKeeper's defaults.
type Config struct {
	ListenAddr        string        // default 127.0.0.1:2181
	DataDir           string        // required
	TickTime          time.Duration // default 2s
	MinSessionTimeout time.Duration // default 2*TickTime
	MaxSessionTimeout time.Duration // default 20*TickTime
	MaxBuffer         int           // largest accepted frame, default 0xfffff (jute.maxbuffer)
	SnapshotCount     int           // transactions between snapshots, default 100000
	MaxClientConns    int           // concurrent connections per client IP, default 60; <0 = no limit
	Logger            *slog.Logger
	Now               func() time.Time
}

func (c *Config) setDefaults() {
	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1:2181"
	}
	if c.TickTime <= 0 {
		c.TickTime = 2 * time.Second
	}
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = 2 * c.TickTime
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 20 * c.TickTime
	}
	if c.MaxSessionTimeout < c.MinSessionTimeout {
		c.MaxSessionTimeout = c.MinSessionTimeout
	}
	if c.MaxBuffer <= 0 {
		c.MaxBuffer = 0xfffff
	}
	if c.SnapshotCount <= 0 {
		c.SnapshotCount = 100000
	}
	if c.MaxClientConns == 0 {
		c.MaxClientConns = 60
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Server is a running embedded ZooKeeper.
type Server struct {
	cfg    Config
	logger *slog.Logger
	p      *processor

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*conn]struct{}
	perIP   map[string]int
	closed  bool
	done    chan struct{} // closed when the processor has stopped
	started time.Time

	nextConn atomic.Int64
	// Traffic of connections that have closed, for srvr's totals.
	closedRecved, closedSent atomic.Int64
}

func (s *Server) listenAddr() string {
	if a := s.Addr(); a != nil {
		return a.String()
	}
	return s.cfg.ListenAddr
}

// New recovers the state in cfg.DataDir and returns a server ready to
// Serve. It fails if the data dir cannot be read or is corrupt.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.DataDir == "" {
		return nil, errors.New("zookeeper: DataDir is required")
	}
	start := time.Now()
	rec, err := recoverState(cfg.DataDir, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: recover %s: %w", cfg.DataDir, err)
	}
	// A crash between a snapshot and its purge leaves one file too many;
	// tidy up now that recovery has read what it needs.
	if err := purge(cfg.DataDir); err != nil {
		cfg.Logger.Warn("zookeeper purge failed", "err", err)
	}
	s := &Server{cfg: cfg, logger: cfg.Logger, conns: map[*conn]struct{}{}, perIP: map[string]int{},
		done: make(chan struct{}), started: cfg.Now()}
	s.p = newProcessor(s, rec)
	cfg.Logger.Info("zookeeper recovered", "data_dir", cfg.DataDir, "zxid", fmt.Sprintf("%#x", rec.zxid),
		"nodes", rec.tree.NodeCount(), "sessions", len(rec.sessions), "replayed", rec.txns, "took", time.Since(start))
	go func() {
		s.p.run()
		close(s.done)
	}()
	return s, nil
}

// Run is the `aurorabox zookeeper` role: it recovers, listens on
// cfg.ListenAddr and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	err = s.ListenAndServe(ctx)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// ListenAndServe listens on the configured address and serves until ctx
// ends or Close is called.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("zookeeper: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts client connections on ln until ctx ends or Close is
// called. It returns ctx.Err() or net.ErrClosed then.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.ln = ln
	s.mu.Unlock()
	s.logger.Info("zookeeper serving", "addr", ln.Addr().String())
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, net.ErrClosed) {
				return net.ErrClosed
			}
			// Out of file descriptors and the like: back off, as
			// net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logger.Warn("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.startConn(nc)
	}
}

// Addr is the address being served, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops accepting, closes every connection and stops the processor
// after it has made pending transactions durable. Sessions stay in the
// log: clients that reconnect to the next server on this data dir within
// their timeout keep them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return s.p.closeErr
	}
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.nc.Close()
	}
	s.p.stop()
	<-s.done
	return s.p.closeErr
}

func (s *Server) startConn(nc net.Conn) {
	host := remoteIP(nc)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if s.cfg.MaxClientConns > 0 && s.perIP[host] >= s.cfg.MaxClientConns {
		s.mu.Unlock()
		s.logger.Warn("too many connections from one address", "addr", host, "max", s.cfg.MaxClientConns)
		nc.Close()
		return
	}
	c := newConn(s, nc, s.nextConn.Add(1))
	s.conns[c] = struct{}{}
	s.perIP[host]++
	s.mu.Unlock()
	go c.writeLoop()
	go c.readLoop()
}

func (s *Server) dropConn(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	s.closedRecved.Add(c.recved.Load())
	s.closedSent.Add(c.sent.Load())
	host := remoteIP(c.nc)
	if s.perIP[host]--; s.perIP[host] <= 0 {
		delete(s.perIP, host)
	}
}

// connList is a snapshot of the open connections, for stat and mntr.
func (s *Server) connList() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

func remoteIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return nc.RemoteAddr().String()
}

// session is a client session. The processor owns it.
type session struct {
	id      int64
	timeout int32 // negotiated, ms
	passwd  []byte
	expires time.Time
	conn    *conn // attached connection, nil while disconnected
}
