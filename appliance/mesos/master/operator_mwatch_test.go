package master_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/internal/syncbuf"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// buildMwatch builds mesos-go's mwatch example into a temporary
// directory, from a module of its own. It skips the test when the module
// cannot be had (no network and not in the module cache).
func buildMwatch(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("mwatch: no go command to build it with")
	}
	bins, err := mesostest.BuildMesosGo(t.TempDir(), "mwatch")
	if errors.Is(err, mesostest.ErrMesosGoFetch) {
		t.Skipf("mwatch: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bins["mwatch"]
}

// TestMwatch runs mesos-go's own operator API client, mwatch, against the
// master: it prints TASK_ADDED and TASK_UPDATED for a launched task.
func TestMwatch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mwatch")
	}
	bin := buildMwatch(t)
	_, srv := startMaster(t, master.Config{})
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-master", host, "-port", port)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
			}
		}
		cmd.Wait()
		close(lines)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	// mwatch prints nothing when it subscribes: wait for the master to
	// count its stream.
	for deadline := time.Now().Add(30 * time.Second); ; {
		var metrics map[string]float64
		json.Unmarshal([]byte(get(t, srv.URL+"/metrics/snapshot")), &metrics)
		if metrics["master/operator_event_stream_subscribers"] == 1 {
			break
		}
		select {
		case <-exited:
			t.Fatalf("mwatch ended before it subscribed; stderr:\n%s", stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mwatch did not subscribe; stderr:\n%s", stderr.String())
		}
	}

	startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask("watched-1", &offer, 1, 64))}.WithOffers(offer.ID)))
	s.next(scheduler.Event_UPDATE)

	want := []string{"AGENT_ADDED", "FRAMEWORK_ADDED", "TASK_ADDED", "TASK_UPDATED"}
	timeout := time.After(30 * time.Second)
	var seen []string
	for len(want) > 0 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("mwatch ended; saw %q; stderr:\n%s", seen, stderr.String())
			}
			seen = append(seen, line)
			typ, rest, _ := strings.Cut(line, " ")
			if typ != want[0] {
				t.Fatalf("mwatch printed %q, want %s next", line, want[0])
			}
			if strings.HasPrefix(typ, "TASK_") && !strings.Contains(rest, "watched-1") {
				t.Fatalf("mwatch printed %q, not about task watched-1", line)
			}
			if typ == "TASK_UPDATED" && !strings.Contains(rest, "TASK_RUNNING") {
				t.Fatalf("mwatch printed %q, want TASK_RUNNING", line)
			}
			want = want[1:]
		case <-timeout:
			t.Fatalf("mwatch printed only %q; stderr:\n%s", seen, stderr.String())
		}
	}
}
