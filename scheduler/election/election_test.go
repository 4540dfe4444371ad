package election

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/zookeeper"
)

func startZK(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := zookeeper.New(zookeeper.Config{ListenAddr: ln.Addr().String(), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.Serve(ctx, ln)
	t.Cleanup(func() { cancel(); srv.Close() })
	return ln.Addr().String()
}

// Two candidates: the first leads; the second leads once the first resigns,
// and not before.
func TestSecondCandidateTakesOver(t *testing.T) {
	zk := []string{startZK(t)}
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
	zk := []string{startZK(t)}
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
