package election

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/zktest"
	"github.com/aurorabox/aurorabox/internal/syncbuf"
	"github.com/go-zookeeper/zk"
)

// Two candidates: the first leads; the second leads once the first resigns,
// and not before.
func TestSecondCandidateTakesOver(t *testing.T) {
	zk := []string{zktest.Start(t)}
	ctx := context.Background()
	first, err := Elect(ctx, zk, "/aurora/scheduler", "host-a", 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan *Leadership, 1)
	go func() {
		l, err := Elect(ctx, zk, "/aurora/scheduler", "host-b", 5*time.Second, nil)
		if err != nil {
			t.Error(err)
		}
		second <- l
	}()
	select {
	case <-second:
		t.Fatal("two leaders at once")
	case <-time.After(500 * time.Millisecond):
	}
	first.Resign()
	select {
	case l := <-second:
		l.Resign()
	case <-time.After(10 * time.Second):
		t.Fatal("the second candidate did not take over")
	}
}

func TestElectGivesUpWithContext(t *testing.T) {
	zk := []string{zktest.Start(t)}
	leader, err := Elect(context.Background(), zk, "/g", "a", 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Resign()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Elect(ctx, zk, "/g", "b", 5*time.Second, nil); err == nil {
		t.Fatal("a second leader was elected")
	}
}

// A candidate restarted while its previous process's ZooKeeper session is
// still alive (here: a client that never closes it, with a session timeout
// longer than the test's deadline) reclaims that process's lock node and
// ServerSet member, and leads at once instead of waiting for the session
// to expire; another candidate's nodes are left alone.
func TestReclaimAfterRestart(t *testing.T) {
	servers := []string{zktest.Start(t)}
	old, _, err := zk.Connect(servers, 60*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	const group, self = "/aurora/scheduler", "sched.local:8081"
	if err := ensurePath(context.Background(), old, group); err != nil {
		t.Fatal(err)
	}
	create := func(name, data string) string {
		t.Helper()
		p, err := old.Create(group+"/"+name, []byte(data), zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	staleLock := create("_c_0ld-lock-", self)
	staleMember := create("member_", `{"serviceEndpoint": {"host": "sched.local", "port": 8081}, "additionalEndpoints": {}, "status": "ALIVE"}`)
	otherMember := create("member_", `{"serviceEndpoint": {"host": "sched.local", "port": 8082}, "additionalEndpoints": {}, "status": "ALIVE"}`)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Elect(ctx, servers, group, self, 60*time.Second, nil, Reclaim())
	if err != nil {
		t.Fatalf("the restarted candidate was not elected while its old session lives: %v", err)
	}
	defer l.Resign()
	for p, want := range map[string]bool{staleLock: false, staleMember: false, otherMember: true} {
		if ok, _, err := old.Exists(p); err != nil || ok != want {
			t.Errorf("%s exists: %v %v; want %v", p, ok, err, want)
		}
	}

	// Another candidate's lock node is not reclaimed: "b" waits behind it.
	create("_c_0ther-lock-", "other.local:8081")
	l.Resign()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Elect(ctx, servers, group, "b.local:8081", 60*time.Second, nil, Reclaim()); err == nil {
		t.Fatal("elected ahead of another live candidate")
	}
}

// go-zookeeper's own lines (here: its failed connection attempts) go to the
// candidate's slog logger, formatted, rather than to the standard logger.
func TestZKClientLogsThroughSlog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there: every connection attempt fails
	var buf syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := Elect(ctx, []string{addr}, "/g", "a", 5*time.Second, logger); err == nil {
		t.Fatal("elected without a ZooKeeper")
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN msg=\"failed to connect to "+addr) || !strings.Contains(out, "component=zk-client") {
		t.Fatalf("the zk client's connection failures are not in the slog output:\n%s", out)
	}
}
