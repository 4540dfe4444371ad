package scheduler

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aurorabox/aurorabox/limits"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
)

// ExecutorName is Aurora's AURORA_EXECUTOR_NAME.
const ExecutorName = "AuroraExecutor"

// Overhead is what the scheduler adds to each task's executor, on top of
// the task's own resources (Aurora's -thermos_executor_cpu/ram).
type Overhead struct {
	CPUs  float64
	MemMB float64
}

// Executor overheads of the two timing profiles: the dev profile's (the
// default) is small, as aurorabox's executor is a small Go process; the
// aurora profile's is Aurora 0.11's -thermos_executor_cpu 0.25 and
// -thermos_executor_ram 128MB, so that the same jobs fit the same agents.
var (
	DevExecutorOverhead    = Overhead{CPUs: 0.01, MemMB: 32}
	AuroraExecutorOverhead = Overhead{CPUs: 0.25, MemMB: 128}
)

// taskInfo is the Mesos TaskInfo for an assigned task, as Aurora builds it
// (§5.2): name role/env/job, executor thermos-<taskId> running the
// executor command, the assigned task in data, source and labels, and
// DiscoveryInfo naming job.env.role with one port per assigned port.
func (s *Scheduler) taskInfo(at api.AssignedTask, agentID string) (mesos.TaskInfo, error) {
	data, err := json.Marshal(at)
	if err != nil {
		return mesos.TaskInfo{}, fmt.Errorf("encode assigned task: %w", err)
	}
	k := at.Task.Job
	cpus, ram, disk, _ := at.Task.Scalars()
	role := s.cfg.Role
	res := func(r mesos.Resource) mesos.Resource {
		if role != "" && role != "*" {
			r.Role = proto.String(role)
		}
		return r
	}
	// A revocable task's CPUs, and its executor's, are revocable; the
	// rest is not (Aurora without -enable_revocable_ram).
	revocable := tiers[at.Task.Tier].revocable
	cpuRes := func(x float64) mesos.Resource {
		r := res(resources.NewCPUs(x).Resource)
		if revocable {
			r.Revocable = &mesos.Resource_RevocableInfo{}
		}
		return r
	}
	taskRes := []mesos.Resource{cpuRes(cpus), res(resources.NewMemory(float64(ram)).Resource)}
	if disk > 0 {
		taskRes = append(taskRes, res(resources.NewDisk(float64(disk)).Resource))
	}
	var names []string
	for n := range at.AssignedPorts {
		names = append(names, n)
	}
	sort.Strings(names)
	var ranges []mesos.Value_Range
	var discoveryPorts []mesos.Port
	for _, n := range names {
		p := uint64(at.AssignedPorts[n])
		ranges = append(ranges, mesos.Value_Range{Begin: p, End: p})
		discoveryPorts = append(discoveryPorts, mesos.Port{Number: uint32(p), Name: proto.String(n), Protocol: proto.String("TCP")})
	}
	if len(ranges) > 0 {
		taskRes = append(taskRes, res(mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: ranges}}))
	}
	execRes := []mesos.Resource{cpuRes(s.cfg.Overhead.CPUs), res(resources.NewMemory(s.cfg.Overhead.MemMB).Resource)}
	source := k.Role + "." + k.Environment + "." + k.Name + "." + strconv.Itoa(at.InstanceID)
	args := append([]string{s.cfg.ExecutorPath, "executor"}, s.cfg.ExecutorFlags...)
	labels := &mesos.Labels{Labels: []mesos.Label{
		{Key: "source", Value: proto.String(source)},
		{Key: "org.apache.aurora.tier", Value: proto.String(at.Task.Tier)},
	}}
	for _, m := range at.Task.Metadata {
		labels.Labels = append(labels.Labels, mesos.Label{Key: "org.apache.aurora.metadata." + m.Key, Value: proto.String(m.Value)})
	}
	return mesos.TaskInfo{
		Name:      k.String(),
		TaskID:    mesos.TaskID{Value: at.TaskID},
		AgentID:   mesos.AgentID{Value: agentID},
		Resources: taskRes,
		Data:      data,
		Labels:    labels,
		Executor: &mesos.ExecutorInfo{
			ExecutorID: mesos.ExecutorID{Value: "thermos-" + at.TaskID},
			Name:       proto.String(ExecutorName),
			Source:     proto.String(source),
			Resources:  execRes,
			Command: &mesos.CommandInfo{
				Value: proto.String(s.cfg.ExecutorPath), Arguments: args, Shell: proto.Bool(false),
				User: proto.String(s.cfg.User),
			},
			Labels: labels,
		},
		Discovery: &mesos.DiscoveryInfo{
			Visibility:  mesos.CLUSTER,
			Name:        proto.String(k.Name + "." + k.Environment + "." + k.Role),
			Environment: proto.String(k.Environment),
			Location:    proto.String(s.cfg.Cluster),
			Ports:       &mesos.Ports{Ports: discoveryPorts},
		},
	}, nil
}

// launchEventSize is the size of the executor's LAUNCH event for ti: what
// must fit in one RecordIO record of at most limits.ExecutorEventBytes.
func launchEventSize(ti mesos.TaskInfo) int {
	ev := executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: ti}}
	return ev.Size()
}

// checkLaunchSize refuses a task config whose LAUNCH event would be larger
// than limits.TaskLaunchBytes, measured as the scheduler would send it
// with the longest task id (the highest instance number) and every port
// at its widest; placement adds only the agent's id and host, for which
// limits.LaunchReserveBytes is kept. Without it such a task would be
// placed, never reach its executor, and be replaced over and over.
func (s *Scheduler) checkLaunchSize(tc api.TaskConfig) error {
	k := tc.Job
	_, _, _, ports := tc.Scalars()
	at := api.AssignedTask{
		TaskID:        state.TaskID(k.Role, k.Environment, k.Name, s.cfg.MaxTasksPerJob, newUUID()),
		Task:          tc,
		InstanceID:    s.cfg.MaxTasksPerJob,
		AssignedPorts: map[string]int{},
	}
	for _, p := range ports {
		at.AssignedPorts[p] = 65535
	}
	ti, err := s.taskInfo(at, "")
	if err != nil {
		return invalid("Task config cannot be encoded for its executor: %v", err)
	}
	if n := launchEventSize(ti); n > limits.TaskLaunchBytes {
		return invalid("Task config too large: it reaches the executor as %d bytes (%s), more than the %d bytes (%s) an executor can receive "+
			"(a Mesos executor reads events of at most %s; %s of that are kept for placement). Make the executor config smaller, "+
			"for example by fetching large files instead of inlining them.",
			n, formatBytes(n), limits.TaskLaunchBytes, formatBytes(limits.TaskLaunchBytes), formatBytes(limits.ExecutorEventBytes), formatBytes(limits.LaunchReserveBytes))
	}
	return nil
}

// formatBytes renders a byte count in binary units with at most two
// decimals, e.g. "4 MiB" or "3.94 MiB".
func formatBytes(n int) string {
	if n < 1024 {
		return strconv.Itoa(n) + " B"
	}
	v, suffix := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB"} {
		if v < 1024 {
			break
		}
		v, suffix = v/1024, u
	}
	f := strings.TrimRight(strings.TrimRight(strconv.FormatFloat(v, 'f', 2, 64), "0"), ".")
	return f + " " + suffix
}
