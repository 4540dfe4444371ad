// Package assigned reads and writes the task description the scheduler
// hands the executor in Mesos TaskInfo.data: Aurora's AssignedTask (task
// id, agent, instance, assigned ports, and the TaskConfig; the type is
// scheduler/api's) with, in TaskConfig.executorConfig.data, the job's
// configuration as the Aurora client ships it (thermos/schema's Job; §4.5
// of the reference: the whole Job as JSON, thermos and mesos references
// still unresolved).
//
// Aurora's scheduler serializes AssignedTask with Thrift's binary protocol;
// ours uses JSON with the same field names (Thrift's IDL names for the
// outer structs, the pystachio schema names inside executorConfig.data).
// Absent fields of the job keep Aurora's defaults (see schema's
// ...OrDefault methods).
package assigned

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/thermos/schema"
)

// Decode parses TaskInfo.data. The error says what is wrong; the executor
// reports it with TASK_FAILED.
func Decode(data []byte) (*api.AssignedTask, *schema.Job, error) {
	var at api.AssignedTask
	if err := json.Unmarshal(data, &at); err != nil {
		return nil, nil, fmt.Errorf("assigned task: %w", err)
	}
	if at.TaskID == "" {
		return nil, nil, errors.New("assigned task: no taskId")
	}
	if at.Task.ExecutorConfig.Data == "" {
		return nil, nil, errors.New("assigned task: empty executorConfig.data")
	}
	var job schema.Job
	if err := json.Unmarshal([]byte(at.Task.ExecutorConfig.Data), &job); err != nil {
		return nil, nil, fmt.Errorf("executorConfig.data: %w", err)
	}
	if len(job.Task.Processes) == 0 {
		return nil, nil, errors.New("executorConfig.data: the task has no processes")
	}
	if at.AssignedPorts == nil {
		at.AssignedPorts = map[string]int{}
	}
	return &at, &job, nil
}

// Encode is Decode's inverse, for the scheduler and tests.
func Encode(at api.AssignedTask, job schema.Job) ([]byte, error) {
	data, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	at.Task.ExecutorConfig = api.ExecutorConfig{Name: "AuroraExecutor", Data: string(data)}
	return json.Marshal(at)
}
