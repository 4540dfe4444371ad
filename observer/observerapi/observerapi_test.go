package observerapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// allSet fails the test for every field of v (a struct, followed into
// nested structs, pointers, slices and maps) that holds its zero value, so
// that a field added to a type and left out of the test below is caught.
func allSet(t *testing.T, name string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			t.Errorf("%s is nil", name)
			return
		}
		allSet(t, name, v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			allSet(t, name+"."+v.Type().Field(i).Name, v.Field(i))
		}
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			t.Errorf("%s is empty", name)
			return
		}
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8 {
			allSet(t, name+"[0]", v.Index(0))
		}
		if v.Kind() == reflect.Map {
			it := v.MapRange()
			it.Next()
			allSet(t, name+"["+it.Key().String()+"]", it.Value())
		}
	default:
		if v.IsZero() {
			t.Errorf("%s is zero", name)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestRoundTrip: each type of the contract, every field set, encodes and
// decodes to itself, under the keys Thermos uses.
func TestRoundTrip(t *testing.T) {
	usage := Usage{CPU: 0.25, RAM: 5 << 20, User: 1.5, System: 0.5, Threads: 3}
	taskUsage := TaskUsage{Usage: usage, Disk: 12345, Source: "cgroup"}
	for _, tc := range []struct {
		v    any
		keys []string // some keys the encoding must have
	}{
		{&Usage{CPU: 0.5, RAM: 1, User: 2, System: 3, Threads: 4}, []string{`"cpu"`, `"ram"`, `"threads"`}},
		{&taskUsage, []string{`"cpu"`, `"disk"`, `"source"`}},
		{&TaskIDs{Tasks: []TaskRow{{TaskID: "t-0", Name: "hello", Role: "www-data", LaunchTimestamp: 1704164645.5, State: "ACTIVE",
			StateTimestamp: 1704164646, Ports: map[string]int{"http": 31001}, TaskUsage: taskUsage}},
			Type: "active", Offset: 1, Num: 20, TaskCount: 2}, []string{`"task_id"`, `"launch_timestamp"`, `"task_count"`, `"disk"`}},
		{&TaskIDCount{Active: 1, All: 3, Finished: 2}, []string{`"active"`, `"all"`, `"finished"`}},
		{&Task{TaskID: "t-0", Name: "hello", LaunchTimestamp: 1704164645.5, State: "ACTIVE", StateTimestamp: 1704164646,
			User: "www-data", ResourceConsumption: taskUsage, Ports: map[string]int{"http": 31001},
			Processes: map[string][]string{"running": {"hello"}}, Task: json.RawMessage(`{"name":"hello"}`),
			Active: true, Statuses: []Status{{State: "ACTIVE", Timestamp: 1704164645.5}}, Hostname: "agent-one",
			Sandbox: "/var/lib/mesos/slaves/S0/frameworks/F/executors/E/runs/C/sandbox", AgentID: "S0", FrameworkID: "F",
			ExecutorID: "E", ContainerID: "C", ReplayError: "runner: truncated record"},
			[]string{`"resource_consumption"`, `"state_timestamp"`, `"processes"`, `"replay_error"`}},
		{&Run{ProcessName: "hello", ProcessRun: 1, State: "FAILED", StartTime: ptr(1704164646.0), StopTime: ptr(1704164647.0),
			ReturnCode: ptr(1), Used: &usage, ForkTime: ptr(1704164645.5)}, []string{`"process_run"`, `"return_code"`, `"used"`}},
		{&Chunk{Offset: 6, Length: 8, Data: "<world>\n"}, []string{`"offset"`, `"length"`, `"data"`}},
		{&Error{Error: "bad run"}, []string{`"error"`}},
		{&Listing{TaskID: "t-0", Path: "data", Truncated: true, Entries: []DirEntry{{Name: "notes-link", Path: "data/notes-link",
			Kind: KindSymlink, Target: KindFile, Size: 11, Mode: "Lrwxrwxrwx", Mtime: 1704164645.25}}},
			[]string{`"entries"`, `"kind":"symlink"`, `"target":"file"`, `"truncated"`}},
	} {
		typ := reflect.TypeOf(tc.v).Elem()
		t.Run(typ.Name(), func(t *testing.T) {
			allSet(t, typ.Name(), reflect.ValueOf(tc.v))
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.keys {
				if !strings.Contains(string(b), k) {
					t.Errorf("%s has no %s", b, k)
				}
			}
			back := reflect.New(typ)
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(back.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Interface(), tc.v) {
				t.Errorf("decoded %+v\nwant %+v", back.Elem(), reflect.ValueOf(tc.v).Elem())
			}
		})
	}
}

func TestDirEntryKinds(t *testing.T) {
	for _, tc := range []struct {
		e                  DirEntry
		dir, file, outside bool
	}{
		{DirEntry{Kind: KindDir}, true, false, false},
		{DirEntry{Kind: KindFile}, false, true, false},
		{DirEntry{Kind: KindOther}, false, false, false},
		{DirEntry{Kind: KindSymlink, Target: KindDir}, true, false, false},
		{DirEntry{Kind: KindSymlink, Target: KindFile}, false, true, false},
		{DirEntry{Kind: KindSymlink, Target: KindOther}, false, false, false},
		{DirEntry{Kind: KindSymlink, Target: KindOutside}, false, false, true},
		{DirEntry{Kind: KindDir, Target: KindFile}, true, false, false}, // a target only counts for a symlink
	} {
		if tc.e.IsDir() != tc.dir || tc.e.IsFile() != tc.file || tc.e.Outside() != tc.outside {
			t.Errorf("%+v: dir %v file %v outside %v", tc.e, tc.e.IsDir(), tc.e.IsFile(), tc.e.Outside())
		}
	}
}

func TestPaths(t *testing.T) {
	for got, want := range map[string]string{
		TaskPath("a b"):    "/j/task/a%20b",
		ProcessesPath("t"): "/j/process/t",
		LogDataPath("t", "my proc", 2, "stderr", -1, 0):  "/logdata/t/my%20proc/2/stderr?offset=-1&length=0",
		FileDataPath("t", "data/notes one.txt", 0, 4096): "/filedata/t/data/notes%20one.txt?offset=0&length=4096",
		FileDataPath("t", "a%2fb/?#", 0, -1):             "/filedata/t/a%252fb/%3F%23?offset=0&length=-1",
		BrowsePath("t", ""):                              "/j/browse/t",
		BrowsePath("t", "/.logs/hello/"):                 "/j/browse/t/.logs/hello",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}
