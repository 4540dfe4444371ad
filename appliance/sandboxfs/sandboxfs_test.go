package sandboxfs_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
	"github.com/aurorabox/aurorabox/appliance/sandboxfs/sandboxfstest"
)

func TestLocate(t *testing.T) {
	slaves := "/w/slaves"
	run := "a/frameworks/f/executors/e/runs/c"
	tests := []struct {
		path     string
		run, rel string
		err      error
	}{
		{"/w/slaves/" + run, run, ".", nil},
		{"/w/slaves/" + run + "/stdout", run, "stdout", nil},
		{"/w/slaves/" + run + "/x/../y/./z/", run, "y/z", nil},
		{"/w/slaves/a/frameworks/f/executors/e/runs/latest/stdout", "a/frameworks/f/executors/e/runs/latest", "stdout", nil},
		{"/w/slaves/" + run + "/../../../../../../..", "", "", sandboxfs.ErrOutside},
		{"/w/slaves/" + run + "/../c2/stdout", "a/frameworks/f/executors/e/runs/c2", "stdout", nil},
		{"/w/slaves/a/frameworks/f/executors/e/runs", "", "", sandboxfs.ErrOutside},
		{"/w/slaves/a/tasks/f/executors/e/runs/c/x", "", "", sandboxfs.ErrOutside},
		{"/w/slaves/" + run + "/../../../../../../../../etc/passwd", "", "", sandboxfs.ErrOutside},
		{"/etc/passwd", "", "", sandboxfs.ErrOutside},
		{"w/slaves/" + run, "", "", sandboxfs.ErrBadPath},
		{"", "", "", sandboxfs.ErrBadPath},
		{"/w/slaves/" + run + "/a\x00b", "", "", sandboxfs.ErrBadPath},
	}
	for _, tc := range tests {
		loc, err := sandboxfs.Locate(slaves, tc.path)
		if !errors.Is(err, tc.err) || loc.Run != tc.run || loc.Rel != tc.rel {
			t.Errorf("Locate(%q) = %+v, %v; want {%s %s}, %v", tc.path, loc, err, tc.run, tc.rel, tc.err)
		}
	}
}

// Open and OpenRoot serve regular files and directories, refuse special
// files at once with a 400 that names them, and never leave the root.
func TestOpenKinds(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
	os.WriteFile(filepath.Join(dir, "file"), []byte("hi"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.Symlink("file", filepath.Join(dir, "inside-link"))
	os.Symlink(outside, filepath.Join(dir, "out"))
	os.Symlink("../"+filepath.Base(outside), filepath.Join(dir, "up"))
	names := sandboxfstest.Specials(t, dir)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tests := []struct {
		name string
		kind sandboxfs.Kind
		code int // 0: opens
	}{
		{"file", sandboxfs.File, 0},
		{"inside-link", sandboxfs.File, 0},
		{"sub", sandboxfs.Dir, 0},
		{".", sandboxfs.Dir, 0},
		{"sub", sandboxfs.File, 400},
		{"file", sandboxfs.Dir, 400},
		{names["fifo"], sandboxfs.File, 400},
		{names["fifo"], sandboxfs.Dir, 400},
		{names["socket"], sandboxfs.File, 400},
		{names["device"], sandboxfs.File, 400},
		{"nope", sandboxfs.File, 404},
		{"out/secret", sandboxfs.File, 403},
		{"out", sandboxfs.Dir, 403},
		{"up/secret", sandboxfs.File, 403},
		{"../" + filepath.Base(outside) + "/secret", sandboxfs.File, 403},
	}
	for _, tc := range tests {
		f, _, err := sandboxfs.Open(root, tc.name, tc.kind)
		if err == nil {
			f.Close()
		}
		code := 0
		if err != nil {
			code, _ = sandboxfs.Status(err)
		}
		if code != tc.code {
			t.Errorf("Open(%s, %d): %v (%d), want %d", tc.name, tc.kind, err, code, tc.code)
		}
	}
	for name, want := range map[string]int{"sub": 0, names["fifo"]: 400, "file": 400, "out": 403, "nope": 404} {
		r, err := sandboxfs.OpenRoot(root, name)
		code := 0
		if err != nil {
			code, _ = sandboxfs.Status(err)
		} else {
			r.Close()
		}
		if code != want {
			t.Errorf("OpenRoot(%s): %v (%d), want %d", name, err, code, want)
		}
	}
}

// The limiter refuses beyond a client's bound with 429 and beyond the total
// with 503, and frees a slot when a request ends.
func TestLimiter(t *testing.T) {
	lim := sandboxfs.NewLimiter(2, 3)
	hold := make(chan struct{})
	entered := make(chan struct{}, 8)
	h := lim.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-hold
	}))
	serve := func(addr string) int {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	var wg sync.WaitGroup
	for _, addr := range []string{"10.0.0.1:1", "10.0.0.1:2", "10.0.0.2:1"} {
		wg.Add(1)
		go func() { defer wg.Done(); serve(addr) }()
		<-entered
	}
	if code := serve("10.0.0.1:3"); code != http.StatusTooManyRequests {
		t.Errorf("third request of a client: %d, want 429", code)
	}
	if code := serve("10.0.0.3:1"); code != http.StatusServiceUnavailable {
		t.Errorf("fourth request in all: %d, want 503", code)
	}
	close(hold)
	wg.Wait()
	if code := serve("10.0.0.1:4"); code != 200 {
		t.Errorf("after the others ended: %d, want 200", code)
	}
}
