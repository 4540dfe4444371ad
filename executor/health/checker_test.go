package health

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/executor/assigned"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt with the produced transcripts")

// hc is a resolved config with Aurora's defaults and the given overrides.
func hc(initial, every time.Duration, maxFailures, minSuccesses int) assigned.HealthCheck {
	cfg := assigned.HealthCheckConfig{}.Resolved()
	cfg.InitialInterval, cfg.Interval = initial, every
	cfg.MaxConsecutiveFailures, cfg.MinConsecutiveSuccesses = maxFailures, minSuccesses
	return cfg
}

func TestCheckerGraceAndMaxAttempts(t *testing.T) {
	for _, tc := range []struct {
		initial, interval  time.Duration
		maxFail, minSucc   int
		grace, maxAttempts int
	}{
		{15 * time.Second, 10 * time.Second, 0, 1, 2, 3}, // Aurora's defaults
		{10 * time.Second, 10 * time.Second, 2, 3, 1, 6},
		{0, 10 * time.Second, 1, 2, 0, 3},
		{1 * time.Millisecond, 10 * time.Second, 0, 1, 1, 2}, // ceil
		{30 * time.Second, 0, 0, 1, 30, 31},                  // interval 0 taken as 1s
	} {
		c := NewChecker(hc(tc.initial, tc.interval, tc.maxFail, tc.minSucc))
		if c.Grace() != tc.grace || c.MaxAttempts() != tc.maxAttempts {
			t.Errorf("%+v: grace=%d max_attempts=%d", tc, c.Grace(), c.MaxAttempts())
		}
	}
}

// step is one attempt: "S" success, "F" failure (reason "r<attempt>"),
// "Z" snoozed.
func runSteps(c *Checker, steps string) (verdicts []Verdict, msgs []string) {
	for i, s := range strings.Fields(steps) {
		var v Verdict
		var m string
		switch s {
		case "S":
			v, m = c.Record(true, "")
		case "F":
			v, m = c.Record(false, fmt.Sprintf("r%d", i+1))
		case "Z":
			v, m = c.RecordSnoozed()
		default:
			panic(s)
		}
		verdicts, msgs = append(verdicts, v), append(msgs, m)
	}
	return verdicts, msgs
}

// TestCheckerScenarios pins the brief's cases with exact messages,
// independently of the golden transcripts: at which attempt (1-based) the
// verdict first becomes Healthy and Failed (0 = never), and the message.
func TestCheckerScenarios(t *testing.T) {
	const deadline = "Not enough successful health checks in time."
	for _, tc := range []struct {
		name          string
		cfg           assigned.HealthCheck
		steps         string
		healthyAt     int
		failedAt      int
		failedMessage string
	}{
		{"immediate success", hc(15*time.Second, 10*time.Second, 0, 1), "S S S", 1, 0, ""},
		{"grace failures ignored", hc(15*time.Second, 10*time.Second, 0, 1), "F F S", 3, 0, ""},
		{"first failure after grace fails", hc(15*time.Second, 10*time.Second, 0, 1), "F F F", 0, 3, "Failed health check! r3"},
		{"no grace", hc(0, 10*time.Second, 0, 1), "F", 0, 1, "Failed health check! r1"},
		{"failure in grace ignored after healthy", hc(15*time.Second, 10*time.Second, 0, 1), "S F S", 1, 0, ""},
		{"failure after grace fails healthy task", hc(15*time.Second, 10*time.Second, 0, 1), "S F F", 1, 3, "Failed health check! r3"},
		// grace 0, max_attempts 3: flapping S F S F never reaches 2 in a
		// row; attempts 1..4 are probed, attempt 5 hits the deadline.
		{"deadline", hc(0, 10*time.Second, 1, 2), "S F S F S", 0, 5, deadline},
		// The (max_attempts+1)th attempt can still make it.
		{"healthy on the last allowed attempt", hc(0, 10*time.Second, 1, 2), "S F S S", 4, 0, ""},
		// grace 1, max_attempts 6: after F S S F only 2 attempts remain for 3 successes.
		{"fail fast", hc(10*time.Second, 10*time.Second, 2, 3), "F S S F", 0, 4, "Failed health check! r4"},
		// grace 0, max_attempts 8: at attempt 7 one attempt remains for 3
		// successes, but fail fast needs remaining > 1; the deadline fails it.
		{"no fail fast at remaining 1", hc(0, 10*time.Second, 5, 3), "F F F F F S F S S S", 0, 10, deadline},
		{"healthy then max+1 failures", hc(15*time.Second, 10*time.Second, 2, 1), "S S F F F", 1, 5, "Failed health check! r5"},
		{"max failures not exceeded", hc(15*time.Second, 10*time.Second, 2, 1), "S S F F S F F S", 1, 0, ""},
		{"success resets failures", hc(0, 10*time.Second, 1, 1), "S F S F S F F", 1, 7, "Failed health check! r7"},
		{"min successes 3 in a row", hc(10*time.Second, 10*time.Second, 3, 3), "F S S F S S S", 7, 0, ""},
		{"min successes 3 never in a row", hc(10*time.Second, 10*time.Second, 3, 3), "F S S F S S F S S", 0, 9, deadline},
		{"snooze before healthy runs into the deadline", hc(15*time.Second, 10*time.Second, 0, 1), "Z Z Z Z S", 0, 5, deadline},
		{"snooze breaks a run of successes", hc(0, 10*time.Second, 2, 2), "S Z S", 0, 0, ""},
		{"snooze keeps a healthy task", hc(0, 10*time.Second, 0, 1), "S Z Z Z Z", 1, 0, ""},
		{"snooze does not reset failures", hc(0, 10*time.Second, 1, 1), "S F Z F", 1, 4, "Failed health check! r4"},
		{"failed is terminal", hc(0, 10*time.Second, 0, 1), "F S S", 0, 1, "Failed health check! r1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(tc.cfg)
			vs, ms := runSteps(c, tc.steps)
			healthyAt, failedAt, msg := 0, 0, ""
			for i, v := range vs {
				if v == Healthy && healthyAt == 0 {
					healthyAt = i + 1
					if ms[i] != HealthyMessage {
						t.Errorf("healthy message %q", ms[i])
					}
				}
				if v == Failed && failedAt == 0 {
					failedAt, msg = i+1, ms[i]
				}
				if failedAt != 0 && (v != Failed || ms[i] != msg) {
					t.Errorf("attempt %d after failure: %v %q", i+1, v, ms[i])
				}
				if v == Pending && ms[i] != "" {
					t.Errorf("pending with message %q", ms[i])
				}
			}
			if healthyAt != tc.healthyAt || failedAt != tc.failedAt || msg != tc.failedMessage {
				t.Errorf("healthy at %d, failed at %d %q; want %d, %d %q (verdicts %v)",
					healthyAt, failedAt, msg, tc.healthyAt, tc.failedAt, tc.failedMessage, vs)
			}
		})
	}
}

func TestCheckerBeforeAttempt(t *testing.T) {
	c := NewChecker(hc(0, 10*time.Second, 1, 2)) // max_attempts 3
	runSteps(c, "S F S")
	if v, m := c.BeforeAttempt(); v != Pending || m != "" {
		t.Fatalf("before attempt 4: %v %q", v, m)
	}
	runSteps(c, "F")
	if c.Attempts() != 4 || c.ConsecutiveFailures() != 1 {
		t.Fatalf("attempts %d failures %d", c.Attempts(), c.ConsecutiveFailures())
	}
	// The deadline is due before attempt 5: no probe needed.
	want := DeadlineReason
	if v, m := c.BeforeAttempt(); v != Failed || m != want || c.Reason() != DeadlineReason {
		t.Fatalf("before attempt 5: %v %q", v, m)
	}
	if v, m := c.Record(true, ""); v != Failed || m != want || c.Attempts() != 4 {
		t.Fatalf("record after failure: %v %q attempts %d", v, m, c.Attempts())
	}
}

// TestTranscripts runs testdata/*.txt through a Checker and compares the
// produced transcript with the file (golden; -update rewrites them).
//
// Format: "config initial=15s interval=10s max_consecutive_failures=0
// min_consecutive_successes=1" (Aurora's defaults for what is left out),
// then one command a line:
//
//	ok                 a successful probe
//	fail REASON...     a failed probe
//	snooze             an attempt skipped for the snooze file
//	before             BeforeAttempt
//
// Commands may be prefixed by "N*" to repeat them. After the config the
// runner prints "> grace=G max_attempts=M", after each command
// "> #N VERDICT failures=F successes=S" and the message, quoted, if any,
// where N counts the attempts made (ok, fail, snooze). "#" lines are comments; ">" lines are regenerated.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := runTranscript(string(in))
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(f, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != string(in) {
				t.Errorf("transcript differs (run with -update to rewrite, then review):\n--- want\n%s\n--- got\n%s", in, got)
			}
		})
	}
}

func runTranscript(in string) (string, error) {
	var out strings.Builder
	var c *Checker
	n := 0 // attempts made (Checker.Attempts stops at max_attempts+1)
	line := func(format string, args ...any) { fmt.Fprintf(&out, "> "+format+"\n", args...) }
	state := func(v Verdict, msg string) {
		s := fmt.Sprintf("#%d %s failures=%d successes=%d", n, v, c.ConsecutiveFailures(), c.ConsecutiveSuccesses())
		if msg != "" {
			s += fmt.Sprintf(" %q", msg)
		}
		line("%s", s)
	}
	for ln, l := range strings.Split(strings.TrimRight(in, "\n"), "\n") {
		if strings.HasPrefix(l, ">") {
			continue
		}
		out.WriteString(l + "\n")
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(l, "#") {
			continue
		}
		if f[0] == "config" {
			cfg := hc(15*time.Second, 10*time.Second, 0, 1)
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				var err error
				switch k {
				case "initial":
					cfg.InitialInterval, err = time.ParseDuration(v)
				case "interval":
					cfg.Interval, err = time.ParseDuration(v)
				case "max_consecutive_failures":
					cfg.MaxConsecutiveFailures, err = strconv.Atoi(v)
				case "min_consecutive_successes":
					cfg.MinConsecutiveSuccesses, err = strconv.Atoi(v)
				default:
					err = fmt.Errorf("unknown key %q", k)
				}
				if err != nil {
					return "", fmt.Errorf("line %d: %v", ln+1, err)
				}
			}
			c, n = NewChecker(cfg), 0
			line("grace=%d max_attempts=%d", c.Grace(), c.MaxAttempts())
			continue
		}
		if c == nil {
			return "", fmt.Errorf("line %d: command before config", ln+1)
		}
		times := 1
		if a, b, ok := strings.Cut(f[0], "*"); ok {
			var err error
			if times, err = strconv.Atoi(a); err != nil {
				return "", fmt.Errorf("line %d: %v", ln+1, err)
			}
			f[0] = b
		}
		for range times {
			switch f[0] {
			case "ok":
				n++
				state(c.Record(true, ""))
			case "fail":
				n++
				state(c.Record(false, strings.Join(f[1:], " ")))
			case "snooze":
				n++
				state(c.RecordSnoozed())
			case "before":
				state(c.BeforeAttempt())
			default:
				return "", fmt.Errorf("line %d: unknown command %q", ln+1, f[0])
			}
		}
	}
	return out.String(), nil
}
