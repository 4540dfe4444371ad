// Package limits is the one place that says how large a message may be on
// each hop a job takes, from the aurora client to the executor, so that
// what one component accepts the next one can carry:
//
//	.aurora file (ConfigFileBytes) -> serialized job (checked by the client
//	against APIRequestBytes and by the scheduler against TaskLaunchBytes)
//	-> scheduler API request (APIRequestBytes) -> Mesos ACCEPT call to the
//	master (MesosCallBytes; the scheduler packs launches to fit) -> master
//	to agent frame (AgentFrameBytes) -> LAUNCH event to the executor
//	(ExecutorEventBytes, of which TaskLaunchBytes for the task itself).
//
// The executor's limit is the tightest and is not ours to change: the
// scheduler and executor speak the public Mesos APIs, and mesos-go's
// RecordIO reader (like Mesos' own executor library, which uses protobuf's
// default) reads events of at most 4 MiB. The scheduler therefore refuses,
// at the API, a task whose LAUNCH event would not fit (and the client
// before it sends one), the agent refuses such a launch from any framework
// with TASK_ERROR, and every other limit is derived from or checked against
// it (see limits_test.go).
package limits

const (
	// ExecutorEventBytes is the largest event (one RecordIO record, the
	// length line excluded) an executor reads from its agent: mesos-go's
	// recordio.NewReader default of 1<<22, protobuf's default maximum
	// message size.
	ExecutorEventBytes = 4 << 20

	// LaunchReserveBytes is the part of ExecutorEventBytes kept for what a
	// task gains only when it is placed (its agent's id and host name) and
	// for anything a scheduler's settings add, beyond what the scheduler
	// measures when the job is submitted (see TaskLaunchBytes).
	LaunchReserveBytes = 64 << 10

	// TaskLaunchBytes is the largest a task's LAUNCH event may be when the
	// scheduler measures it at submission (createJob, startJobUpdate,
	// scheduleCronJob, populateJobConfig, getJobUpdateDiff): the protobuf
	// executor Event carrying the TaskInfo the scheduler would send, with
	// the longest task id and port numbers. A bigger task is refused with
	// INVALID_REQUEST; it could never reach its executor.
	TaskLaunchBytes = ExecutorEventBytes - LaunchReserveBytes

	// APIRequestBytes is the largest scheduler API request body. A request
	// carries at most one task config; its JSON may be larger than the
	// task's launch (JSON escapes, Thrift-style field names), so it is
	// several times TaskLaunchBytes. A bigger body gets HTTP 413. The
	// client refuses to send a bigger job.
	APIRequestBytes = 16 << 20

	// APIResponseBytes is the most of an API answer the aurora client
	// reads.
	APIResponseBytes = 64 << 20

	// MesosCallBytes is the largest scheduler call body the master
	// accepts. The scheduler splits the tasks it places on one agent over
	// rounds so that an ACCEPT never exceeds it.
	MesosCallBytes = 16 << 20

	// AgentFrameBytes is the largest master-to-agent command frame the
	// agent reads. Commands are JSON: a launch of MesosCallBytes of
	// protobuf grows by base64 (4/3) and field names, and the agent's
	// subscription carries all its tasks.
	AgentFrameBytes = 64 << 20

	// AgentSubscribeBytes is the largest agent subscription (with every
	// task the agent holds) the master reads.
	AgentSubscribeBytes = 256 << 20

	// ExecutorCallBytes is the largest executor call body the agent reads.
	// A re-subscribing executor sends its unacknowledged tasks, each at
	// most ExecutorEventBytes.
	ExecutorCallBytes = 16 << 20

	// ConfigFileBytes is the largest .aurora file (or include) the client
	// reads.
	ConfigFileBytes = 16 << 20

	// AgentAPICallBytes is the largest v1 operator API call body the agent
	// reads (POST /api/v1). The calls it serves carry at most a path.
	AgentAPICallBytes = 64 << 10
)
