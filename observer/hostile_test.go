package observer

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
	"github.com/aurorabox/aurorabox/appliance/sandboxfs/sandboxfstest"
	"golang.org/x/sys/unix"
)

// A task swapping a directory of its sandbox, or its whole sandbox, for a
// symlink to a directory outside, in a loop, never gets a file or a listing
// from outside through any route that reads the sandbox. 2000 requests
// each, four at a time.
func TestSymlinkSwapRace(t *testing.T) {
	for _, tc := range []struct{ name, dir, swapped, prefix string }{
		{"a sandbox directory", "sandbox", "d", "d/"},
		{"the sandbox", ".", "sandbox", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			srv := httptest.NewServer(newTestObserver(t, f).Handler())
			defer srv.Close()
			sw := sandboxfstest.Swap(t, filepath.Join(f.runs[activeID], tc.dir), tc.swapped)
			u := srv.URL
			sandboxfstest.Race(t, sw, []string{
				u + "/file/" + activeID + "/" + tc.prefix + "f?raw=1",
				u + "/filedata/" + activeID + "/" + tc.prefix + "f?offset=0",
				u + "/download/" + activeID + "/" + tc.prefix + "f",
				u + "/browse/" + activeID + "/" + strings.TrimSuffix(tc.prefix, "/"),
				u + "/j/browse/" + activeID + "/" + strings.TrimSuffix(tc.prefix, "/"),
				u + "/file/" + activeID + "/" + tc.prefix + sandboxfstest.Secret + "?raw=1",
			}, 2000, 4)
		})
	}
}

// A FIFO, a socket or a device gets a 4xx at once, wherever the observer
// meets it: a sandbox file, the sandbox itself, a log, or the checkpoint
// directories it scans.
func TestSpecialFilesRefused(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(newTestObserver(t, f).Handler())
	defer srv.Close()
	u := srv.URL
	names := sandboxfstest.Specials(t, f.sandbox(activeID))
	for _, kind := range []string{"fifo", "socket", "device"} {
		for _, route := range []string{"/file/%s/%s?raw=1", "/file/%s/%s", "/filedata/%s/%s?offset=0", "/download/%s/%s", "/browse/%s/%s", "/j/browse/%s/%s"} {
			sandboxfstest.Refused(t, u+strings.Replace(strings.Replace(route, "%s", activeID, 1), "%s", names[kind], 1))
		}
	}
	// A log replaced by a FIFO.
	log := filepath.Join(f.sandbox(activeID), ".logs", "hello", "1", "stdout")
	mkfifo(t, log)
	sandboxfstest.Refused(t, u+"/logdata/"+activeID+"/hello/1/stdout?offset=0")
	sandboxfstest.Refused(t, u+"/logs/"+activeID+"/hello/1/stdout")
	// The whole sandbox replaced by a FIFO.
	mkfifo(t, f.sandbox(finishedID))
	sandboxfstest.Refused(t, u+"/browse/"+finishedID)
	sandboxfstest.Refused(t, u+"/j/browse/"+finishedID)
	sandboxfstest.Refused(t, u+"/download/"+finishedID+"/x")
	// The checkpoint directory the scan lists replaced by a FIFO: the
	// other task is still listed and the pages answer.
	mkfifo(t, filepath.Join(f.runs[finishedID], "checkpoints", "tasks", "finished"))
	for _, target := range []string{"/", "/j/task_ids", "/task/" + activeID} {
		code, body := sandboxfstest.Get(t, u+target)
		if code != http.StatusOK || (target == "/j/task_ids" && !strings.Contains(body, activeID)) {
			t.Errorf("%s: %d\n%s", target, code, body)
		}
	}
}

// mkfifo replaces path (a file or a directory tree) with a FIFO.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Requests that read the work dir beyond a client's bound get 429 at once;
// health and metrics stay open.
func TestConcurrencyBound(t *testing.T) {
	f := newFixture(t)
	o := newTestObserver(t, f)
	lim := sandboxfs.NewLimiter(1, 10)
	o.cfg.FilesLimiter = lim
	h := o.Handler()
	release, _, _ := lim.Acquire(httptest.NewRequest("GET", "/", nil))
	for _, target := range []string{"/", "/task/" + activeID, "/logdata/" + activeID + "/hello/1/stdout", "/download/" + activeID + "/data/notes.txt",
		"/browse/" + activeID, "/j/browse/" + activeID, "/j/task_ids"} {
		if w := get(t, h, target); w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "at most 1") {
			t.Errorf("%s over the bound: %d %s, want 429", target, w.Code, w.Body)
		}
	}
	for _, target := range []string{"/health", "/vars"} {
		if w := get(t, h, target); w.Code != 200 {
			t.Errorf("%s: %d, want 200", target, w.Code)
		}
	}
	release()
	if w := get(t, h, "/download/"+activeID+"/data/notes.txt"); w.Code != 200 {
		t.Errorf("after the slot was freed: %d %s", w.Code, w.Body)
	}
}
