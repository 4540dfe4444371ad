//go:build e2e

package e2e

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance"
	"github.com/go-zookeeper/zk"
)

// schedulerMembers lists the scheduler ServerSet's member_ nodes.
func (c *cluster) schedulerMembers(t *testing.T) []string {
	t.Helper()
	return c.members(t, appliance.SchedulerZKPath)
}

// members lists the member_ nodes of the ServerSet at path.
func (c *cluster) members(t *testing.T, path string) []string {
	t.Helper()
	conn, _, err := zk.Connect([]string{c.component("zookeeper").Address}, 5*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kids, _, err := conn.Children(path)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		t.Fatalf("list %s: %v", path, err)
	}
	var members []string
	for _, k := range kids {
		if len(k) > 7 && k[:7] == "member_" {
			members = append(members, k)
		}
	}
	return members
}

// TestSchedulerRestartReclaimsItsMember kills the leading scheduler with
// SIGKILL, which leaves its ServerSet member and election node behind with
// a live ZooKeeper session, and then stops it cleanly with SIGTERM. Each
// time the supervisor restarts it on the same address; it reclaims what
// its previous process left instead of waiting for that session to expire
// (or redirecting clients to itself), so it leads again with one member,
// and the client works throughout. The restart times are logged.
func TestSchedulerRestartReclaimsItsMember(t *testing.T) {
	c := newCluster(t)
	c.up()
	sched := c.component("scheduler")
	leaderHealthy := func() bool {
		resp, err := http.Get("http://" + sched.Address + "/leaderhealth")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	waitFor(t, "the scheduler leads", 30*time.Second, leaderHealthy)
	waitFor(t, "one member", 10*time.Second, func() bool { return len(c.schedulerMembers(t)) == 1 })
	before := c.schedulerMembers(t)[0]
	noRedirects := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		prev := c.component("scheduler")
		start := time.Now()
		syscall.Kill(prev.PID, sig)
		waitFor(t, "the scheduler restarted and leading", 60*time.Second, func() bool {
			// Meanwhile, it never sends a client to itself.
			if resp, err := noRedirects.Post("http://"+sched.Address+"/api/getJobs", "application/json", strings.NewReader("{}")); err == nil {
				resp.Body.Close()
				if loc := resp.Header.Get("Location"); strings.Contains(loc, "//"+sched.Address+"/") {
					t.Fatalf("%s after %v: the restarted scheduler redirects to itself: %d %s", time.Since(start).Round(time.Millisecond), sig, resp.StatusCode, loc)
				}
			}
			return c.component("scheduler").PID != prev.PID && leaderHealthy()
		})
		took := time.Since(start)
		if took >= 10*time.Second {
			t.Errorf("the scheduler took %v to lead again after %v: it waited for its old ZooKeeper session (10 s) to expire", took, sig)
		}
		if r := c.aurora("job", "list", "devcluster"); r.code != 0 {
			t.Fatalf("aurora job list after the restart (%v): exit %d %s", sig, r.code, r.stderr)
		}
		members := c.schedulerMembers(t)
		if len(members) != 1 || members[0] == before {
			t.Fatalf("after the %v restart the ServerSet has %v; want one new member (the old one was %s)", sig, members, before)
		}
		before = members[0]
		t.Logf("scheduler leading again %s after %v", took.Round(time.Millisecond), sig)
	}
}

// TestDownUpLeavesNoStaleMembers: `down` stops the executors while
// ZooKeeper still runs, so they leave their ServerSets and close their
// sessions; the next `up` finds none of their members (which would
// otherwise be restored with their sessions and linger until those
// expired, 6 members for 3 instances).
func TestDownUpLeavesNoStaleMembers(t *testing.T) {
	srv := buildHTTPServer(t)
	c := newCluster(t)
	c.up()
	key, path := "devcluster/www-data/test/http_example", "/aurora/www-data/test/http_example"
	c.mustAurora("job", "create", key, c.auroraConfig("http_example.aurora", srv), "--bind", "profile.instances=3", "--wait-until", "RUNNING")
	var before []string
	waitFor(t, "3 members", time.Minute, func() bool { before = c.members(t, path); return len(before) == 3 })
	if r := c.run("down"); r.code != 0 {
		t.Fatalf("down: %d %s", r.code, r.stderr)
	}
	c.up()
	after := c.members(t, path)
	for _, m := range after {
		if slices.Contains(before, m) {
			t.Fatalf("after down and up the ServerSet still has %s of the stopped tasks (members %v, before down %v)", m, after, before)
		}
	}
	waitFor(t, "3 new members", 2*time.Minute, func() bool { return len(c.members(t, path)) == 3 })
	c.mustAurora("job", "killall", key)
}
