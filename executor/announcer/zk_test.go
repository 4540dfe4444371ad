package announcer

// Test fixtures: ZooKeeper servers (ours in-process, Apache's when
// installed), a TCP proxy that can cut the announcer off and learns its
// session's password, and a raw-protocol session killer.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/aurorabox/aurorabox/appliance/zookeeper"
	"github.com/aurorabox/aurorabox/serverset"
)

const (
	tickTime          = 100 * time.Millisecond
	minSessionTimeout = 2 * tickTime
	maxSessionTimeout = 10 * time.Second
	waitTimeout       = 10 * time.Second // the e2e's bound for re-registration
)

// target is a ZooKeeper server the announcer tests run against.
type target struct {
	name  string
	start func(t *testing.T) string // returns host:port
}

func targets() []target {
	return []target{{"ours", startOurs}, {"real", startReal}}
}

// startOurs runs aurorabox's embedded ZooKeeper in this process on a random
// port of 127.0.0.1.
func startOurs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	addr, _ := runOurs(t, "127.0.0.1:0", dir)
	return addr
}

// runOurs starts our server on addr with dir; stop closes it.
func runOurs(t *testing.T, addr, dir string) (string, func()) {
	t.Helper()
	srv, err := zookeeper.New(zookeeper.Config{
		ListenAddr:        addr,
		DataDir:           dir,
		TickTime:          tickTime,
		MinSessionTimeout: minSessionTimeout,
		MaxSessionTimeout: maxSessionTimeout,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(served) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			_ = srv.Close()
			<-served
		})
	}
	t.Cleanup(stop)
	if err := waitImok(ln.Addr().String(), nil); err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String(), stop
}

// startReal runs Apache ZooKeeper from the Debian packages (zookeeper, a
// JRE) on a random port. It skips the test when they are not installed,
// unless AURORABOX_REQUIRE_REALZK=1.
func startReal(t *testing.T) string {
	t.Helper()
	skip := func(why string) {
		msg := "real Apache ZooKeeper not available: " + why
		if os.Getenv("AURORABOX_REQUIRE_REALZK") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if testing.Short() {
		skip("-short")
	}
	java, err := exec.LookPath("java")
	if err != nil {
		skip("java not in PATH")
	}
	const jar = "/usr/share/java/zookeeper.jar"
	if _, err := os.Stat(jar); err != nil {
		skip(jar + " missing (apt-get install zookeeper)")
	}
	cp := []string{jar}
	for _, extra := range []string{"zookeeper-jute.jar", "slf4j-api.jar", "slf4j-nop.jar"} {
		if p := filepath.Join("/usr/share/java", extra); fileExists(p) {
			cp = append(cp, p)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	dir := t.TempDir()
	cfg := fmt.Sprintf("tickTime=%d\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"minSessionTimeout=%d\nmaxSessionTimeout=%d\nmaxClientCnxns=0\n4lw.commands.whitelist=*\nadmin.enableServer=false\n",
		tickTime.Milliseconds(), filepath.Join(dir, "data"), port, minSessionTimeout.Milliseconds(), maxSessionTimeout.Milliseconds())
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(java, "-Xmx256m", "-Dzookeeper.admin.enableServer=false",
		"-cp", strings.Join(cp, ":"), "org.apache.zookeeper.server.ZooKeeperServerMain", cfgPath)
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, dir
	if err := cmd.Start(); err != nil {
		logf.Close()
		skip(err.Error())
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Logf("Apache ZooKeeper log:\n%s", log)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitImok(addr, exited); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		t.Fatalf("Apache ZooKeeper did not start: %v\n%s", err, log)
	}
	return addr
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// waitImok polls ruok until imok, the process exits or 30 s pass.
func waitImok(addr string, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("server exited: %v", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("ruok"))
			out, _ := io.ReadAll(c)
			c.Close()
			if string(out) == "imok" {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("no imok within 30s")
}

// testLogger logs to t until the test's cleanups have run; later messages
// (the ZooKeeper client's goroutines winding down) are dropped.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close) // registered first, so it runs last
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// observe opens an independent client session on addr.
func observe(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	c, ev, err := zk.Connect([]string{addr}, 5*time.Second, zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	deadline := time.After(waitTimeout)
	for {
		select {
		case e := <-ev:
			if e.State == zk.StateHasSession {
				return c
			}
		case <-deadline:
			t.Fatalf("observer: no session with %s", addr)
		}
	}
}

// members lists the member znodes under p, sorted ("" entries never).
func members(t *testing.T, c *zk.Conn, p string) []string {
	t.Helper()
	children, _, err := c.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		t.Fatalf("children %s: %v", p, err)
	}
	var out []string
	for _, ch := range children {
		if strings.HasPrefix(ch, serverset.MemberPrefix) {
			out = append(out, p+"/"+ch)
		}
	}
	slices.Sort(out)
	return out
}

// waitMembers waits, with child watches, until cond holds for the members
// under p, and returns them. It fails the test after timeout.
func waitMembers(t *testing.T, c *zk.Conn, p string, timeout time.Duration, what string, cond func([]string) bool) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		children, _, ch, err := c.ChildrenW(p)
		if errors.Is(err, zk.ErrNoNode) {
			var ech <-chan zk.Event
			_, _, ech, err = c.ExistsW(p)
			ch = ech
		}
		if err != nil {
			t.Fatalf("watch %s: %v", p, err)
		}
		var ms []string
		for _, name := range children {
			if strings.HasPrefix(name, serverset.MemberPrefix) {
				ms = append(ms, p+"/"+name)
			}
		}
		slices.Sort(ms)
		if cond(ms) {
			return ms
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: not within %v; members %v", what, timeout, ms)
		}
	}
}

// tcpProxy forwards a local port to a ZooKeeper server. It can cut the
// connections and refuse new ones (a partition), and it reads the
// ConnectResponse the server sends on each connection, which holds the
// session id and password a session killer needs.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	paused   bool
	held     chan struct{} // non-nil while holding: closed by Release
	conns    map[net.Conn]struct{}
	sessions []session // in the order they were seen
	wg       sync.WaitGroup
}

type session struct {
	id     int64
	passwd []byte
}

func newProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		paused, held := p.paused, p.held
		p.mu.Unlock()
		if paused {
			c.Close()
			continue
		}
		if held == nil {
			p.connect(c)
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			<-held
			p.connect(c)
		}()
	}
}

// connect joins a client connection to a new server connection.
func (p *tcpProxy) connect(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	p.wg.Add(2)
	go p.pipe(c, up, true) // server to client
	go p.pipe(up, c, false)
}

func (p *tcpProxy) pipe(dst, src net.Conn, fromServer bool) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	if fromServer {
		// The first frame is the ConnectResponse: protocolVersion int32,
		// timeOut int32, sessionId int64, passwd buffer, [readOnly].
		var hdr [4]byte
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(src, body); err != nil {
			return
		}
		if len(body) >= 20 {
			id := int64(binary.BigEndian.Uint64(body[8:16]))
			n := int(int32(binary.BigEndian.Uint32(body[16:20])))
			if id != 0 && n >= 0 && 20+n <= len(body) {
				p.mu.Lock()
				p.sessions = append(p.sessions, session{id: id, passwd: bytes.Clone(body[20 : 20+n])})
				p.mu.Unlock()
			}
		}
		if _, err := dst.Write(append(hdr[:], body...)); err != nil {
			return
		}
	}
	_, _ = io.Copy(dst, src)
}

// lastSession is the most recent session the server granted through the proxy.
func (p *tcpProxy) lastSession(t *testing.T) session {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sessions) == 0 {
		t.Fatal("proxy saw no session")
	}
	return p.sessions[len(p.sessions)-1]
}

// Pause cuts every connection and refuses new ones until Resume.
func (p *tcpProxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) Resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// Hold cuts every connection; new ones are accepted but not forwarded
// until Release, so a client's reconnection reaches the server the moment
// Release is called.
func (p *tcpProxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = make(chan struct{})
	}
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
}

func (p *tcpProxy) close() {
	p.ln.Close()
	p.Release()
	p.Pause()
	p.wg.Wait()
}

// killSession closes a session from outside, the way Curator's
// KillSession and kazoo's tests do: a second connection attaches to the
// session with its id and password (the server drops the owner's
// connection) and sends closeSession (the server deletes its ephemerals).
// The owner finds its session expired when it reconnects.
func killSession(t *testing.T, addr string, s session) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	be := binary.BigEndian
	var req []byte
	req = be.AppendUint32(req, 0)                                        // protocolVersion
	req = be.AppendUint64(req, 0)                                        // lastZxidSeen
	req = be.AppendUint32(req, uint32(maxSessionTimeout.Milliseconds())) // timeOut
	req = be.AppendUint64(req, uint64(s.id))                             // sessionId
	req = be.AppendUint32(req, uint32(len(s.passwd)))                    // passwd
	req = append(req, s.passwd...)
	req = append(req, 0) // readOnly
	resp := roundTrip(t, c, req)
	if len(resp) < 16 || int64(be.Uint64(resp[8:16])) != s.id {
		t.Fatalf("could not attach to session %#x (already gone?): response %x", s.id, resp)
	}
	var closeReq []byte
	opCloseSession := int32(-11)
	closeReq = be.AppendUint32(closeReq, 1)                      // xid
	closeReq = be.AppendUint32(closeReq, uint32(opCloseSession)) // type
	// Apache ZooKeeper closes the connection of a closed session without
	// answering (FinalRequestProcessor); ours answers first. Either will do.
	reply, err := roundTripErr(c, closeReq)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
	case err != nil:
		t.Fatalf("closeSession: %v", err)
	case len(reply) < 16 || be.Uint32(reply[0:4]) != 1 || be.Uint32(reply[12:16]) != 0:
		t.Fatalf("closeSession reply %x", reply)
	}
}

func roundTrip(t *testing.T, c net.Conn, body []byte) []byte {
	t.Helper()
	resp, err := roundTripErr(c, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// roundTripErr sends one frame and reads one back.
func roundTripErr(c net.Conn, body []byte) ([]byte, error) {
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := c.Write(append(frame, body...)); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c, resp); err != nil {
		return nil, err
	}
	return resp, nil
}
