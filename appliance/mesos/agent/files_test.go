package agent_test

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
	"github.com/aurorabox/aurorabox/appliance/sandboxfs/sandboxfstest"
)

// filesURL is an agent /files URL for a host path.
func filesURL(c *cluster, endpoint, path string) string {
	return c.agentURL + endpoint + "?" + url.Values{"path": {path}, "offset": {"0"}}.Encode()
}

// A task swapping a directory of its sandbox for a symlink to a directory
// outside, in a loop, never gets a file or a listing from outside through
// /files/read, /files/download or /files/browse: the path is opened beneath
// the sandbox, never resolved first and opened afterwards. 2000 requests,
// four at a time.
func TestFilesSymlinkSwapRace(t *testing.T) {
	c := startCluster(t)
	c.sched.launch(shellTask("racer", "true"))
	for range 3 {
		c.sched.updateFor("racer")
	}
	dir := c.sandbox("racer")
	sw := sandboxfstest.Swap(t, dir, "d")
	sandboxfstest.Race(t, sw, []string{
		filesURL(c, "/files/read", filepath.Join(dir, "d", "f")),
		filesURL(c, "/files/download", filepath.Join(dir, "d", "f")),
		filesURL(c, "/files/browse", filepath.Join(dir, "d")),
		filesURL(c, "/files/read", filepath.Join(dir, "d", sandboxfstest.Secret)),
	}, 2000, 4)
}

// A FIFO, a socket or a device in a sandbox gets a 4xx at once, not a
// request that blocks forever; so does a directory asked for as a file,
// and a FIFO asked for as a directory.
func TestFilesSpecialFilesRefused(t *testing.T) {
	c := startCluster(t)
	c.sched.launch(shellTask("specials", "mkdir sub"))
	for range 3 {
		c.sched.updateFor("specials")
	}
	dir := c.sandbox("specials")
	names := sandboxfstest.Specials(t, dir)
	for _, kind := range []string{"fifo", "socket", "device"} {
		p := filepath.Join(dir, names[kind])
		for _, endpoint := range []string{"/files/read", "/files/download", "/files/browse"} {
			sandboxfstest.Refused(t, filesURL(c, endpoint, p))
		}
	}
	sandboxfstest.Refused(t, filesURL(c, "/files/read", filepath.Join(dir, "sub")))
	sandboxfstest.Refused(t, filesURL(c, "/files/download", filepath.Join(dir, "sub")))
}

// /files requests beyond a client's bound get 429 at once, and those of
// other clients are still served.
func TestFilesConcurrencyBound(t *testing.T) {
	lim := sandboxfs.NewLimiter(2, 10)
	c := startCluster(t, func(cfg *agent.Config) { cfg.FilesLimiter = lim })
	c.sched.launch(shellTask("bounded", "echo hi"))
	for range 3 {
		c.sched.updateFor("bounded")
	}
	path := filepath.Join(c.sandbox("bounded"), "stdout")
	// Two requests of 127.0.0.1 in flight, held here.
	var releases []func()
	for range 2 {
		release, _, _ := lim.Acquire(&http.Request{RemoteAddr: "127.0.0.1:1"})
		if release == nil {
			t.Fatal("could not take a slot")
		}
		releases = append(releases, release)
	}
	for _, endpoint := range []string{"/files/read", "/files/download", "/files/browse"} {
		code, body := c.get(endpoint, url.Values{"path": {path}})
		if code != http.StatusTooManyRequests || !strings.Contains(body, "at most 2") {
			t.Errorf("%s over the bound: %d %s, want 429", endpoint, code, body)
		}
	}
	// Once one is done, the client is served again.
	releases[0]()
	if code, body := c.get("/files/read", url.Values{"path": {path}}); code != http.StatusOK {
		t.Errorf("after a slot was freed: %d %s", code, body)
	}
	releases[1]()
}
