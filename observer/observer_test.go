package observer

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/executor/planner"
	"github.com/aurorabox/aurorabox/observer/observerapi"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// golden compares got with testdata/<name>, after putting $WORKDIR for the
// fixture's temp dir.
func golden(t *testing.T, f fixture, name, got string) {
	t.Helper()
	got = strings.ReplaceAll(got, f.dir, "$TMP")
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestReplayedStates(t *testing.T) {
	f := newFixture(t)
	o := newTestObserver(t, f)
	a := o.task(activeID)
	if a == nil {
		t.Fatal("active task not found")
	}
	if a.Snapshot.State != planner.Active || !a.Active || a.ReplayError != "" {
		t.Fatalf("active task: state %s active %v replay error %q", a.Snapshot.State, a.Active, a.ReplayError)
	}
	want := map[string]string{"setup": "success", "hello": "running", "cleanup": "waiting"}
	for _, p := range a.Snapshot.Processes {
		if got := category(p); got != want[p.Name] {
			t.Errorf("process %s: %s, want %s", p.Name, got, want[p.Name])
		}
	}
	fin := o.task(finishedID)
	if fin == nil || fin.Active || fin.Snapshot.State != planner.TaskSuccess {
		t.Fatalf("finished task: %+v", fin)
	}
	if o.task("no-such-task") != nil {
		t.Fatal("found a task that does not exist")
	}
}

// The routes on the fixture, against golden files: status, content type and
// body.
func TestRoutesGolden(t *testing.T) {
	f := newFixture(t)
	h := newTestObserver(t, f).Handler()
	tests := []struct {
		name, target string
		code         int
		ctype        string
	}{
		{"index.html", "/", 200, "text/html; charset=utf-8"},
		{"main_finished.html", "/main/finished/0/10", 200, "text/html; charset=utf-8"},
		{"task.html", "/task/" + activeID, 200, "text/html; charset=utf-8"},
		{"task_finished.html", "/task/" + finishedID, 200, "text/html; charset=utf-8"},
		{"task_unknown.html", "/task/nope", 404, "text/html; charset=utf-8"},
		{"process.html", "/process/" + activeID + "/hello", 200, "text/html; charset=utf-8"},
		{"logs.html", "/logs/" + activeID + "/hello/0/stderr", 200, "text/html; charset=utf-8"},
		{"browse.html", "/browse/" + activeID, 200, "text/html; charset=utf-8"},
		{"browse_data.html", "/browse/" + activeID + "/data/", 200, "text/html; charset=utf-8"},
		{"file.html", "/file/" + activeID + "/data/notes.txt", 200, "text/html; charset=utf-8"},
		{"task_ids.json", "/j/task_ids", 200, "application/json"},
		{"task_ids_active.json", "/j/task_ids/active/0/5", 200, "application/json"},
		{"task_id_count.json", "/j/task_id_count", 200, "application/json"},
		{"task.json", "/j/task/" + activeID, 200, "application/json"},
		{"tasks.json", "/j/task?task_id=" + activeID + "," + finishedID + ",nope", 200, "application/json"},
		{"processes.json", "/j/process/" + activeID, 200, "application/json"},
		{"process_latest.json", "/j/process/" + activeID + "/hello", 200, "application/json"},
		{"process_run0.json", "/j/process/" + activeID + "/hello/0", 200, "application/json"},
		{"processes_query.json", "/j/processes?task_id=" + finishedID, 200, "application/json"},
		{"logdata.json", "/logdata/" + activeID + "/hello/1/stdout?offset=0", 200, "application/json"},
		{"logdata_end.json", "/logdata/" + activeID + "/hello/1/stdout", 200, "application/json"},
		{"logdata_mid.json", "/logdata/" + activeID + "/hello/1/stdout?offset=6&length=8", 200, "application/json"},
		{"filedata.json", "/filedata/" + activeID + "/data/notes.txt?offset=0&length=-1", 200, "application/json"},
		{"rawtask.json", "/rawtask/" + finishedID, 200, "application/json"},
		{"browse.json", "/j/browse/" + activeID, 200, "application/json"},
		{"browse_data.json", "/j/browse/" + activeID + "/data/", 200, "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := get(t, h, tc.target)
			if w.Code != tc.code || w.Header().Get("Content-Type") != tc.ctype {
				t.Fatalf("%s: %d %q, want %d %q\n%s", tc.target, w.Code, w.Header().Get("Content-Type"), tc.code, tc.ctype, w.Body)
			}
			if w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: no nosniff", tc.target)
			}
			if strings.HasPrefix(tc.ctype, "text/html") && !strings.Contains(w.Header().Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("%s: no CSP", tc.target)
			}
			golden(t, f, tc.name, w.Body.String())
		})
	}
}

// Untrusted text (logs, file names, commands) is escaped on pages and is
// never served as HTML.
func TestNoMarkupInjection(t *testing.T) {
	f := newFixture(t)
	h := newTestObserver(t, f).Handler()
	for _, target := range []string{"/process/" + activeID + "/hello", "/logs/" + activeID + "/hello/0/stderr"} {
		if body := get(t, h, target).Body.String(); strings.Contains(body, "<world>") || strings.Contains(body, "<script>alert") {
			t.Errorf("%s: unescaped markup:\n%s", target, body)
		}
	}
	for _, tc := range []struct{ target, ctype string }{
		{"/download/" + activeID + "/data/page.html", "application/octet-stream"},
		{"/file/" + activeID + "/data/page.html?raw=1", "text/plain; charset=utf-8"},
	} {
		w := get(t, h, tc.target)
		if w.Code != 200 || w.Header().Get("Content-Type") != tc.ctype || w.Header().Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(w.Body.String(), "<script>") {
			t.Errorf("%s: %d %v", tc.target, w.Code, w.Header())
		}
	}
	if cd := get(t, h, "/download/"+activeID+"/data/page.html").Header().Get("Content-Disposition"); cd != `attachment; filename="page.html"` {
		t.Errorf("download disposition %q", cd)
	}
}

// Path escapes are refused before or by the sandbox root, and never show
// the secret next to the work dir.
func TestPathEscapesRefused(t *testing.T) {
	f := newFixture(t)
	o := newTestObserver(t, f)
	srv := httptest.NewServer(o.Handler())
	defer srv.Close()
	id := activeID
	tests := []struct {
		name, path string
	}{
		{"dotdot browse", "/browse/" + id + "/../../../../../../../"},
		{"dotdot file", "/file/" + id + "/../../../../../../../../secret?raw=1"},
		{"dotdot download", "/download/" + id + "/data/../../../../../../../../../secret"},
		{"dotdot filedata", "/filedata/" + id + "/../../../../../../../../secret?offset=0"},
		{"encoded dotdot", "/download/" + id + "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret"},
		{"encoded dotdot upper", "/file/" + id + "/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/secret?raw=1"},
		{"encoded slash", "/download/" + id + "/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fsecret"},
		{"encoded dotdot in browse", "/browse/" + id + "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secretdir"},
		{"absolute", "/download/" + id + "//" + strings.TrimPrefix(filepath.Join(f.dir, "secret"), "/")},
		{"absolute encoded", "/download/" + id + "/" + strings.ReplaceAll(filepath.Join(f.dir, "secret"), "/", "%2f")},
		{"dot segment", "/download/" + id + "/./up-link"},
		{"nul", "/download/" + id + "/data%00/notes.txt"},
		{"relative symlink out", "/download/" + id + "/up-link"},
		{"relative symlink out raw", "/file/" + id + "/up-link?raw=1"},
		{"absolute symlink out", "/download/" + id + "/escapes/abs-link"},
		{"absolute symlink out data", "/filedata/" + id + "/escapes/abs-link?offset=0"},
		{"symlinked dir out", "/download/" + id + "/escapes/dir-link/secret"},
		{"symlinked dir out browse", "/browse/" + id + "/escapes/dir-link"},
		{"dotdot browse json", "/j/browse/" + id + "/../../../../../../../"},
		{"encoded dotdot browse json", "/j/browse/" + id + "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secretdir"},
		{"encoded slash browse json", "/j/browse/" + id + "/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fsecretdir"},
		{"absolute browse json", "/j/browse/" + id + "//" + strings.TrimPrefix(filepath.Join(f.dir, "secretdir"), "/")},
		{"relative symlink out browse json", "/j/browse/" + id + "/up-link"},
		{"symlinked dir out browse json", "/j/browse/" + id + "/escapes/dir-link"},
		{"symlinked dir out below browse json", "/j/browse/" + id + "/escapes/dir-link/x"},
		{"fifo browse json", "/j/browse/" + id + "/escapes/fifo"},
		{"file browse json", "/j/browse/" + id + "/data/notes.txt"},
		{"task id dotdot browse json", "/j/browse/..%2f..%2f"},
		{"task id dotdot browse json plain", "/j/browse/../../secretdir"},
		{"fifo", "/filedata/" + id + "/escapes/fifo?offset=0"},
		{"log process dotdot", "/logdata/" + id + "/..%2f..%2f..%2fsecret/0/stdout"},
		{"log process dotdot plain", "/logs/" + id + "/../../../secret"},
		{"log kind", "/logdata/" + id + "/hello/0/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fsecret"},
		{"log run", "/logdata/" + id + "/hello/-1/stdout"},
		{"log unknown process", "/logdata/" + id + "/nope/0/stdout"},
		{"task id dotdot", "/browse/..%2f..%2f"},
		{"task id dotdot json", "/j/task/..%2f..%2fsecret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Through a real connection, so that nothing cleans the path
			// on the way (a raw request line).
			req, err := http.NewRequest("GET", srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = strings.SplitN(tc.path, "?", 2)[0]
			if q := strings.SplitN(tc.path, "?", 2); len(q) == 2 {
				req.URL.RawQuery = q[1]
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 && resp.StatusCode != 403 && resp.StatusCode != 404 {
				t.Errorf("%s: %d, want 400, 403 or 404\n%s", tc.path, resp.StatusCode, body)
			}
			if strings.Contains(string(body), secret) {
				t.Errorf("%s served the secret", tc.path)
			}
		})
	}
	// What stays inside is served: a symlink within the sandbox.
	w := get(t, o.Handler(), "/file/"+id+"/notes-link?raw=1")
	if w.Code != 200 || w.Body.String() != "some notes\n" {
		t.Fatalf("symlink inside the sandbox: %d %q", w.Code, w.Body)
	}
}

// A sandbox that is itself a symlink out of its run directory is refused.
func TestSandboxSymlinkRefused(t *testing.T) {
	f := newFixture(t)
	sb := f.sandbox(finishedID)
	if err := os.RemoveAll(sb); err != nil {
		t.Fatal(err)
	}
	symlink(t, f.dir, sb)
	h := newTestObserver(t, f).Handler()
	for _, target := range []string{"/browse/" + finishedID, "/j/browse/" + finishedID, "/download/" + finishedID + "/secret", "/file/" + finishedID + "/secretdir/secret?raw=1",
		"/logdata/" + finishedID + "/main/0/stdout?offset=0"} {
		w := get(t, h, target)
		if w.Code != 403 && w.Code != 404 || strings.Contains(w.Body.String(), secret) {
			t.Errorf("%s: %d %s", target, w.Code, w.Body)
		}
	}
}

func TestChunkLimits(t *testing.T) {
	f := newFixture(t)
	o := newTestObserver(t, f)
	o.cfg.MaxChunk = 5
	h := o.Handler()
	log := "/logdata/" + activeID + "/hello/1/stdout"
	tests := []struct {
		query string
		code  int
		want  observerapi.Chunk
	}{
		{"", 200, observerapi.Chunk{Offset: 28}},
		{"?offset=-1&length=0", 200, observerapi.Chunk{Offset: 28}},
		{"?offset=0", 200, observerapi.Chunk{Offset: 0, Length: 5, Data: "hello"}},
		{"?offset=0&length=3", 200, observerapi.Chunk{Offset: 0, Length: 3, Data: "hel"}},
		{"?offset=26&length=100", 200, observerapi.Chunk{Offset: 26, Length: 2, Data: ">\n"}},
		{"?offset=1000", 200, observerapi.Chunk{Offset: 28}}, // a truncated file: from its end
		{"?offset=-2", 400, observerapi.Chunk{}},
		{"?offset=x", 400, observerapi.Chunk{}},
		{"?length=-5", 400, observerapi.Chunk{}},
	}
	for _, tc := range tests {
		w := get(t, h, log+tc.query)
		if w.Code != tc.code {
			t.Errorf("%s: %d, want %d", tc.query, w.Code, tc.code)
			continue
		}
		if tc.code != 200 {
			continue
		}
		var got observerapi.Chunk
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got != tc.want {
			t.Errorf("%s: %+v (%v), want %+v", tc.query, got, err, tc.want)
		}
	}
}

func TestHealthVarsAndMethods(t *testing.T) {
	f := newFixture(t)
	h := newTestObserver(t, f).Handler()
	if w := get(t, h, "/health"); w.Code != 200 || w.Body.String() != "OK\n" {
		t.Fatalf("/health: %d %q", w.Code, w.Body)
	}
	w := get(t, h, "/vars")
	if w.Code != 200 || !regexp.MustCompile(`(?m)^observer_tasks_active 1$`).MatchString(w.Body.String()) ||
		!strings.Contains(w.Body.String(), "observer_tasks_finished 1\n") {
		t.Fatalf("/vars: %d\n%s", w.Code, w.Body)
	}
	if w := get(t, h, "/vars/observer_tasks_finished"); w.Body.String() != "1\n" {
		t.Fatalf("/vars/observer_tasks_finished: %q", w.Body)
	}
	var vars map[string]any
	if w := get(t, h, "/vars.json"); json.Unmarshal(w.Body.Bytes(), &vars) != nil || vars["observer_tasks_active"] != 1.0 {
		t.Fatalf("/vars.json: %s", w.Body)
	}
	req := httptest.NewRequest("POST", "/task/"+activeID, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
	for _, target := range []string{"/nope", "/task", "/task/a/b", "/j/nope", "/assets/nope.js", "/assets/..%2fobserver.go"} {
		if w := get(t, h, target); w.Code != 404 {
			t.Errorf("%s: %d, want 404", target, w.Code)
		}
	}
	if w := get(t, h, "/assets/observer.js"); w.Code != 200 || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("observer.js: %d %v", w.Code, w.Header())
	}
}

// Concurrent requests share the scan, checkpoint and usage caches (run
// with -race).
func TestConcurrentRequests(t *testing.T) {
	f := newFixture(t)
	o := New(Config{WorkDir: f.workDir, ScanInterval: time.Nanosecond, DiskInterval: time.Nanosecond})
	h := o.Handler()
	targets := []string{"/", "/task/" + activeID, "/j/task_ids", "/j/task/" + finishedID, "/j/process/" + activeID,
		"/browse/" + activeID + "/data", "/j/browse/" + activeID + "/data", "/logdata/" + activeID + "/hello/1/stdout?offset=0", "/vars"}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				target := targets[(g+i)%len(targets)]
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
				if rec.Code != 200 {
					t.Errorf("%s: %d", target, rec.Code)
				}
			}
		}(g)
	}
	wg.Wait()
}
