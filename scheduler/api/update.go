package api

// Types of the job update RPCs (startJobUpdate, pauseJobUpdate, ...,
// getJobUpdateDetails), with the field names of Aurora's api.thrift.
// Statuses (JobUpdateStatus) and actions (JobUpdateAction) are carried
// by name, as ScheduleStatus is.

// JobUpdateKey names one update of a job.
type JobUpdateKey struct {
	Job JobKey `json:"job"`
	ID  string `json:"id"`
}

// QueueJobUpdateStrategy keeps up to GroupSize instances in flight.
type QueueJobUpdateStrategy struct {
	GroupSize int `json:"groupSize"`
}

// BatchJobUpdateStrategy updates GroupSize instances at a time, each
// batch after the previous one is done.
type BatchJobUpdateStrategy struct {
	GroupSize           int  `json:"groupSize"`
	AutopauseAfterBatch bool `json:"autopauseAfterBatch,omitempty"`
}

// VariableBatchJobUpdateStrategy is a batch strategy whose batches have
// the sizes of GroupSizes in turn (the last one repeats).
type VariableBatchJobUpdateStrategy struct {
	GroupSizes          []int `json:"groupSizes"`
	AutopauseAfterBatch bool  `json:"autopauseAfterBatch,omitempty"`
}

// JobUpdateStrategy is one of the strategies (a Thrift union).
type JobUpdateStrategy struct {
	QueueStrategy    *QueueJobUpdateStrategy         `json:"queueStrategy,omitempty"`
	BatchStrategy    *BatchJobUpdateStrategy         `json:"batchStrategy,omitempty"`
	VarBatchStrategy *VariableBatchJobUpdateStrategy `json:"varBatchStrategy,omitempty"`
}

// JobUpdateSettings are how an update proceeds. Without UpdateStrategy,
// UpdateGroupSize and WaitForBatchCompletion (both deprecated in Aurora)
// choose a batch or a queue strategy.
type JobUpdateSettings struct {
	UpdateGroupSize            int   `json:"updateGroupSize,omitempty"`
	MaxPerInstanceFailures     int   `json:"maxPerInstanceFailures"`
	MaxFailedInstances         int   `json:"maxFailedInstances"`
	MinWaitInInstanceRunningMs int64 `json:"minWaitInInstanceRunningMs"`
	RollbackOnFailure          bool  `json:"rollbackOnFailure"`
	// UpdateOnlyTheseInstances limits the update to these instances
	// (empty: all).
	UpdateOnlyTheseInstances []Range `json:"updateOnlyTheseInstances,omitempty"`
	WaitForBatchCompletion   bool    `json:"waitForBatchCompletion,omitempty"`
	// BlockIfNoPulsesAfterMs makes a coordinated update, which rolls only
	// while pulseJobUpdate is called within this many ms; 0: not one.
	BlockIfNoPulsesAfterMs int64              `json:"blockIfNoPulsesAfterMs,omitempty"`
	SlaAware               bool               `json:"slaAware,omitempty"`
	UpdateStrategy         *JobUpdateStrategy `json:"updateStrategy,omitempty"`
}

// JobUpdateRequest is startJobUpdate's (and getJobUpdateDiff's) request:
// the job (TaskConfig.Job) is to run InstanceCount instances of
// TaskConfig.
type JobUpdateRequest struct {
	TaskConfig    TaskConfig        `json:"taskConfig"`
	InstanceCount int               `json:"instanceCount"`
	Settings      JobUpdateSettings `json:"settings"`
	Metadata      []Metadata        `json:"metadata,omitempty"`
}

// JobUpdateState is an update's status and times (ms since the epoch).
type JobUpdateState struct {
	Status                  string `json:"status"`
	CreatedTimestampMs      int64  `json:"createdTimestampMs"`
	LastModifiedTimestampMs int64  `json:"lastModifiedTimestampMs"`
}

// JobUpdateSummary is an update in short.
type JobUpdateSummary struct {
	Key      JobUpdateKey   `json:"key"`
	User     string         `json:"user"`
	State    JobUpdateState `json:"state"`
	Metadata []Metadata     `json:"metadata,omitempty"`
}

// InstanceTaskConfig is a configuration and the instances it is for.
type InstanceTaskConfig struct {
	Task      TaskConfig `json:"task"`
	Instances []Range    `json:"instances"`
}

// JobUpdateInstructions are what the update does: the configurations of
// the instances it changes before, and what they become (none when the
// update only removes instances).
type JobUpdateInstructions struct {
	InitialState []InstanceTaskConfig `json:"initialState"`
	DesiredState *InstanceTaskConfig  `json:"desiredState,omitempty"`
	Settings     JobUpdateSettings    `json:"settings"`
}

// JobUpdate is an update's summary and instructions.
type JobUpdate struct {
	Summary      JobUpdateSummary      `json:"summary"`
	Instructions JobUpdateInstructions `json:"instructions"`
}

// JobUpdateEvent is a change of an update's status.
type JobUpdateEvent struct {
	Status      string `json:"status"`
	TimestampMs int64  `json:"timestampMs"`
	User        string `json:"user,omitempty"`
	Message     string `json:"message,omitempty"`
}

// JobInstanceUpdateEvent is one instance's progress (Action is a
// JobUpdateAction such as INSTANCE_UPDATING or INSTANCE_UPDATED).
type JobInstanceUpdateEvent struct {
	InstanceID  int    `json:"instanceId"`
	TimestampMs int64  `json:"timestampMs"`
	Action      string `json:"action"`
	Message     string `json:"message,omitempty"`
}

// JobUpdateDetails is an update with its history.
type JobUpdateDetails struct {
	Update         JobUpdate                `json:"update"`
	UpdateEvents   []JobUpdateEvent         `json:"updateEvents"`
	InstanceEvents []JobInstanceUpdateEvent `json:"instanceEvents"`
}

// JobUpdateQuery selects updates; empty fields match everything.
type JobUpdateQuery struct {
	Role           string        `json:"role,omitempty"`
	Key            *JobUpdateKey `json:"key,omitempty"`
	JobKey         *JobKey       `json:"jobKey,omitempty"`
	User           string        `json:"user,omitempty"`
	UpdateStatuses []string      `json:"updateStatuses,omitempty"`
	Offset         int           `json:"offset,omitempty"`
	Limit          int           `json:"limit,omitempty"`
}

// StartJobUpdateResult names the update started (or, with
// INVALID_REQUEST, the one already in progress).
type StartJobUpdateResult struct {
	Key           JobUpdateKey     `json:"key"`
	UpdateSummary JobUpdateSummary `json:"updateSummary"`
}

// GetJobUpdateSummariesResult lists update summaries, newest first.
type GetJobUpdateSummariesResult struct {
	UpdateSummaries []JobUpdateSummary `json:"updateSummaries"`
}

// GetJobUpdateDetailsResult is the update asked for by key (Details) or
// the updates a query selects (DetailsList).
type GetJobUpdateDetailsResult struct {
	Details     *JobUpdateDetails  `json:"details,omitempty"`
	DetailsList []JobUpdateDetails `json:"detailsList"`
}

// PulseJobUpdateResult is OK, or FINISHED when the update is no longer
// active.
type PulseJobUpdateResult struct {
	Status string `json:"status"`
}

// GetJobUpdateDiffResult is what an update request would do to the job,
// by configuration.
type GetJobUpdateDiffResult struct {
	Add       []ConfigGroup `json:"add"`
	Remove    []ConfigGroup `json:"remove"`
	Update    []ConfigGroup `json:"update"`
	Unchanged []ConfigGroup `json:"unchanged"`
}
