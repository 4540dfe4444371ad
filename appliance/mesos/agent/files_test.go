package agent_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
	"github.com/aurorabox/aurorabox/appliance/sandboxfs/sandboxfstest"
)

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
	sw := sandboxfstest.Swap(t, dir)

	const requests, workers = 2000, 4
	targets := []struct{ endpoint, path string }{
		{"/files/read", filepath.Join(dir, "d", "f")},
		{"/files/download", filepath.Join(dir, "d", "f")},
		{"/files/browse", filepath.Join(dir, "d")},
		{"/files/read", filepath.Join(dir, "d", sandboxfstest.Secret)},
	}
	var (
		mu            sync.Mutex
		served, leaks int
		wg            sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < requests; i += workers {
				tg := targets[i%len(targets)]
				resp, err := http.Get(c.agentURL + tg.endpoint + "?" + url.Values{"path": {tg.path}, "offset": {"0"}}.Encode())
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if strings.Contains(string(body), sandboxfstest.Secret) {
					leaks++
					if leaks == 1 {
						t.Errorf("%s %s served what is outside the sandbox: %d %s", tg.endpoint, tg.path, resp.StatusCode, body)
					}
				}
				if resp.StatusCode == 200 {
					served++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sw.Stop()
	t.Logf("%d requests, %d swaps, %d served from inside, %d leaks", requests, sw.Swaps.Load(), served, leaks)
	if leaks > 0 {
		t.Fatalf("%d of %d requests leaked the secret", leaks, requests)
	}
	if served == 0 {
		t.Fatal("no request was served: the race was never open")
	}
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
	check := func(endpoint, path string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", c.agentURL+endpoint+"?"+url.Values{"path": {path}, "offset": {"0"}}.Encode(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v (blocked?)", endpoint, path, err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			t.Errorf("%s %s: %d %s, want a 4xx", endpoint, path, resp.StatusCode, body)
		}
		t.Logf("%s %s: %d %s", endpoint, filepath.Base(path), resp.StatusCode, strings.TrimSpace(string(body)))
	}
	for _, kind := range []string{"fifo", "socket", "device"} {
		p := filepath.Join(dir, names[kind])
		check("/files/read", p)
		check("/files/download", p)
		check("/files/browse", p)
	}
	check("/files/read", filepath.Join(dir, "sub"))
	check("/files/download", filepath.Join(dir, "sub"))
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
	local := &http.Request{RemoteAddr: "127.0.0.1:1"}
	for range 2 {
		release, _, _ := lim.Acquire(local)
		if release == nil {
			t.Fatal("could not take a slot")
		}
		defer release()
	}
	for _, endpoint := range []string{"/files/read", "/files/download", "/files/browse"} {
		code, body := c.get(endpoint, url.Values{"path": {path}})
		if code != http.StatusTooManyRequests || !strings.Contains(body, "at most 2") {
			t.Errorf("%s over the bound: %d %s, want 429", endpoint, code, body)
		}
	}
	// Another client is not affected.
	release, _, _ := lim.Acquire(&http.Request{RemoteAddr: "127.0.0.2:1"})
	if release == nil {
		t.Fatal("another client was refused")
	}
	release()
	// Once a slot is free again, requests are served.
	release, _, _ = lim.Acquire(&http.Request{RemoteAddr: "127.0.0.3:1"})
	release()
}
