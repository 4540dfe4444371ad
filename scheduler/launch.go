package scheduler

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
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
	taskRes := []mesos.Resource{res(resources.NewCPUs(cpus).Resource), res(resources.NewMemory(float64(ram)).Resource)}
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
	execRes := []mesos.Resource{res(resources.NewCPUs(s.cfg.Overhead.CPUs).Resource), res(resources.NewMemory(s.cfg.Overhead.MemMB).Resource)}
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
