//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// crashLoopConfig is the tutorial's crashing service: its only process
// prints a line and exits 1, so every task fails at once.
const crashLoopConfig = `
crash = Process(name = 'crash', cmdline = 'echo start; exit 1')

jobs = [Service(cluster = 'devcluster', role = 'www-data', environment = 'prod', name = 'crashloop',
  task = SequentialTask(processes = [crash], resources = Resources(cpu = 0.1, ram = 16*MB, disk = 16*MB)))]
`

const crashLoopKey = "devcluster/www-data/prod/crashloop"

// createCrashLoop writes the config and creates the job through aurora.
func (c *cluster) createCrashLoop() {
	c.t.Helper()
	cfg := filepath.Join(c.dir, "crashloop.aurora")
	if err := os.WriteFile(cfg, []byte(crashLoopConfig), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.mustClient("job", "create", crashLoopKey, cfg)
}

var penaltyMsg = regexp.MustCompile(`^Rescheduled, penalized for (\d+) ms for flapping`)

// penalties are the THROTTLED penalties (ms) of a job's tasks, in the order
// the tasks were created.
func penalties(ts []api.ScheduledTask) []string {
	sort.Slice(ts, func(i, j int) bool { return ts[i].TaskEvents[0].Timestamp < ts[j].TaskEvents[0].Timestamp })
	var out []string
	for _, tk := range ts {
		for _, ev := range tk.TaskEvents {
			if m := penaltyMsg.FindStringSubmatch(ev.Message); ev.Status == "THROTTLED" && m != nil {
				out = append(out, m[1])
			}
		}
	}
	return out
}

// TestCrashLoopThrottled is issue 15's crash loop on the appliance with the
// default (dev) timing profile: a service whose task fails at once is
// replaced THROTTLED, 1 s doubling up to 30 s, as Aurora 0.11 throttles
// flapping tasks (there 30 s doubling up to 5 min); it used to be replaced
// at once, 54 times in 8 s.
//
// The bound: the replacement after the k-th failure in a row waits
// min(2^(k-1), 30) s THROTTLED before it can be placed, so the k+1-th task
// starts at least 1+2+...+2^(k-1) s after the first: at 1, 3, 7, 15, 31 and
// 61 s. In the 60 s after the create, at most 6 tasks have been placed, and a
// 7th can exist, THROTTLED: at most 7 tasks, however fast or slow the
// machine (slowness only delays the chain).
func TestCrashLoopThrottled(t *testing.T) {
	c := newCluster(t)
	c.up()
	sched := "http://" + c.component("scheduler").Address
	start := time.Now()
	c.createCrashLoop()
	const maxTasks = 7
	sawThrottled, most := false, 0
	for time.Since(start) < 60*time.Second {
		ts := tasksOf(t, sched, "crashloop")
		most = max(most, len(ts))
		if len(ts) > maxTasks {
			t.Fatalf("%d tasks %v after the create: the crash loop is not throttled (at most %d)", len(ts), time.Since(start).Round(time.Second), maxTasks)
		}
		if count(ts, func(t api.ScheduledTask) bool { return t.Status == "THROTTLED" }) > 0 {
			sawThrottled = true
		}
		time.Sleep(500 * time.Millisecond)
	}
	ts := tasksOf(t, sched, "crashloop")
	if len(ts) > maxTasks {
		t.Fatalf("%d tasks after 60 s, want at most %d", len(ts), maxTasks)
	}
	if !sawThrottled {
		t.Fatalf("no THROTTLED task seen in 60 s; tasks: %d", len(ts))
	}
	// It did loop, with the dev backoff: each replacement THROTTLED for
	// twice the time of the one before.
	got := penalties(ts)
	if len(got) < 4 {
		t.Fatalf("%d tasks, THROTTLED penalties %v: want the loop to go on, throttled (at least 4 replacements in 60 s)", len(ts), got)
	}
	want := []string{"1000", "2000", "4000", "8000", "16000", "30000"}[:len(got)]
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("THROTTLED penalties %v ms, want %v", got, want)
	}
	t.Logf("%d tasks in 60 s (at most %d seen at once), penalties %v ms", len(ts), most, got)
	c.mustClient("job", "killall", crashLoopKey)
}

// TestCrashLoopThrottledAuroraProfile: `up --timing-profile aurora` gives the
// scheduler Aurora 0.11's timings: the first replacement of the crashing
// task is THROTTLED for 30 s (-initial_flapping_task_delay).
func TestCrashLoopThrottledAuroraProfile(t *testing.T) {
	c := newCluster(t)
	if r := c.run("up", "--detach", "--timing-profile", "aurora"); r.code != 0 {
		t.Fatalf("up --detach --timing-profile aurora: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sched := "http://" + c.component("scheduler").Address
	c.createCrashLoop()
	var ts []api.ScheduledTask
	waitFor(t, "a THROTTLED replacement", 60*time.Second, func() bool {
		ts = tasksOf(t, sched, "crashloop")
		return count(ts, func(t api.ScheduledTask) bool { return t.Status == "THROTTLED" }) > 0
	})
	if got := penalties(ts); fmt.Sprint(got) != "[30000]" || len(ts) != 2 {
		t.Fatalf("%d tasks, THROTTLED penalties %v ms; want the failed task and its replacement, THROTTLED for 30000 ms", len(ts), got)
	}
	// Still THROTTLED a while later: no third task.
	time.Sleep(10 * time.Second)
	if ts = tasksOf(t, sched, "crashloop"); len(ts) != 2 || count(ts, func(t api.ScheduledTask) bool { return t.Status == "THROTTLED" }) != 1 {
		t.Fatalf("10 s into the 30 s penalty: %d tasks, want 2 with one THROTTLED", len(ts))
	}
	c.mustClient("job", "killall", crashLoopKey)
}
