package tui

import (
	"context"
	"errors"

	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/observer/observerapi"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// Source is everything the TUI reads and does. HTTPSource talks to a real
// cluster; tests use fakes.
type Source interface {
	// Status is the `aurorabox status --json` document. ErrUnavailable
	// when there is no status source (a remote cluster).
	Status(ctx context.Context) (*status.Appliance, error)
	// Agents are the master's agents (/master/state). ErrUnavailable when
	// no master URL is known.
	Agents(ctx context.Context) ([]Agent, error)
	// Jobs is getJobs for every role.
	Jobs(ctx context.Context) ([]api.JobConfiguration, error)
	// Tasks is getTasksWithoutConfigs (getTasksStatus without the executor
	// data, which the TUI never shows).
	Tasks(ctx context.Context, q api.TaskQuery) ([]api.ScheduledTask, error)
	// Kill is killTasks for instances of a job.
	Kill(ctx context.Context, job api.JobKey, instances []int) error
	// Restart is restartShards for instances of a job.
	Restart(ctx context.Context, job api.JobKey, instances []int) error
	// Task is the observer's view of a task (/j/task/<id> with the latest
	// run of each process from /j/process/<id>). ErrNotObserved when the
	// observer does not know it.
	Task(ctx context.Context, t TaskRef) (*ObservedTask, error)
	// Log reads a chunk of a process run's stdout or stderr (/logdata).
	// An offset of -1 is the end of the file, a length of -1 the rest;
	// the chunk's Length is the bytes read, which the next offset adds.
	Log(ctx context.Context, t TaskRef, process string, run int, stream string, offset, length int64) (observerapi.Chunk, error)
	// Dir lists a sandbox directory ("" is the sandbox itself;
	// /j/browse).
	Dir(ctx context.Context, t TaskRef, path string) (observerapi.Listing, error)
	// File reads a chunk of a sandbox file (/filedata), as Log.
	File(ctx context.Context, t TaskRef, path string, offset, length int64) (observerapi.Chunk, error)
}

// ErrUnavailable means a source of data is not configured.
var ErrUnavailable = errors.New("not available")

// ErrNotObserved means the observer does not know the task (yet).
var ErrNotObserved = errors.New("the observer does not know this task")

// TaskRef names a task and the host it runs on (for an observer URL with
// {host} in it).
type TaskRef struct {
	ID   string
	Host string
}

// Agent is one agent of /master/state.
type Agent struct {
	ID       string
	Hostname string
	Active   bool
	CPUs     float64 // total
	UsedCPUs float64
	MemMB    float64
	UsedMem  float64
	DiskMB   float64
	UsedDisk float64
}

// ObservedTask is what the observer says about a task.
type ObservedTask struct {
	ID        string
	State     string // the Thermos task state (ACTIVE, SUCCESS, ...)
	User      string
	Hostname  string
	Sandbox   string
	Launched  float64 // seconds since the epoch
	Ports     map[string]int
	CPU       float64 // cores
	RAM       int64   // bytes
	Disk      int64   // bytes
	Processes []Process
}

// Process is a process of a task and its latest run.
type Process struct {
	Name   string
	State  string // of the latest run; WAITING when it never ran
	Run    int    // the latest run's number; -1 when it never ran
	Start  float64
	Stop   float64
	Code   *int
	CPU    float64
	RAM    int64
	Active bool // the latest run has usage (it runs)
}
