package match

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/aurorabox/aurorabox/internal/transcripttest"
)

// TestTranscripts runs testdata/* with datadriven (-rewrite regenerates
// the expected output; see internal/transcripttest for the file format).
// Each "assign" command is one Assign call, described by its input lines
// ("#" lines among them are comments):
//
//	matcher [overhead=CPUS/MB] [port_seed=N] [threshold=6m]
//	offer ID [agent=A] [host=H] [cpus=N] [mem=MB] [disk=MB] [ports=31000-31009,32000]
//	         [mode=SCHEDULED] [unavailable=+5m] [a.NAME=V1,V2]...
//	placed ROLE/ENV/NAME host=H [a.NAME=V1,V2]...
//	task ID [job=ROLE/ENV/NAME] [instance=N] [cpus=N] [mem=MB] [disk=MB] [ports=NAME,NAME]
//	        [c.NAME=CONSTRAINT]...
//
// Offers default to agent "agent-ID" and host ID; a matcher line is optional
// (default: NewMatcher at the transcripts' base time, with its overhead).
// The result lists "assign TASK OFFER HOST [PORT=N]...", "pending TASK:
// VETO; VETO", and "remaining OFFER...".
func TestTranscripts(t *testing.T) {
	transcripttest.Run(t, "testdata", func(*testing.T) transcripttest.Script {
		return func(t *testing.T, td *datadriven.TestData) (string, error) {
			if td.Cmd != "assign" {
				return "", fmt.Errorf("unknown command %q", td.Cmd)
			}
			lines, err := transcripttest.Lines(td)
			if err != nil {
				return "", err
			}
			return runTranscript(lines)
		}
	})
}

func runTranscript(lines []transcripttest.Line) (string, error) {
	m := NewMatcher(t0)
	var offers []Offer
	var reqs []Request
	existing := map[JobKey][]Placed{}
	for _, l := range lines {
		if err := parseLine(m, append([]string{l.Cmd}, l.Words...), &offers, &reqs, existing); err != nil {
			return "", fmt.Errorf("input line %d: %v", l.N, err)
		}
	}
	as, remaining, vetoes := m.Assign(offers, reqs, existing)
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "assign %s %s %s", a.TaskID, a.OfferID, a.Hostname)
		for _, name := range slices.Sorted(maps.Keys(a.Ports)) {
			fmt.Fprintf(&b, " %s=%d", name, a.Ports[name])
		}
		b.WriteString("\n")
	}
	for _, r := range reqs {
		if v, ok := vetoes[r.TaskID]; ok {
			fmt.Fprintf(&b, "pending %s: %s\n", r.TaskID, strings.Join(reasons(v), "; "))
		}
	}
	b.WriteString("remaining")
	for _, o := range remaining {
		b.WriteString(" " + o.ID)
	}
	b.WriteString("\n")
	return b.String(), nil
}

func parseLine(m *Matcher, fields []string, offers *[]Offer, reqs *[]Request, existing map[JobKey][]Placed) error {
	kind, args := fields[0], fields[1:]
	kv := map[string]string{}
	attrs := map[string][]string{}
	constraints := map[string]string{}
	var positional []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		switch {
		case !ok:
			positional = append(positional, a)
		case strings.HasPrefix(k, "a."):
			attrs[k[2:]] = strings.Split(v, ",")
		case strings.HasPrefix(k, "c."):
			constraints[k[2:]] = v
		default:
			kv[k] = v
		}
	}
	num := func(key string) float64 {
		f, err := strconv.ParseFloat(kv[key], 64)
		if err != nil && kv[key] != "" {
			panic(fmt.Sprintf("%s=%q: %v", key, kv[key], err))
		}
		return f
	}
	switch kind {
	case "matcher":
		if o := kv["overhead"]; o != "" {
			c, mem, _ := strings.Cut(o, "/")
			cpus, err1 := strconv.ParseFloat(c, 64)
			mb, err2 := strconv.ParseFloat(mem, 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("overhead %q", o)
			}
			m.Overhead = Overhead{cpus, mb}
		}
		if s := kv["port_seed"]; s != "" {
			seed, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return err
			}
			m.PortSeed = seed
		}
		if s := kv["threshold"]; s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				return err
			}
			m.UnavailabilityThreshold = d
		}
	case "offer":
		if len(positional) != 1 {
			return fmt.Errorf("offer needs one id")
		}
		o := Offer{ID: positional[0], AgentID: "agent-" + positional[0], Hostname: positional[0], Attributes: attrs,
			CPUs: num("cpus"), MemMB: num("mem"), DiskMB: num("disk"), Maintenance: MaintenanceMode(kv["mode"])}
		if h := kv["host"]; h != "" {
			o.Hostname = h
		}
		if a := kv["agent"]; a != "" {
			o.AgentID = a
		}
		if p := kv["ports"]; p != "" {
			for r := range strings.SplitSeq(p, ",") {
				lo, hi, isRange := strings.Cut(r, "-")
				if !isRange {
					hi = lo
				}
				b, err1 := strconv.ParseUint(lo, 10, 64)
				e, err2 := strconv.ParseUint(hi, 10, 64)
				if err1 != nil || err2 != nil {
					return fmt.Errorf("ports %q", p)
				}
				o.Ports = append(o.Ports, Range{b, e})
			}
		}
		if u := kv["unavailable"]; u != "" {
			d, err := time.ParseDuration(u)
			if err != nil {
				return err
			}
			o.UnavailabilityStart = t0.Add(d)
		}
		*offers = append(*offers, o)
	case "placed":
		if len(positional) != 1 {
			return fmt.Errorf("placed needs a job key")
		}
		job, err := parseJobKey(positional[0])
		if err != nil {
			return err
		}
		existing[job] = append(existing[job], Placed{Hostname: kv["host"], Attributes: attrs})
	case "task":
		if len(positional) != 1 {
			return fmt.Errorf("task needs one id")
		}
		job, err := parseJobKey(cmpOr(kv["job"], "www/prod/hello"))
		if err != nil {
			return err
		}
		cs, err := ParseConstraints(constraints)
		if err != nil {
			return err
		}
		r := Request{TaskID: positional[0], Job: job, Instance: int(num("instance")),
			CPUs: num("cpus"), MemMB: num("mem"), DiskMB: num("disk"), Constraints: cs}
		if p := kv["ports"]; p != "" {
			r.PortNames = strings.Split(p, ",")
		}
		*reqs = append(*reqs, r)
	default:
		return fmt.Errorf("unknown line %q", kind)
	}
	return nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func parseJobKey(s string) (JobKey, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return JobKey{}, fmt.Errorf("job key %q is not role/env/name", s)
	}
	return JobKey{parts[0], parts[1], parts[2]}, nil
}
