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

	"github.com/aurorabox/aurorabox/thermos/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/* with the produced transcripts")

// hc is a resolved config with Aurora's defaults and the given overrides.
func hc(initial, every time.Duration, maxFailures int) schema.HealthCheck {
	cfg := schema.HealthCheckConfig{}.Resolved()
	cfg.InitialInterval, cfg.Interval, cfg.MaxConsecutiveFailures = initial, every, maxFailures
	return cfg
}

// runSteps records attempts: "S" success, "F" failure (reason "r<attempt>"),
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

// TestCheckerScenarios pins Aurora 0.11's counting with exact messages,
// independently of the golden transcripts: at which attempt (1-based) the
// verdict becomes Failed (0 = never), and the message. Before that the
// verdict is Healthy, from the first attempt on.
func TestCheckerScenarios(t *testing.T) {
	for _, tc := range []struct {
		name          string
		cfg           schema.HealthCheck
		steps         string
		failedAt      int
		failedMessage string
	}{
		{"successes", hc(15*time.Second, 10*time.Second, 0), "S S S", 0, ""},
		{"defaults: the first failure fails", hc(15*time.Second, 10*time.Second, 0), "F", 1, "Failed health check! r1"},
		{"no grace in attempts", hc(15*time.Second, 10*time.Second, 0), "S S F", 3, "Failed health check! r3"},
		{"max failures not exceeded", hc(15*time.Second, 10*time.Second, 2), "F F S F F S", 0, ""},
		{"max failures exceeded", hc(15*time.Second, 10*time.Second, 2), "F F S F F F", 6, "Failed health check! r6"},
		{"initial 0: the first check decides", hc(0, 10*time.Second, 3), "F", 1, "Failed health check! r1"},
		{"initial 0: later failures are counted", hc(0, 10*time.Second, 1), "S F S F F", 5, "Failed health check! r5"},
		{"min_consecutive_successes does not exist", hc(10*time.Second, 10*time.Second, 1), "S F S F S", 0, ""},
		{"snooze is a success", hc(15*time.Second, 10*time.Second, 1), "F Z F Z F", 0, ""},
		{"snoozed from the start never fails", hc(15*time.Second, 10*time.Second, 0), "Z Z Z Z Z Z", 0, ""},
		{"failed is terminal", hc(15*time.Second, 10*time.Second, 0), "F S S", 1, "Failed health check! r1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(tc.cfg)
			vs, ms := runSteps(c, tc.steps)
			failedAt, msg := 0, ""
			for i, v := range vs {
				if v == Failed && failedAt == 0 {
					failedAt, msg = i+1, ms[i]
				}
				if failedAt != 0 && (v != Failed || ms[i] != msg) {
					t.Errorf("attempt %d after failure: %v %q", i+1, v, ms[i])
				}
				if v == Healthy && ms[i] != "" {
					t.Errorf("healthy with message %q", ms[i])
				}
			}
			if failedAt != tc.failedAt || msg != tc.failedMessage {
				t.Errorf("failed at %d %q; want %d %q (verdicts %v)", failedAt, msg, tc.failedAt, tc.failedMessage, vs)
			}
			if failedAt != 0 && c.Attempts() != failedAt {
				t.Errorf("attempts %d after the failure, want %d", c.Attempts(), failedAt)
			}
		})
	}
}

// TestTranscripts runs testdata/* through a Checker and compares the
// produced transcript with the file (golden; -update rewrites them).
//
// Format: "config initial=15s interval=10s max_consecutive_failures=0"
// (Aurora 0.11's defaults for what is left out), then one command a line:
//
//	ok                 a successful probe
//	fail REASON...     a failed probe
//	snooze             an attempt skipped for the snooze file
//
// Commands may be prefixed by "N*" to repeat them. After each command the
// runner prints "> #N VERDICT failures=F" and the message, quoted, if any,
// where N counts the attempts made. "#" lines are comments; ">" lines are regenerated.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
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
	line := func(format string, args ...any) { fmt.Fprintf(&out, "> "+format+"\n", args...) }
	state := func(v Verdict, msg string) {
		s := fmt.Sprintf("#%d %s failures=%d", c.Attempts(), v, c.ConsecutiveFailures())
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
			cfg := hc(15*time.Second, 10*time.Second, 0)
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
				default:
					err = fmt.Errorf("unknown key %q", k)
				}
				if err != nil {
					return "", fmt.Errorf("line %d: %v", ln+1, err)
				}
			}
			c = NewChecker(cfg)
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
				state(c.Record(true, ""))
			case "fail":
				state(c.Record(false, strings.Join(f[1:], " ")))
			case "snooze":
				state(c.RecordSnoozed())
			default:
				return "", fmt.Errorf("line %d: unknown command %q", ln+1, f[0])
			}
		}
	}
	return out.String(), nil
}
