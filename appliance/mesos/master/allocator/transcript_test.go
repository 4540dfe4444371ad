package allocator

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"

	"github.com/aurorabox/aurorabox/internal/transcripttest"
)

// base is the time that transcript offsets count from.
var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// TestTranscripts runs testdata/* with datadriven (-rewrite regenerates
// the expected output; see internal/transcripttest for the file format).
// Times are offsets from 0s; a command with at=D moves the clock there
// first (at=+D: D on), never back. Resources are given as cpus=N mem=N
// disk=N gpus=N rcpus=N (revocable cpus).
//
//	config offer_timeout=D default_refuse=D
//	                                   the engine's config (before the rest)
//	weights                            the roles' weights, as --weights
//	ROLE=W,...                         takes them (before the rest)
//	parse-weights + input              what ParseWeights makes of the input
//	agent ID RES...                    add an active agent
//	down ID / up ID                    an agent becomes inactive / active
//	framework ID [role=R] [revocable]  add an active framework
//	disconnect ID / connect ID         a framework becomes inactive / active
//	launch FW AGENT RES...             FW uses RES on AGENT without an offer
//	finish FW AGENT RES...             FW frees RES on AGENT
//	allocate                           "> offer ID FW AGENT RES" per offer,
//	                                   then "> next at D" (or "> next none")
//	decline OFFER [refuse=S]           DECLINE (refuse=S: refuse_seconds)
//	accept OFFER... [refuse=S] RES...  ACCEPT, using RES of the offers
//	rescind OFFER                      the master withdraws an offer
//	expire                             "> rescind ID FW AGENT" per timed-out offer
//	suppress FW / revive FW / remove FW
//	shares                             each role's and framework's share
//	roles                              what /master/roles reports
func TestTranscripts(t *testing.T) {
	transcripttest.Run(t, "testdata", func(*testing.T) transcripttest.Script {
		s := &script{cfg: Config{OfferIDPrefix: "O"}, clock: transcripttest.NewClock(base)}
		return func(t *testing.T, td *datadriven.TestData) (string, error) {
			if err := s.clock.Advance(td); err != nil {
				return "", err
			}
			return s.run(t, td), nil
		}
	})
}

type script struct {
	cfg   Config
	e     *Engine
	clock *transcripttest.Clock
}

func (s *script) engine() *Engine {
	if s.e == nil {
		s.e = New(s.cfg)
	}
	return s.e
}

func (s *script) run(t *testing.T, td *datadriven.TestData) string {
	var pos []string // arguments without values
	for _, a := range td.CmdArgs {
		if len(a.Vals) == 0 {
			pos = append(pos, a.Key)
		}
	}
	need := func(n int) {
		if len(pos) < n {
			t.Fatalf("%s: %s needs %d arguments", td.Pos, td.Cmd, n)
		}
	}
	var filters *mesos.Filters
	if a, ok := td.Arg("refuse"); ok && td.Cmd != "config" {
		v, err := strconv.ParseFloat(a.SingleVal(t), 64)
		if err != nil {
			t.Fatalf("%s: %v", td.Pos, err)
		}
		filters = &mesos.Filters{RefuseSeconds: &v}
	}
	switch td.Cmd {
	case "config":
		if s.e != nil {
			t.Fatalf("%s: config after the engine started", td.Pos)
		}
		if a, ok := td.Arg("offer_timeout"); ok {
			s.cfg.OfferTimeout, _ = time.ParseDuration(a.SingleVal(t))
		}
		if a, ok := td.Arg("default_refuse"); ok {
			s.cfg.DefaultRefuse, _ = time.ParseDuration(a.SingleVal(t))
		}
		return "ok"
	case "weights", "parse-weights":
		if s.e != nil && td.Cmd == "weights" {
			t.Fatalf("%s: weights after the engine started", td.Pos)
		}
		w, err := ParseWeights(strings.TrimSpace(td.Input))
		if err != nil {
			return "error: " + err.Error()
		}
		if td.Cmd == "weights" {
			s.cfg.Weights = w
		}
		return fmt.Sprint(w)
	case "agent":
		need(1)
		s.engine().AddAgent(pos[0], res(t, td))
		s.e.SetAgentActive(pos[0], true)
	case "down", "up":
		need(1)
		s.engine().SetAgentActive(pos[0], td.Cmd == "up")
	case "framework":
		need(1)
		role := ""
		if a, ok := td.Arg("role"); ok {
			role = a.SingleVal(t)
		}
		s.engine().AddFramework(pos[0], role, td.HasArg("revocable"))
		s.e.SetFrameworkActive(pos[0], true)
	case "connect", "disconnect":
		need(1)
		s.engine().SetFrameworkActive(pos[0], td.Cmd == "connect")
	case "launch":
		need(2)
		s.engine().Allocated(pos[0], pos[1], res(t, td))
	case "finish":
		need(2)
		s.engine().Recover(pos[0], pos[1], res(t, td))
	case "allocate":
		var b strings.Builder
		for _, o := range s.engine().Allocate(s.clock.Now) {
			fmt.Fprintf(&b, "offer %s %s %s %s\n", o.ID, o.Framework, o.Agent, format(o.Resources))
		}
		if next := s.e.Next(); next.IsZero() {
			b.WriteString("next none")
		} else {
			fmt.Fprintf(&b, "next at %s", next.Sub(base))
		}
		return b.String()
	case "decline":
		need(1)
		s.engine().Decline(s.clock.Now, pos[0], filters)
	case "accept":
		need(1)
		s.engine().Accept(s.clock.Now, pos, res(t, td), filters)
	case "rescind":
		need(1)
		s.engine().Rescind(pos[0])
	case "expire":
		var b strings.Builder
		for _, o := range s.engine().Expire(s.clock.Now) {
			fmt.Fprintf(&b, "rescind %s %s %s\n", o.ID, o.Framework, o.Agent)
		}
		if b.Len() == 0 {
			return "none"
		}
		return strings.TrimSuffix(b.String(), "\n")
	case "suppress":
		need(1)
		s.engine().Suppress(pos[0])
	case "revive":
		need(1)
		s.engine().Revive(pos[0])
	case "remove":
		need(1)
		s.engine().RemoveFramework(pos[0])
	case "shares":
		e := s.engine()
		var b strings.Builder
		for _, r := range e.Roles() {
			fmt.Fprintf(&b, "role %s weight %g share %.4f:", r.Name, r.Weight, e.RoleShare(r.Name))
			for _, f := range r.Frameworks {
				fmt.Fprintf(&b, " %s=%.4f", f, e.Share(f))
			}
			b.WriteString("\n")
		}
		return strings.TrimSuffix(b.String(), "\n")
	case "roles":
		var b strings.Builder
		for _, r := range s.engine().Roles() {
			fmt.Fprintf(&b, "%s weight=%g frameworks=%v offered=%s allocated=%s\n", r.Name, r.Weight, r.Frameworks, format(r.Offered), format(r.Allocated))
		}
		return strings.TrimSuffix(b.String(), "\n")
	default:
		t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
	}
	return "ok"
}

// res builds resources from the cpus, mem, disk, gpus and rcpus arguments.
func res(t *testing.T, td *datadriven.TestData) mesos.Resources {
	var out mesos.Resources
	for _, a := range td.CmdArgs {
		if len(a.Vals) != 1 {
			continue
		}
		v, err := strconv.ParseFloat(a.Vals[0], 64)
		if err != nil {
			continue
		}
		switch a.Key {
		case "cpus", "mem", "disk", "gpus":
			out = out.Plus(resources.Build().Name(resources.Name(a.Key)).Scalar(v).Resource)
		case "rcpus":
			r := resources.NewCPUs(v).Resource
			r.Revocable = &mesos.Resource_RevocableInfo{}
			out = out.Plus(r)
		}
	}
	return out
}

// format prints resources sorted by name, revocable ones with "(r)".
func format(rs mesos.Resources) string {
	var parts []string
	for _, r := range rs {
		name := r.Name
		if r.Revocable != nil {
			name += "(r)"
		}
		switch {
		case r.Scalar != nil:
			parts = append(parts, fmt.Sprintf("%s:%g", name, r.Scalar.Value))
		case r.Ranges != nil:
			parts = append(parts, fmt.Sprintf("%s:%v", name, r.Ranges.Range))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ";")
}
