package scheduler_test

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// schedulerGoroutines are the stacks of the goroutines running code of the
// scheduler's packages (scheduler and below: a method of the Scheduler, a
// function literal inside one, an engine), other than the tests' own.
func schedulerGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.tRunner") {
			continue
		}
		for _, line := range strings.Split(g, "\n") {
			if strings.HasPrefix(line, "github.com/aurorabox/aurorabox/scheduler.") || strings.HasPrefix(line, "github.com/aurorabox/aurorabox/scheduler/") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// TestRunJoinsItsGoroutines stops a scheduler while one of the goroutines
// it started waits on an SLA coordinator that does not answer: Run returns
// only once that goroutine has given up, so that no goroutine of the
// scheduler is left when it returns and the store closes under none (run
// with -race).
func TestRunJoinsItsGoroutines(t *testing.T) {
	clk := &fakeClock{}
	e := startSlaUpdates(t, clk)
	release := make(chan struct{})
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "gone", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	defer close(release) // before srv.Close, which waits for the handler

	j := slaJob("joined", api.SlaPolicy{CoordinatorSlaPolicy: &api.CoordinatorSlaPolicy{CoordinatorURL: srv.URL + "/sla", StatusKey: "ok"}})
	e.mustOK("createJob", map[string]any{"description": j})
	e.await("joined", "2 RUNNING", running(2))
	j2 := jobConfig("joined", 2, true, 1, "sleep 601")
	j2.TaskConfig.Tier, j2.TaskConfig.SlaPolicy = j.TaskConfig.Tier, j.TaskConfig.SlaPolicy
	e.startUpdate(j2, api.JobUpdateSettings{UpdateStrategy: batch(2), SlaAware: true})
	e.eventually("the coordinator is asked", func() bool { return asked.Load() > 0 })

	stop := e.stop
	e.stop = func() {}
	stop() // Run and Serve have returned, and the store is closed
	if gs := schedulerGoroutines(); len(gs) > 0 {
		t.Fatalf("%d goroutines of the scheduler outlived Run:\n%s", len(gs), strings.Join(gs, "\n\n"))
	}
}
