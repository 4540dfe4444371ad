package tui

import (
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/observer/observerapi"
)

// TestNoSandboxOffered: a task the observer does not know (its sandbox
// removed by the agent's garbage collection) is offered no logs or files,
// neither from its instance nor from its task view, which says why; once
// the observer knows it, they are offered again.
func TestNoSandboxOffered(t *testing.T) {
	const batchID = "www-data-test-batch-0-7c7c"
	const why = "no sandbox: the agent removed it (sandbox garbage collection)"
	f := newFake()
	m := newModel(t, f)
	press(t, m, "enter", "down", "down", "enter") // www-data/test/batch: one FINISHED instance
	contains(t, m, "› www-data/test/batch", "FINISHED")
	for _, k := range []string{"f", "l"} {
		press(t, m, k)
		if _, ok := m.top().(*instancesView); !ok {
			t.Fatalf("%s on an instance without a sandbox opened %q", k, m.top().title())
		}
		contains(t, m, why)
	}
	press(t, m, "enter")
	if _, ok := m.top().(*taskView); !ok {
		t.Fatalf("enter opened %q, want the task", m.top().title())
	}
	contains(t, m, "  "+why)
	if s := screen(t, m); strings.Contains(s, "files") || strings.Contains(s, "logs") {
		t.Errorf("the task view offers logs or files:\n%s", s)
	}
	for _, k := range []string{"f", "l", "enter"} {
		press(t, m, k)
		if _, ok := m.top().(*taskView); !ok {
			t.Fatalf("%s opened %q", k, m.top().title())
		}
	}

	f.mu.Lock()
	f.obs[batchID] = &ObservedTask{ID: batchID, State: "SUCCESS"}
	f.dirs[batchID+"/"] = []observerapi.DirEntry{{Name: "stdout", Path: "stdout", Kind: observerapi.KindFile, Mode: "-rw-r--r--", Size: 3}}
	f.mu.Unlock()
	send(t, m, tickMsg(t0))
	contains(t, m, "f files")
	press(t, m, "f")
	if _, ok := m.top().(*filesView); !ok {
		t.Fatalf("f opened %q, want the sandbox", m.top().title())
	}
	contains(t, m, "stdout")
}
