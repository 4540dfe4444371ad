// Package observerapi is the observer's JSON API (reference §10.1): the
// types that package observer writes on its JSON endpoints and that a
// reader (package tui) decodes, and the paths of those endpoints. It is the
// one declaration of that contract; both sides import it and neither
// declares its own copy.
//
// The shapes follow the Thermos observer's (task_observer.py and
// file_browser.py): the same keys, times in seconds since the epoch. Fields
// Thermos does not have are additions, never renames. The directory
// listing (/j/browse) is an addition: Thermos lists a sandbox directory
// only as an HTML page.
//
// The package imports only the standard library.
package observerapi

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
)

// Usage is the resource usage of a process tree or a container, with
// Thermos's names (ProcessSample.to_dict).
type Usage struct {
	CPU     float64 `json:"cpu"`     // cores busy: 1.0 is one core, averaged since the previous sample
	RAM     int64   `json:"ram"`     // resident bytes (for a cgroup: anonymous and mapped file pages)
	User    float64 `json:"user"`    // user CPU seconds, cumulative
	System  float64 `json:"system"`  // system CPU seconds, cumulative
	Threads int     `json:"threads"` // threads (tasks, for a cgroup)
}

// TaskUsage is a task's usage plus its sandbox's disk usage.
type TaskUsage struct {
	Usage
	Disk int64 `json:"disk"` // bytes allocated in the sandbox
	// Source is "cgroup", "proc", or "" when nothing of the task runs.
	Source string `json:"source"`
}

// TaskRow is one row of /j/task_ids.
type TaskRow struct {
	TaskID          string         `json:"task_id"`
	Name            string         `json:"name"`
	Role            string         `json:"role"`
	LaunchTimestamp float64        `json:"launch_timestamp"`
	State           string         `json:"state"`
	StateTimestamp  float64        `json:"state_timestamp"`
	Ports           map[string]int `json:"ports"`
	TaskUsage
}

// TaskIDs is /j/task_ids[/<type>[/<offset>[/<num>]]].
type TaskIDs struct {
	Tasks     []TaskRow `json:"tasks"`
	Type      string    `json:"type"` // active, finished or all
	Offset    int       `json:"offset"`
	Num       int       `json:"num"`
	TaskCount int       `json:"task_count"` // of the type, all pages
}

// TaskIDCount is /j/task_id_count.
type TaskIDCount struct {
	Active   int `json:"active"`
	All      int `json:"all"`
	Finished int `json:"finished"`
}

// Status is one entry of a task's state history.
type Status struct {
	State     string  `json:"state"`
	Timestamp float64 `json:"timestamp"`
}

// Task is one task of /j/task/<id> and /j/task?task_id=a,b, which answer
// a map from task id to Task.
type Task struct {
	TaskID              string              `json:"task_id"`
	Name                string              `json:"name"`
	LaunchTimestamp     float64             `json:"launch_timestamp"`
	State               string              `json:"state"` // the Thermos task state (ACTIVE, SUCCESS, ...)
	StateTimestamp      float64             `json:"state_timestamp"`
	User                string              `json:"user"`
	ResourceConsumption TaskUsage           `json:"resource_consumption"`
	Ports               map[string]int      `json:"ports"`
	Processes           map[string][]string `json:"processes"` // waiting, running, success, failed, killed → process names
	Task                json.RawMessage     `json:"task"`      // the task's configuration
	// Additions.
	Active      bool     `json:"active"`
	Statuses    []Status `json:"statuses"`
	Hostname    string   `json:"hostname"`
	Sandbox     string   `json:"sandbox"`
	AgentID     string   `json:"agent_id"`
	FrameworkID string   `json:"framework_id"`
	ExecutorID  string   `json:"executor_id"`
	ContainerID string   `json:"container_id"`
	ReplayError string   `json:"replay_error,omitempty"`
}

// Run is a process run: /j/process/<id>/<process>[/<run>]; /j/process/<id>
// answers a map from process name to its latest Run, and
// /j/processes?task_id=a,b a map from task id to that.
type Run struct {
	ProcessName string   `json:"process_name"`
	ProcessRun  int      `json:"process_run"`
	State       string   `json:"state"`
	StartTime   *float64 `json:"start_time,omitempty"`
	StopTime    *float64 `json:"stop_time,omitempty"`
	ReturnCode  *int     `json:"return_code,omitempty"`
	Used        *Usage   `json:"used,omitempty"` // while it runs
	// Additions.
	ForkTime *float64 `json:"fork_time,omitempty"`
}

// Chunk is a piece of a file, as /logdata and /filedata answer. Length is
// the number of bytes read, which is what a reader adds to Offset for the
// next chunk; Data is those bytes as text (bytes that are not UTF-8 become
// U+FFFD).
type Chunk struct {
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Data   string `json:"data"`
}

// Error is the body of a JSON endpoint's error answer.
type Error struct {
	Error string `json:"error"`
}

// Kind is what a directory entry is.
type Kind string

// The kinds of a directory entry. Only a KindFile can be read (/filedata)
// and only a KindDir listed.
const (
	KindDir     Kind = "dir"
	KindFile    Kind = "file"    // a regular file
	KindSymlink Kind = "symlink" // see DirEntry.Target
	KindOther   Kind = "other"   // a FIFO, socket or device: never opened
	// KindOutside is a symlink's Target when it does not resolve inside
	// the sandbox: it leads out of it, or nowhere.
	KindOutside Kind = "outside"
)

// DirEntry is one entry of a sandbox directory.
type DirEntry struct {
	Name string `json:"name"`
	// Path is the entry's path relative to the sandbox, the <path> of
	// FileDataPath or BrowsePath.
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// Target is, for a symlink, what it resolves to inside the sandbox
	// (KindDir, KindFile or KindOther), or KindOutside.
	Target Kind `json:"target,omitempty"`
	// Size is the file's size in bytes: a symlink's target's when it
	// resolves inside the sandbox, the link's own when not, and 0 for a
	// directory.
	Size int64  `json:"size"`
	Mode string `json:"mode"` // as ls prints it (fs.FileMode.String)
	// Mtime is the last modification, in seconds since the epoch.
	Mtime float64 `json:"mtime"`
}

// resolved is the kind an entry has once its symlink is followed.
func (e DirEntry) resolved() Kind {
	if e.Kind == KindSymlink {
		return e.Target
	}
	return e.Kind
}

// IsDir says the entry is a directory, or a symlink to one inside the
// sandbox: BrowsePath lists it.
func (e DirEntry) IsDir() bool { return e.resolved() == KindDir }

// IsFile says the entry is a regular file, or a symlink to one inside the
// sandbox: FileDataPath reads it.
func (e DirEntry) IsFile() bool { return e.resolved() == KindFile }

// Outside says the entry is a symlink that does not resolve inside the
// sandbox.
func (e DirEntry) Outside() bool { return e.Kind == KindSymlink && e.Target == KindOutside }

// MaxListing is the most entries a Listing holds.
const MaxListing = 5000

// Listing is /j/browse/<task_id>[/<path>]: the entries of a sandbox
// directory, directories (and symlinks to them) first, then by name; the
// same entries as the HTML /browse page lists.
type Listing struct {
	TaskID string `json:"task_id"`
	// Path is the directory, relative to the sandbox ("" is the sandbox).
	Path    string     `json:"path"`
	Entries []DirEntry `json:"entries"`
	// Truncated says the directory has more than MaxListing entries and
	// only the first MaxListing (in directory order) are listed.
	Truncated bool `json:"truncated"`
}

// The paths of the JSON endpoints, escaped, to append to the observer's
// base URL. A sandbox path is relative to the sandbox, "/"-separated; each
// of its segments is escaped on its own.

// TaskPath is /j/task/<id>.
func TaskPath(taskID string) string { return "/j/task/" + url.PathEscape(taskID) }

// ProcessesPath is /j/process/<id>: every process's latest run.
func ProcessesPath(taskID string) string { return "/j/process/" + url.PathEscape(taskID) }

// LogDataPath is /logdata/<id>/<process>/<run>/<stream>?offset=&length=.
func LogDataPath(taskID, process string, run int, stream string, offset, length int64) string {
	return "/logdata/" + url.PathEscape(taskID) + "/" + url.PathEscape(process) + "/" + strconv.Itoa(run) + "/" +
		url.PathEscape(stream) + chunkQuery(offset, length)
}

// FileDataPath is /filedata/<id>/<path>?offset=&length=.
func FileDataPath(taskID, path string, offset, length int64) string {
	return "/filedata/" + url.PathEscape(taskID) + escPath(path) + chunkQuery(offset, length)
}

// BrowsePath is /j/browse/<id>[/<path>].
func BrowsePath(taskID, path string) string {
	return "/j/browse/" + url.PathEscape(taskID) + escPath(path)
}

func chunkQuery(offset, length int64) string {
	return "?offset=" + strconv.FormatInt(offset, 10) + "&length=" + strconv.FormatInt(length, 10)
}

// escPath is "/" and each non-empty segment of p escaped, joined by "/"
// ("" for none).
func escPath(p string) string {
	var b strings.Builder
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			b.WriteByte('/')
			b.WriteString(url.PathEscape(s))
		}
	}
	return b.String()
}
