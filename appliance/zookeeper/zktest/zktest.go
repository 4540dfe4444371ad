// Package zktest runs aurorabox's embedded ZooKeeper server in-process for
// the tests of the components that use ZooKeeper (leader election, the
// ServerSet announcer and readers, Mesos master detection), on a free port
// of 127.0.0.1 and a temporary data dir.
package zktest

import (
	"context"
	"net"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/zookeeper"
)

// Start runs a server until the test ends and returns its host:port. opts
// change its Config (a shorter TickTime, say).
func Start(t testing.TB, opts ...func(*zookeeper.Config)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := zookeeper.Config{ListenAddr: ln.Addr().String(), DataDir: t.TempDir()}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := zookeeper.New(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.Serve(ctx, ln)
	t.Cleanup(func() { cancel(); srv.Close() })
	return ln.Addr().String()
}
