package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// The test binary re-executes itself as a server process for the crash
// tests, so that it can be killed with SIGKILL.
const (
	childEnv     = "AURORABOX_ZK_TEST_SERVE"
	childAddrEnv = "AURORABOX_ZK_TEST_ADDR"
	childDirEnv  = "AURORABOX_ZK_TEST_DIR"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		cfg := Config{ListenAddr: os.Getenv(childAddrEnv), DataDir: os.Getenv(childDirEnv),
			TickTime: 100 * time.Millisecond, SnapshotCount: 200,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
		if err := Run(context.Background(), cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func ruok(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	io.WriteString(c, "ruok")
	b, _ := io.ReadAll(c)
	return string(b) == "imok"
}

func waitReady(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ruok(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("server at %s not ready", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startChild runs the server as a child process and returns it.
func startChild(t testing.TB, addr, dir string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childAddrEnv+"="+addr, childDirEnv+"="+dir)
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(dir), "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	waitReady(t, addr)
	return cmd
}

func dial(t testing.TB, addr string, timeout time.Duration) *zk.Conn {
	t.Helper()
	c, ev, err := zk.Connect([]string{addr}, timeout, zk.WithLogger(quiet{}), zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-ev:
			if e.State == zk.StateHasSession {
				return c
			}
		case <-deadline:
			t.Fatalf("no session with %s", addr)
		}
	}
}

// TestCrashKeepsAcknowledgedWrites writes nodes from several clients at
// once, kills the server with SIGKILL in the middle of the stream, restarts
// it and checks that every acknowledged create and setData is there. The
// small snapshot count makes the kill land around snapshots and log rolls
// too.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	base := t.TempDir()
	dir, addr := filepath.Join(base, "data"), freeAddr(t)
	for round := 0; round < 3; round++ {
		cmd := startChild(t, addr, dir)
		c := dial(t, addr, 5*time.Second)
		if round == 0 {
			if _, err := c.Create("/crash", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		acked := map[string]string{}
		// A write in flight when the server died may or may not have
		// landed; either outcome is right.
		inflight := map[string]string{}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					p := fmt.Sprintf("/crash/r%d-w%d-%d", round, w, i)
					v := fmt.Sprintf("v%d", i)
					if _, err := c.Create(p, []byte(v), 0, zk.WorldACL(zk.PermAll)); err != nil {
						return // the server died; this create is not acknowledged
					}
					mu.Lock()
					acked[p] = v
					mu.Unlock()
					if i%3 == 0 {
						mu.Lock()
						inflight[p] = v + "+"
						mu.Unlock()
						if _, err := c.Set(p, []byte(v+"+"), 0); err != nil {
							return
						}
						mu.Lock()
						acked[p] = v + "+"
						mu.Unlock()
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(150+100*round) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		close(stop)
		wg.Wait()
		c.Close()
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n < 10 {
			t.Fatalf("round %d: only %d writes acknowledged before the kill", round, n)
		}

		startChild(t, addr, dir)
		c2 := dial(t, addr, 5*time.Second)
		for p, v := range acked {
			d, _, err := c2.Get(p)
			if err != nil || string(d) != v && string(d) != inflight[p] {
				t.Fatalf("round %d: acknowledged %s=%q, after restart %q %v", round, p, v, d, err)
			}
		}
		// Consistency: the children list and Stat agree, and names are unique.
		kids, st, err := c2.Children("/crash")
		if err != nil {
			t.Fatal(err)
		}
		if int(st.NumChildren) != len(kids) {
			t.Fatalf("numChildren %d, %d children listed", st.NumChildren, len(kids))
		}
		t.Logf("round %d: %d writes acknowledged, %d nodes after restart", round, n, len(kids))
		// The restarted server takes writes.
		if _, err := c2.Create(fmt.Sprintf("/crash/after-%d", round), nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
		c2.Close()
		// Leave the server for the next round's kill: stop it abruptly too.
	}
	// Snapshots happened and old files were purged.
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshot.*"))
	if len(snaps) == 0 || len(snaps) > keepSnaps {
		t.Errorf("%d snapshots in %s, want 1..%d", len(snaps), dir, keepSnaps)
	}
}

// newServer runs an in-process server on dir.
func newServer(t testing.TB, dir string, mut func(*Config)) (*Server, string) {
	t.Helper()
	cfg := Config{ListenAddr: "127.0.0.1:0", DataDir: dir, TickTime: 50 * time.Millisecond}
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(context.Background(), ln)
	t.Cleanup(func() { s.Close() })
	waitReady(t, ln.Addr().String())
	return s, ln.Addr().String()
}

// TestRecoveryFromSnapshotsAndLogs restarts on the same data dir across
// many snapshots and checks the tree is exactly what it was.
func TestRecoveryFromSnapshotsAndLogs(t *testing.T) {
	dir := t.TempDir()
	s, addr := newServer(t, dir, func(c *Config) { c.SnapshotCount = 37 })
	c := dial(t, addr, 2*time.Second)
	want := map[string]string{}
	acl := zk.WorldACL(zk.PermAll)
	for i := 0; i < 300; i++ {
		p := fmt.Sprintf("/n%03d", i)
		if _, err := c.Create(p, []byte(p), 0, acl); err != nil {
			t.Fatal(err)
		}
		want[p] = p
		if i%5 == 0 {
			if err := c.Delete(p, -1); err != nil {
				t.Fatal(err)
			}
			delete(want, p)
		}
		if i%7 == 0 {
			if _, err := c.Multi(&zk.CreateRequest{Path: p + "-m", Data: []byte("m"), Acl: acl},
				&zk.SetDataRequest{Path: "/n000", Data: []byte(p), Version: -1}); err == nil {
				want[p+"-m"] = "m"
			}
		}
	}
	seq, err := c.Create("/s-", nil, zk.FlagSequence, acl)
	if err != nil {
		t.Fatal(err)
	}
	_, stBefore, _ := c.Exists("/n001")
	c.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if snaps, _ := filepath.Glob(filepath.Join(dir, "snapshot.*")); len(snaps) == 0 || len(snaps) > keepSnaps {
		t.Fatalf("snapshots: %v", snaps)
	}

	_, addr = newServer(t, dir, nil)
	c = dial(t, addr, 2*time.Second)
	kids, _, err := c.Children("/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range kids {
		if k == "zookeeper" || "/"+k == seq {
			continue
		}
		d, _, err := c.Get("/" + k)
		if err != nil {
			t.Fatal(err)
		}
		if want["/"+k] != string(d) && k != "n000" {
			t.Errorf("/%s = %q, want %q", k, d, want["/"+k])
		}
		got = append(got, k)
	}
	if len(got) != len(want) {
		t.Errorf("%d nodes after recovery, want %d", len(got), len(want))
	}
	_, stAfter, _ := c.Exists("/n001")
	if *stAfter != *stBefore {
		t.Errorf("stat changed across recovery: %+v -> %+v", stBefore, stAfter)
	}
	// The sequence counter survived: the next sequential node follows.
	next, err := c.Create("/s-", nil, zk.FlagSequence, acl)
	if err != nil || next <= seq {
		t.Errorf("sequential after recovery: %q (before %q) %v", next, seq, err)
	}
}

// TestTornLogTail appends garbage after the last record, as a crash in the
// middle of a write would, and checks recovery drops it and keeps going.
func TestTornLogTail(t *testing.T) {
	dir := t.TempDir()
	s, addr := newServer(t, dir, nil)
	c := dial(t, addr, 2*time.Second)
	if _, err := c.Create("/kept", []byte("yes"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	s.Close()
	logs, _ := filepath.Glob(filepath.Join(dir, "log.*"))
	sort.Strings(logs)
	last := logs[len(logs)-1]
	// Find the end of the records and write a half record there.
	off, err := readLog(last, func(txn) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(last, os.O_WRONLY, 0)
	f.WriteAt([]byte{0, 0, 0, 40, 1, 2, 3, 4, 9, 9}, off)
	f.Close()

	_, addr = newServer(t, dir, nil)
	c = dial(t, addr, 2*time.Second)
	if d, _, err := c.Get("/kept"); err != nil || string(d) != "yes" {
		t.Fatalf("/kept after torn tail: %q %v", d, err)
	}
	if _, err := c.Create("/after", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptSnapshotFallsBack corrupts the newest snapshot: recovery uses
// an older one plus the logs.
func TestCorruptSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	s, addr := newServer(t, dir, func(c *Config) { c.SnapshotCount = 10 })
	c := dial(t, addr, 2*time.Second)
	for i := 0; i < 45; i++ {
		if _, err := c.Create(fmt.Sprintf("/c%02d", i), nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	s.Close()
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshot.*"))
	sort.Strings(snaps)
	if len(snaps) < 2 {
		t.Fatalf("want at least 2 snapshots, have %v", snaps)
	}
	b, _ := os.ReadFile(snaps[len(snaps)-1])
	b[len(b)/2] ^= 0xff
	os.WriteFile(snaps[len(snaps)-1], b, 0o600)

	// And a snapshot write that a crash interrupted leaves its temporary
	// file, which recovery removes.
	leftover := filepath.Join(dir, "."+filepath.Base(snaps[len(snaps)-1])+".123.tmp")
	os.WriteFile(leftover, b[:len(b)/3], 0o600)

	_, addr = newServer(t, dir, nil)
	c = dial(t, addr, 2*time.Second)
	for i := 0; i < 45; i++ {
		if ok, _, err := c.Exists(fmt.Sprintf("/c%02d", i)); !ok || err != nil {
			t.Fatalf("/c%02d missing after recovery from an older snapshot: %v", i, err)
		}
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("the interrupted snapshot's temporary file is still there: %v", err)
	}
}

// TestSessionExpiresAfterRestart: a session whose client never comes back
// after a restart expires one timeout later and its ephemerals go.
func TestSessionExpiresAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s, addr := newServer(t, dir, nil)
	c := dial(t, addr, 500*time.Millisecond)
	if _, err := c.Create("/eph", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	s.Close() // the client is cut off; its session is still in the log
	c.Close()

	_, addr = newServer(t, dir, nil)
	obs := dial(t, addr, 5*time.Second)
	ok, _, ch, err := obs.ExistsW("/eph")
	if err != nil || !ok {
		t.Fatalf("ephemeral of a live session lost across restart: %v %v", ok, err)
	}
	select {
	case ev := <-ch:
		if ev.Type != zk.EventNodeDeleted {
			t.Fatalf("event %v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ephemeral of the abandoned session was not removed")
	}
}

// TestMalformedFrames: garbage, a negative length and a huge length each
// close that connection only.
func TestMalformedFrames(t *testing.T) {
	_, addr := newServer(t, t.TempDir(), nil)
	c := dial(t, addr, 2*time.Second)
	for _, frame := range [][]byte{
		{0xff, 0xff, 0xff, 0xff}, // length -1
		{0x7f, 0, 0, 0},          // 2 GB
		{0, 0, 0, 3, 1, 2, 3},    // a connect request cut short
		[]byte("\x00\x00\x00\x2cnot a connect request at all, but 44 bytes!!"), // nonsense
	} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(frame)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(nc)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("frame %q: connection not closed", frame)
		}
		_ = b
		nc.Close()
	}
	if _, err := c.Create("/still", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("server stopped serving: %v", err)
	}
	if !strings.Contains(fourLetterString(t, addr, "mntr"), "zk_znode_count") {
		t.Error("mntr broken")
	}
}

func fourLetterString(t testing.TB, addr, cmd string) string {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, cmd)
	b, _ := io.ReadAll(nc)
	return string(b)
}
