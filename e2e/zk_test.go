//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

var worldACL = zk.WorldACL(zk.PermAll)

func dialZK(t testing.TB, addr string) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn
			}
		case <-deadline:
			conn.Close()
			t.Fatalf("no ZooKeeper session with %s", addr)
		}
	}
}

// Apache ZooKeeper's own CLI against the appliance's embedded server.
func TestZkCliAgainstAppliance(t *testing.T) {
	const zkCli = "/usr/share/zookeeper/bin/zkCli.sh"
	if _, err := os.Stat(zkCli); err != nil {
		if os.Getenv("AURORABOX_REQUIRE_REALZK") != "" {
			t.Fatalf("%s missing: install the Debian zookeeper package", zkCli)
		}
		t.Skip("zkCli.sh not installed")
	}
	c := newCluster(t)
	c.up()
	addr := c.component("zookeeper").Address
	cli := func(args ...string) string {
		out, err := exec.Command(zkCli, append([]string{"-server", addr}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("zkCli %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	cli("create", "/e2e", "hello")
	if out := cli("get", "/e2e"); !strings.Contains(out, "hello") {
		t.Fatalf("get: %s", out)
	}
	if out := cli("ls", "/"); !strings.Contains(out, "e2e") || !strings.Contains(out, "zookeeper") {
		t.Fatalf("ls: %s", out)
	}
}
