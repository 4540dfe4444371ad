package planner

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func fuzzTask(shape byte) Task {
	proc := func(name string, maxFailures int, minDuration time.Duration, mod func(*Process)) Process {
		p := Process{Name: name, MaxFailures: maxFailures, MinDuration: minDuration}
		if mod != nil {
			mod(&p)
		}
		return p
	}
	return Task{
		Name: "fuzz",
		Processes: []Process{
			proc("a", 2, time.Second, nil),
			proc("b", 0, 0, func(p *Process) { p.Daemon = true }),
			proc("c", 1, 0, func(p *Process) { p.Daemon, p.Ephemeral = true, true }),
			proc("d", 1, 0, nil),
			proc("e", 3, 0, func(p *Process) { p.Ephemeral = true }),
			proc("f1", 2, 0, func(p *Process) { p.Final = true }),
			proc("f2", 0, 0, func(p *Process) { p.Final, p.Ephemeral, p.Daemon = true, true, true }),
			proc("f3", 1, 0, func(p *Process) { p.Final = true }),
		},
		Order:            [][]string{{"a", "d"}, {"f1", "f3"}},
		MaxFailures:      int(shape % 3),
		MaxConcurrency:   int(shape / 3 % 4),
		FinalizationWait: time.Duration(shape/12%4) * 5 * time.Second,
	}
}

// FuzzApply feeds arbitrary sequences of inputs, many of them nonsensical,
// and checks that nothing panics, that invariants hold, and that replaying the
// accepted records gives the same state.
func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 7, 0, 0, 0, 1, 0, 0, 1, 2, 0, 1, 4, 2, 3, 1, 7, 0, 0, 2, 2, 1, 0, 9})
	f.Add([]byte{13, 8, 0, 0, 0, 8, 1, 0, 2, 2, 0, 0, 2, 8, 0, 0, 1, 8, 4, 5, 3, 6, 0, 0, 20})
	f.Add([]byte{40, 7, 0, 0, 0, 3, 0, 1, 1, 7, 0, 0, 1, 5, 0, 0, 0, 8, 0, 0, 7})
	f.Add(bytes.Repeat([]byte{1, 7, 0, 0, 0, 8, 0, 2, 0}, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		task := fuzzTask(data[0])
		p, err := New(task, base)
		if err != nil {
			t.Fatal(err)
		}
		names := []string{"a", "b", "c", "d", "e", "f1", "f2", "f3", "nosuch"}
		now := base
		var recs []Record
		apply := func(r Record) {
			if p.Apply(r) == nil {
				recs = append(recs, r)
			}
		}
		prev := p.Snapshot()
		for data = data[1:]; len(data) >= 4; data = data[4:] {
			op, x, y, z := data[0], data[1], data[2], data[3]
			if z&0x80 != 0 {
				now = now.Add(-time.Second) // the clock steps back
			} else {
				now = now.Add(time.Duration(z%16) * 500 * time.Millisecond)
			}
			name := names[int(x)%len(names)]
			run := int(y%3) - 1
			if s, ok := p.Process(name); ok {
				run += s.Run
			}
			switch op % 10 {
			case 0:
				apply(Record{Time: now, Kind: KindForked, Process: name, Run: run + 1})
			case 1:
				apply(Record{Time: now, Kind: KindStarted, Process: name, Run: run})
			case 2:
				apply(Record{Time: now, Kind: KindExited, Process: name, Run: run, ExitCode: int(y % 3)})
			case 3:
				apply(Record{Time: now, Kind: KindLost, Process: name, Run: run})
			case 4:
				apply(Record{Time: now, Kind: KindKill, Grace: time.Duration(y%20) * time.Second})
			case 5:
				if y%4 == 0 {
					apply(Record{Time: now, Kind: KindLose})
				}
			case 6:
				apply(Record{Time: now, Kind: KindTick})
			case 7, 8:
				// Behave like an executor: do what Next says.
				d := p.Next(now)
				if d.Tick != nil {
					recs = append(recs, *d.Tick)
				}
				for _, a := range d.Actions {
					if a.Kind == Fork {
						if err := p.Forked(a.Process, a.Run, now); err != nil {
							t.Fatalf("fork %v from Next refused: %v", a, err)
						}
						recs = append(recs, Record{Time: now, Kind: KindForked, Process: a.Process, Run: a.Run})
						if op%10 == 8 {
							apply(Record{Time: now, Kind: KindStarted, Process: a.Process, Run: a.Run})
						}
					}
				}
			case 9:
				apply(Record{Time: now, Kind: RecordKind([]string{"forked", "exited", "bogus", ""}[y%4]), Process: name, Run: run})
			}
			cur := p.Snapshot()
			checkInvariants(t, task, prev, cur)
			prev = cur
		}

		var buf bytes.Buffer
		for _, r := range recs {
			b, err := EncodeRecord(r)
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(b)
		}
		decoded, err := DecodeRecords(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		r, err := Replay(task, base, decoded)
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		live, err := json.Marshal(p.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		replayed, _ := json.Marshal(r.Snapshot())
		if !bytes.Equal(live, replayed) {
			t.Fatalf("replay differs\nlive:     %s\nreplayed: %s", live, replayed)
		}
	})
}

func checkInvariants(t *testing.T, task Task, prev, cur TaskSnapshot) {
	t.Helper()
	if _, err := json.Marshal(cur); err != nil {
		t.Fatal(err)
	}
	if prev.State.Terminal() && len(cur.Statuses) != len(prev.Statuses) {
		t.Fatalf("state changed after %s: %v", prev.State, cur.Statuses)
	}
	for i := 1; i < len(cur.Statuses); i++ {
		if cur.Statuses[i].Time.Before(cur.Statuses[i-1].Time) {
			t.Fatalf("task history goes back in time: %v", cur.Statuses)
		}
	}
	alive := 0
	for i, ps := range cur.Processes {
		if len(ps.Runs) > RunLimit {
			t.Fatalf("%s has %d runs", ps.Name, len(ps.Runs))
		}
		if ps.State == Forked || ps.State == Running {
			alive++
			final := task.Processes[i].Final
			// A live process belongs to the running plan, or is being
			// terminated in CLEANING.
			if final && cur.State != Finalizing || !final && cur.State != Active && cur.State != Cleaning {
				t.Fatalf("%s (final %v) alive while the task is %s", ps.Name, final, cur.State)
			}
		}
		if ps.Failures+ps.Successes+ps.Losses > len(ps.Runs) {
			t.Fatalf("%s: more outcomes than runs: %+v", ps.Name, ps)
		}
	}
	if cur.State.Terminal() && alive > 0 {
		t.Fatalf("%d processes alive in %s", alive, cur.State)
	}
	if task.MaxConcurrency > 0 && alive > task.MaxConcurrency {
		t.Fatalf("%d processes alive, max_concurrency %d", alive, task.MaxConcurrency)
	}
}

// FuzzDecodeRecords checks that arbitrary checkpoint bytes never panic the
// decoder or the planner.
func FuzzDecodeRecords(f *testing.F) {
	f.Add([]byte(`{"time":"2024-05-01T08:00:00Z","kind":"forked","process":"a","run":0}` + "\n"))
	f.Add([]byte(`{"time":"2024-05-01T08:00:00Z","kind":"kill","grace":"-5s"}` + "\n" + `{"time":"2024-05-01T08:00:01Z","kind":"tick"}`))
	f.Add([]byte(`{"time":"0001-01-01T00:00:00Z","kind":"exited","process":"b","run":-3,"exit_code":-1}` + "\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, _ := DecodeRecords(data)
		p, err := New(fuzzTask(0), base)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			_ = p.Apply(r)
			p.Next(r.Time)
		}
		_ = p.Snapshot()
	})
}
