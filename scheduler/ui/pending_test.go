package ui

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// pendingSource is the fixture with getPendingReason answers, which are
// meant to be escaped on the page.
type pendingSource struct {
	*fakeSource
	queries []api.TaskQuery
}

func (p *pendingSource) PendingReasons(q api.TaskQuery) ([]api.PendingReason, error) {
	p.queries = append(p.queries, q)
	var out []api.PendingReason
	for _, t := range p.Tasks(q) {
		if t.Status == "PENDING" {
			out = append(out, api.PendingReason{TaskID: t.AssignedTask.TaskID, Reason: "Insufficient: CPU,Constraint not satisfied: <rack>"})
		}
	}
	return out, nil
}

var messageCell = regexp.MustCompile(`data-task-id="([^"]+)">.*?<td class="message">(.*?)</td>`)

// TestPendingReasonShown: the job, instance and task pages show why a
// PENDING task is pending (getPendingReason) next to it, escaped, and only
// for PENDING tasks; a Source that cannot say shows none.
func TestPendingReasonShown(t *testing.T) {
	src := &pendingSource{fakeSource: fixture()}
	h := Handler(src, Config{ObserverURL: observerURL, Now: func() time.Time { return now }})
	want := `<span class="pending-reason" title="why the task is pending">Insufficient: CPU,Constraint not satisfied: &lt;rack&gt;</span>`
	for _, path := range []string{"/scheduler/www-data/prod/hello", "/scheduler/www-data/prod/hello/2"} {
		_, _, body := get(t, h, "GET", path)
		cells := map[string]string{}
		for _, m := range messageCell.FindAllStringSubmatch(body, -1) {
			cells[m[1]] = m[2]
		}
		if got := cells[idPending]; got != want {
			t.Errorf("%s: message cell of the PENDING task = %q, want %q", path, got, want)
		}
		for id, c := range cells {
			if id != idPending && strings.Contains(c, "pending-reason") {
				t.Errorf("%s: task %s, not PENDING, shows a pending reason: %s", path, id, c)
			}
		}
	}
	for _, q := range src.queries {
		if len(q.TaskIDs) != 1 || q.TaskIDs[0] != idPending {
			t.Errorf("getPendingReason asked for %v, want only the PENDING task", q.TaskIDs)
		}
	}
	_, _, body := get(t, h, "GET", "/scheduler/www-data/prod/hello/task/"+idPending)
	if !strings.Contains(body, want) {
		t.Errorf("task page of the PENDING task lacks its reason")
	}

	_, _, body = get(t, testHandler(), "GET", "/scheduler/www-data/prod/hello")
	if strings.Contains(body, "pending-reason") {
		t.Error("a Source without pending reasons shows one")
	}
}
