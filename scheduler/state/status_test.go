package state

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStatusValuesAndNames(t *testing.T) {
	// api.thrift's ScheduleStatus.
	want := map[string]int{
		"INIT": 11, "THROTTLED": 16, "PENDING": 0, "ASSIGNED": 9, "STARTING": 1, "RUNNING": 2,
		"FINISHED": 3, "PREEMPTING": 13, "RESTARTING": 12, "DRAINING": 17, "FAILED": 4,
		"KILLED": 5, "KILLING": 6, "LOST": 7, "PARTITIONED": 18,
	}
	all := Statuses()
	if len(all) != len(want) {
		t.Fatalf("Statuses() has %d entries, want %d", len(all), len(want))
	}
	for _, s := range all {
		v, ok := want[s.String()]
		if !ok || v != int(s) {
			t.Errorf("%v = %d, want %d (known: %v)", s, int(s), v, ok)
		}
		if !s.Valid() {
			t.Errorf("%v not valid", s)
		}
	}
	if Deleted.Valid() || Deleted.String() != "DELETED" {
		t.Errorf("Deleted: valid=%v name=%q", Deleted.Valid(), Deleted.String())
	}
	if got := Status(42).String(); got != "Status(42)" {
		t.Errorf("Status(42).String() = %q", got)
	}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Status
		err  string
	}{
		{"RUNNING", Running, ""},
		{"running", Running, ""},
		{" Partitioned ", Partitioned, ""},
		{"INIT", Init, ""},
		{"PENDING", Pending, ""},
		{"THROTTLED", Throttled, ""},
		{"DELETED", 0, "pseudo-state"},
		{"", 0, "unknown schedule status"},
		{"TASK_RUNNING", 0, "unknown schedule status"},
		{"RUN", 0, "unknown schedule status"},
	} {
		got, err := ParseStatus(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseStatus(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseStatus(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, s := range Statuses() {
		if got, err := ParseStatus(s.String()); err != nil || got != s {
			t.Errorf("round trip of %v: %v, %v", s, got, err)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	type wrap struct {
		S Status   `json:"s"`
		L []Status `json:"l"`
	}
	b, err := json.Marshal(wrap{S: Killing, L: []Status{Pending, Partitioned}})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"s":"KILLING","l":["PENDING","PARTITIONED"]}` {
		t.Errorf("marshal: %s", b)
	}
	var w wrap
	if err := json.Unmarshal(b, &w); err != nil || w.S != Killing || len(w.L) != 2 || w.L[1] != Partitioned {
		t.Errorf("unmarshal: %+v, %v", w, err)
	}
	if err := json.Unmarshal([]byte(`{"s":"BOGUS"}`), &w); err == nil {
		t.Error("unmarshal of an unknown name succeeded")
	}
	if _, err := json.Marshal(wrap{S: Deleted}); err == nil {
		t.Error("marshal of DELETED succeeded")
	}
	if _, err := json.Marshal(wrap{S: Status(8)}); err == nil {
		t.Error("marshal of Status(8) succeeded")
	}
}

func TestStatusSets(t *testing.T) {
	set := func(f func(Status) bool) string {
		var names []string
		for _, s := range Statuses() {
			if f(s) {
				names = append(names, s.String())
			}
		}
		return strings.Join(names, " ")
	}
	for _, tc := range []struct {
		name string
		f    func(Status) bool
		want string // in Statuses() order
	}{
		{"active", Status.Active, "THROTTLED PENDING ASSIGNED STARTING RUNNING PREEMPTING RESTARTING DRAINING KILLING PARTITIONED"},
		{"slave assigned", Status.SlaveAssigned, "ASSIGNED STARTING RUNNING PREEMPTING RESTARTING DRAINING KILLING PARTITIONED"},
		{"live", Status.Live, "RUNNING PREEMPTING RESTARTING DRAINING KILLING PARTITIONED"},
		{"terminal", Status.Terminal, "FINISHED FAILED KILLED LOST"},
		{"transient", Status.Transient, "ASSIGNED PREEMPTING RESTARTING DRAINING KILLING"},
	} {
		if got := set(tc.f); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, got, tc.want)
		}
		if tc.f(Deleted) {
			t.Errorf("DELETED is %s", tc.name)
		}
		for _, s := range Statuses() {
			if NameIn(s.String(), tc.f) != tc.f(s) {
				t.Errorf("NameIn(%s, %s) = %v", s, tc.name, !tc.f(s))
			}
			if NameIn(strings.ToLower(s.String()), tc.f) {
				t.Errorf("NameIn(%s, %s): a lower-case name is not a status the API carries", strings.ToLower(s.String()), tc.name)
			}
		}
		if NameIn("DELETED", tc.f) || NameIn("", tc.f) {
			t.Errorf("a pseudo or empty status is %s", tc.name)
		}
	}
}

func TestFromMesos(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Status
	}{
		{"TASK_STARTING", Starting},
		{"TASK_STAGING", Starting},
		{"TASK_RUNNING", Running},
		{"TASK_FINISHED", Finished},
		{"TASK_FAILED", Failed},
		{"TASK_KILLING", Killed},
		{"TASK_KILLED", Killed},
		{"TASK_LOST", Lost},
		{"TASK_ERROR", Lost},
		{"TASK_DROPPED", Lost},
		{"TASK_GONE", Lost},
		{"TASK_GONE_BY_OPERATOR", Lost},
		{"TASK_UNREACHABLE", Partitioned},
		{"TASK_UNKNOWN", Partitioned},
	} {
		if got, err := FromMesos(tc.in); err != nil || got != tc.want {
			t.Errorf("FromMesos(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "RUNNING", "task_running", "TASK_BOGUS"} {
		if got, err := FromMesos(bad); err == nil || !strings.Contains(err.Error(), "unknown Mesos task state") {
			t.Errorf("FromMesos(%q) = %v, %v; want an error", bad, got, err)
		}
	}
}

func TestTaskID(t *testing.T) {
	for _, tc := range []struct {
		role, env, job string
		instance       int
		uuid, want     string
	}{
		{"www-data", "prod", "hello", 0, "7c9f4a5e-1b2c-4d3e-8f90-a1b2c3d4e5f6", "www-data-prod-hello-0-7c9f4a5e-1b2c-4d3e-8f90-a1b2c3d4e5f6"},
		{"vagrant", "test", "http_example", 12, "u", "vagrant-test-http_example-12-u"},
		{"ro.le", "dev env", "job/name", 3, "a:b", "ro-le-dev-env-job-name-3-a-b"},
		{"rôle", "e", "j", 1, "x", "r-le-e-j-1-x"},
		{"", "", "", 0, "", "---0-"},
	} {
		if got := TaskID(tc.role, tc.env, tc.job, tc.instance, tc.uuid); got != tc.want {
			t.Errorf("TaskID(%q, %q, %q, %d, %q) = %q, want %q", tc.role, tc.env, tc.job, tc.instance, tc.uuid, got, tc.want)
		}
	}
}
