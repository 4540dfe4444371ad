package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
)

// requestError is a bad request: the API answers INVALID_REQUEST with it.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func invalid(format string, args ...any) error { return &requestError{fmt.Sprintf(format, args...)} }

// IsInvalid reports whether err is the caller's fault.
func IsInvalid(err error) bool {
	var re *requestError
	return errors.As(err, &re)
}

// validateJob checks a job the way Aurora's ConfigurationManager does for
// the parts we support, and fills in derived fields.
func (s *Scheduler) validateJob(j *api.JobConfiguration) error {
	if err := j.Key.Validate(); err != nil {
		return invalid("%v", err)
	}
	tc := &j.TaskConfig
	if tc.Job == (api.JobKey{}) {
		tc.Job = j.Key
	}
	if tc.Job != j.Key {
		return invalid("Task config job key %s does not match the job key %s", tc.Job, j.Key)
	}
	if j.InstanceCount <= 0 {
		return invalid("Instance count must be positive.")
	}
	if j.Owner.User == "" {
		j.Owner = tc.Owner
	}
	if tc.Owner.User == "" {
		tc.Owner = j.Owner
	}
	cpus, ram, disk, _ := tc.Scalars()
	if cpus <= 0 || ram <= 0 {
		return invalid("Task must have a positive amount of CPU and RAM (numCpus %v, ramMb %d).", cpus, ram)
	}
	if disk < 0 {
		return invalid("Disk must not be negative.")
	}
	tc.NumCpus, tc.RAMMb, tc.DiskMb = cpus, ram, disk
	if tc.ExecutorConfig.Name == "" {
		tc.ExecutorConfig.Name = ExecutorName
	}
	if tc.ExecutorConfig.Data == "" {
		return invalid("Task has no executor config data.")
	}
	if tc.MaxTaskFailures == 0 {
		tc.MaxTaskFailures = 1
	}
	return nil
}

// CreateJob is createJob: it stores the job and its instances as PENDING
// tasks, durably, before returning.
func (s *Scheduler) CreateJob(ctx context.Context, j api.JobConfiguration) error {
	if err := s.validateJob(&j); err != nil {
		return err
	}
	if j.CronSchedule != "" {
		return invalid("Job %s has a cron schedule: use scheduleCronJob.", j.Key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[j.Key]; ok {
		return invalid("Job %s already exists.", j.Key)
	}
	for _, t := range s.tasks {
		if t.AssignedTask.Task.Job == j.Key {
			if st, _ := state.ParseStatus(t.Status); st.Active() {
				return invalid("Job %s already has active tasks.", j.Key)
			}
		}
	}
	tx := s.begin()
	tx.jobs = append(tx.jobs, j)
	s.jobs[j.Key] = &j
	for i := 0; i < j.InstanceCount; i++ {
		s.addTask(tx, j.TaskConfig, i)
	}
	if err := tx.commit(); err != nil {
		return err
	}
	s.log.Info("job created", "job", j.Key, "instances", j.InstanceCount)
	s.wake()
	return nil
}

// addTask inserts a new task for an instance, INIT → PENDING.
func (s *Scheduler) addTask(tx *txn, c api.TaskConfig, instance int) string {
	k := c.Job
	id := state.TaskID(k.Role, k.Environment, k.Name, instance, newUUID())
	s.tasks[id] = &api.ScheduledTask{
		AssignedTask: api.AssignedTask{TaskID: id, Task: c, InstanceID: instance, AssignedPorts: map[string]int{}},
		Status:       state.Init.String(),
	}
	tx.transition(id, state.Pending, "")
	tx.dirty[id] = true
	return id
}

// activeTasks are a job's active tasks, restricted to instances when given.
func (s *Scheduler) activeTasks(k api.JobKey, instances []int) []*api.ScheduledTask {
	want := map[int]bool{}
	for _, i := range instances {
		want[i] = true
	}
	var out []*api.ScheduledTask
	for _, t := range s.tasks {
		st, _ := state.ParseStatus(t.Status)
		if t.AssignedTask.Task.Job != k || !st.Active() {
			continue
		}
		if len(instances) > 0 && !want[t.AssignedTask.InstanceID] {
			continue
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AssignedTask.InstanceID < out[j].AssignedTask.InstanceID })
	return out
}

// KillTasks is killTasks: KILLING for the job's active tasks (all
// instances when none are given). Killing every instance removes the job.
func (s *Scheduler) KillTasks(ctx context.Context, k api.JobKey, instances []int, message string) (int, error) {
	if err := k.Validate(); err != nil {
		return 0, invalid("%v", err)
	}
	s.mu.Lock()
	tasks := s.activeTasks(k, instances)
	if len(tasks) == 0 {
		s.mu.Unlock()
		return 0, invalid("No tasks to kill.")
	}
	tx := s.begin()
	if message == "" {
		message = "Killed by user request"
	}
	for _, t := range tasks {
		tx.transition(t.AssignedTask.TaskID, state.Killing, message)
	}
	if len(instances) == 0 {
		// A job without instances is gone, as in Aurora.
		delete(s.jobs, k)
		tx.drop = append(tx.drop, k)
	}
	err := tx.commit()
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	s.sendKills(ctx, tx.kills)
	return len(tasks), nil
}

// RestartShards is restartShards: RESTARTING for the given active
// instances, each replaced once its task has ended.
func (s *Scheduler) RestartShards(ctx context.Context, k api.JobKey, instances []int) error {
	if len(instances) == 0 {
		return invalid("No instances specified for restart.")
	}
	s.mu.Lock()
	tasks := s.activeTasks(k, instances)
	if len(tasks) != len(instances) {
		s.mu.Unlock()
		return invalid("Not all requested shards are active.")
	}
	tx := s.begin()
	for _, t := range tasks {
		tx.transition(t.AssignedTask.TaskID, state.Restarting, "Restarting by user request")
	}
	err := tx.commit()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.sendKills(ctx, tx.kills)
	return nil
}

// Tasks is getTasksStatus.
func (s *Scheduler) Tasks(q api.TaskQuery) []api.ScheduledTask {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedTasks(q)
}

// Jobs is getJobs: the role's job configurations (all roles when empty).
func (s *Scheduler) Jobs(role string) []api.JobConfiguration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []api.JobConfiguration
	for _, j := range s.jobs {
		if role == "" || j.Key.Role == role {
			out = append(out, *j)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}
