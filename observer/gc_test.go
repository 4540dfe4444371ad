package observer

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/observer/observerapi"
)

// TestCollectedSandboxIsGone: once the agent's garbage collection removed
// a task's run (at once: it renames it away first), the observer lists,
// counts and links it nowhere, even from a scan it reuses; and a task
// whose sandbox directory is not there gets no browse link.
func TestCollectedSandboxIsGone(t *testing.T) {
	f := newFixture(t)
	o := newTestObserver(t, f) // its clock stands still: the scan is reused throughout
	h := o.Handler()
	counts := func() map[string]int {
		t.Helper()
		var c map[string]int
		if err := json.Unmarshal(get(t, h, "/j/task_id_count").Body.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	listed := func() []string {
		t.Helper()
		var l observerapi.TaskIDs
		if err := json.Unmarshal(get(t, h, "/j/task_ids/all").Body.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range l.Tasks {
			ids = append(ids, r.TaskID)
		}
		return ids
	}
	if c := counts(); c["finished"] != 1 || c["all"] != 2 {
		t.Fatalf("before: counts %v", c)
	}
	if ids := listed(); len(ids) != 2 {
		t.Fatalf("before: listed %v", ids)
	}
	if w := get(t, h, "/task/"+finishedID); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `href="/browse/`+finishedID+`"`) {
		t.Fatalf("before: task page %d without a browse link", w.Code)
	}

	if err := os.RemoveAll(f.runs[finishedID]); err != nil { // collected
		t.Fatal(err)
	}
	if c := counts(); c["finished"] != 0 || c["all"] != 1 || c["active"] != 1 {
		t.Errorf("after: counts %v, want the collected task gone", c)
	}
	if ids := listed(); len(ids) != 1 || ids[0] != activeID {
		t.Errorf("after: listed %v, want only %s", ids, activeID)
	}
	for _, page := range []string{"/", "/main/all"} {
		if body := get(t, h, page).Body.String(); strings.Contains(body, finishedID) {
			t.Errorf("after: %s still names the collected task", page)
		}
	}
	for _, p := range []string{"/task/", "/browse/", "/j/task/"} {
		if w := get(t, h, p+finishedID); w.Code != http.StatusNotFound {
			t.Errorf("after: %s%s: %d, want 404", p, finishedID, w.Code)
		}
	}
	var vars map[string]any
	json.Unmarshal(get(t, h, "/vars.json").Body.Bytes(), &vars)
	if vars["observer_tasks_finished"] != 0.0 {
		t.Errorf("after: observer_tasks_finished %v, want 0", vars["observer_tasks_finished"])
	}

	// A run without its sandbox directory: no link to browse it.
	if err := os.RemoveAll(filepath.Join(f.runs[activeID], "sandbox")); err != nil {
		t.Fatal(err)
	}
	w := get(t, h, "/task/"+activeID)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `href="/browse/`) {
		t.Errorf("a task page links a sandbox that is not there (%d)", w.Code)
	}
}
