package planner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// RecordKind names a checkpoint record's event.
type RecordKind string

// Record kinds, one per planner input.
const (
	KindForked  RecordKind = "forked"  // Forked
	KindStarted RecordKind = "started" // Started
	KindExited  RecordKind = "exited"  // Exited
	KindLost    RecordKind = "lost"    // Lost
	KindKill    RecordKind = "kill"    // Kill
	KindLose    RecordKind = "lose"    // Lose
	KindTick    RecordKind = "tick"    // Tick
)

// Record is one planner input as stored in the checkpoint; the package doc
// describes the JSON form.
type Record struct {
	Time     time.Time
	Kind     RecordKind
	Process  string        // process events
	Run      int           // process events
	ExitCode int           // exited
	PID      int           // informational, set by the executor; ignored by the planner
	Grace    time.Duration // kill
	// PIDStart is the start time of process PID in clock ticks since boot
	// (field 22 of /proc/<pid>/stat), so that a restarted executor can tell
	// its process from a later one that reused the pid. Informational, as
	// PID; 0 when unknown (and in records written before it existed).
	PIDStart uint64
}

func (r Record) processEvent() bool {
	switch r.Kind {
	case KindForked, KindStarted, KindExited, KindLost:
		return true
	}
	return false
}

// wireRecord is Record's JSON form: fields that do not apply to the kind are
// left out instead of being written as misleading zeros.
type wireRecord struct {
	Time     time.Time  `json:"time"`
	Kind     RecordKind `json:"kind"`
	Process  *string    `json:"process,omitempty"`
	Run      *int       `json:"run,omitempty"`
	ExitCode *int       `json:"exit_code,omitempty"`
	PID      int        `json:"pid,omitempty"`
	PIDStart uint64     `json:"pid_start,omitempty"`
	Grace    string     `json:"grace,omitempty"`
}

// MarshalJSON writes the checkpoint form.
func (r Record) MarshalJSON() ([]byte, error) {
	w := wireRecord{Time: r.Time.UTC(), Kind: r.Kind, PID: r.PID, PIDStart: r.PIDStart}
	if r.processEvent() {
		w.Process, w.Run = &r.Process, &r.Run
	}
	if r.Kind == KindExited {
		w.ExitCode = &r.ExitCode
	}
	if r.Kind == KindKill {
		// Duration.String round-trips exactly through ParseDuration.
		w.Grace = r.Grace.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the checkpoint form. Whether the record makes sense is
// checked by Apply.
func (r *Record) UnmarshalJSON(b []byte) error {
	var w wireRecord
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = Record{Time: w.Time, Kind: w.Kind, PID: w.PID, PIDStart: w.PIDStart}
	if w.Process != nil {
		r.Process = *w.Process
	}
	if w.Run != nil {
		r.Run = *w.Run
	}
	if w.ExitCode != nil {
		r.ExitCode = *w.ExitCode
	}
	if w.Grace != "" {
		g, err := time.ParseDuration(w.Grace)
		if err != nil {
			return fmt.Errorf("record grace: %w", err)
		}
		r.Grace = g
	}
	return nil
}

func (r Record) String() string {
	b, err := r.MarshalJSON()
	if err != nil {
		return fmt.Sprintf("invalid record (%v)", err)
	}
	return string(b)
}

// EncodeRecord returns r as one checkpoint line, newline included.
func EncodeRecord(r Record) ([]byte, error) {
	b, err := r.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeRecords parses a checkpoint. Blank lines are skipped. A last line
// without a newline that does not parse is a torn append and is dropped; any
// other bad line is an error.
func DecodeRecords(data []byte) ([]Record, error) {
	var recs []Record
	for n := 1; len(data) > 0; n++ {
		line, rest, complete := bytes.Cut(data, []byte{'\n'})
		data = rest
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			if !complete {
				break
			}
			return recs, fmt.Errorf("checkpoint line %d: %w", n, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// Apply applies one checkpoint record. A record that does not fit the current
// state (unknown process, wrong run, an event out of order) is refused with an
// error and changes nothing.
func (p *Planner) Apply(r Record) error {
	if r.Time.IsZero() {
		return fmt.Errorf("%s record has no time", r.Kind)
	}
	if !r.processEvent() && (r.Process != "" || r.Run != 0) {
		return fmt.Errorf("%s record names a process", r.Kind)
	}
	switch r.Kind {
	case KindForked:
		return p.Forked(r.Process, r.Run, r.Time)
	case KindStarted:
		return p.Started(r.Process, r.Run, r.Time)
	case KindExited:
		return p.Exited(r.Process, r.Run, r.ExitCode, r.Time)
	case KindLost:
		return p.Lost(r.Process, r.Run, r.Time)
	case KindKill:
		p.Kill(r.Time, r.Grace)
	case KindLose:
		p.Lose(r.Time)
	case KindTick:
		p.Tick(r.Time)
	default:
		return fmt.Errorf("unknown record kind %q", r.Kind)
	}
	return nil
}

// Replay rebuilds a planner from the task, its creation time and its
// checkpoint records, in order. It fails on the first record Apply refuses.
func Replay(t Task, created time.Time, recs []Record) (*Planner, error) {
	p, err := New(t, created)
	if err != nil {
		return nil, err
	}
	for i, r := range recs {
		if err := p.Apply(r); err != nil {
			return nil, fmt.Errorf("replay record %d %s: %w", i, r, err)
		}
	}
	return p, nil
}
