package health

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/aurorabox/aurorabox/internal/transcripttest"
	"github.com/aurorabox/aurorabox/thermos/schema"
)

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

// TestTranscripts runs testdata/* through a Checker with datadriven
// (-rewrite regenerates the expected output; see internal/transcripttest
// for the file format).
//
//	config [initial=15s] [interval=10s] [max_consecutive_failures=0]
//	                          a new Checker (Aurora 0.11's defaults for what
//	                          is left out); before the other commands
//	ok                        a successful probe
//	fail [reason=R]           a failed probe (reason=(words with spaces))
//	snooze                    an attempt skipped for the snooze file
//
// ok, fail and snooze take repeat=N to run N times. Each attempt prints
// "#N VERDICT failures=F" and the message, quoted, if any, where N counts
// the attempts made.
func TestTranscripts(t *testing.T) {
	transcripttest.Run(t, "testdata", func(*testing.T) transcripttest.Script {
		var c *Checker
		return func(t *testing.T, td *datadriven.TestData) (string, error) {
			return command(&c, td)
		}
	})
}

// command runs one transcript command on *c.
func command(c **Checker, td *datadriven.TestData) (string, error) {
	if td.Cmd == "config" {
		cfg := hc(15*time.Second, 10*time.Second, 0)
		for _, a := range td.CmdArgs {
			if len(a.Vals) != 1 {
				return "", fmt.Errorf("%s needs one value", a.Key)
			}
			var err error
			switch v := a.Vals[0]; a.Key {
			case "initial":
				cfg.InitialInterval, err = time.ParseDuration(v)
			case "interval":
				cfg.Interval, err = time.ParseDuration(v)
			case "max_consecutive_failures":
				cfg.MaxConsecutiveFailures, err = strconv.Atoi(v)
			default:
				err = fmt.Errorf("unknown key %q", a.Key)
			}
			if err != nil {
				return "", err
			}
		}
		*c = NewChecker(cfg)
		return "", nil
	}
	if *c == nil {
		return "", fmt.Errorf("command before config")
	}
	times, err := transcripttest.Repeat(td)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	state := func(v Verdict, msg string) {
		fmt.Fprintf(&out, "#%d %s failures=%d", (*c).Attempts(), v, (*c).ConsecutiveFailures())
		if msg != "" {
			fmt.Fprintf(&out, " %q", msg)
		}
		out.WriteString("\n")
	}
	for range times {
		switch td.Cmd {
		case "ok":
			state((*c).Record(true, ""))
		case "fail":
			reason := ""
			if a, ok := td.Arg("reason"); ok && len(a.Vals) == 1 {
				reason = a.Vals[0]
			}
			state((*c).Record(false, reason))
		case "snooze":
			state((*c).RecordSnoozed())
		default:
			return "", fmt.Errorf("unknown command %q", td.Cmd)
		}
	}
	return out.String(), nil
}
