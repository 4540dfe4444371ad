package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os/user"
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
	if err := s.checkRole(j.Key.Role); err != nil {
		return err
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
	if err := s.checkContainer(*tc); err != nil {
		return err
	}
	if err := populateTier(tc); err != nil {
		return err
	}
	return s.checkLaunchSize(*tc)
}

// checkRole refuses a role whose tasks would run as uid 0, unless
// Config.AllowRootTasks: the executor runs a task as the user its role
// names, so role root, or a role naming another user with uid 0, would
// run it as root.
func (s *Scheduler) checkRole(role string) error {
	if s.cfg.AllowRootTasks {
		return nil
	}
	if name, ok := rootRole(role, user.Lookup); ok {
		return invalid("Role %s would run its tasks as root (user %s has uid 0), which this scheduler refuses; run the job under an unprivileged role, or start the scheduler with --allow-root-tasks (aurorabox up --allow-root-tasks).", role, name)
	}
	return nil
}

// checkRoleCached is checkRole with its answers kept in seen, for a loop
// over many tasks.
func (s *Scheduler) checkRoleCached(role string, seen map[string]error) error {
	err, ok := seen[role]
	if !ok {
		err = s.checkRole(role)
		seen[role] = err
	}
	return err
}

// rootRole reports whether role's tasks would run as uid 0: role root,
// or a role whose user, found by lookup, has uid 0. It returns the user.
func rootRole(role string, lookup func(string) (*user.User, error)) (string, bool) {
	if role == "root" {
		return role, true
	}
	u, err := lookup(role)
	if err != nil {
		return "", false
	}
	return u.Username, u.Uid == "0"
}

// noCron is Aurora's answer to a cron job sent to createJob.
const noCron = "Cron jobs may only be created/updated by calling scheduleCronJob."

// checkLimits refuses a job that would have more than MaxTasksPerJob
// instances, or production tasks beyond its role's quota (Aurora's
// validateTaskLimits). The caller holds s.mu.
func (s *Scheduler) checkLimits(tc api.TaskConfig, total, adding int) error {
	if total <= 0 || total > s.cfg.MaxTasksPerJob {
		return invalid("Instance count must be between 1 and %d inclusive.", s.cfg.MaxTasksPerJob)
	}
	return s.checkQuota(tc, adding)
}

// PopulateJobConfig is populateJobConfig: the job's TaskConfig validated
// and populated as createJob would store it (tier, production, owner,
// scalar resources), without creating anything.
func (s *Scheduler) PopulateJobConfig(j api.JobConfiguration) (api.TaskConfig, error) {
	if err := s.validateJob(&j); err != nil {
		return api.TaskConfig{}, invalid("Invalid configuration: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkFits(j.TaskConfig); err != nil {
		return api.TaskConfig{}, invalid("Invalid configuration: %v", err)
	}
	return j.TaskConfig, nil
}

// CreateJob is createJob: it stores the job's instances as PENDING tasks,
// durably, before returning. The key must not name a job that exists
// (state.JobExists): one with an active task, or a cron job. A job whose
// tasks have all ended may be created again, with any configuration; its
// old tasks stay in the history. Nothing but the tasks is stored.
func (s *Scheduler) CreateJob(ctx context.Context, j api.JobConfiguration) error {
	if err := s.validateJob(&j); err != nil {
		return err
	}
	if j.CronSchedule != "" {
		return invalid(noCron)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkNotUpdating(j.Key, "createJob"); err != nil {
		return err
	}
	if s.jobExists(j.Key) {
		return invalid("Job %s already exists.", j.Key)
	}
	if err := s.checkFits(j.TaskConfig); err != nil {
		return err
	}
	if err := s.checkLimits(j.TaskConfig, j.InstanceCount, j.InstanceCount); err != nil {
		return err
	}
	tx := s.begin()
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

// AddInstances is addInstances: count new instances with the config of
// the given active instance, numbered after the job's highest active
// instance. Cron jobs are refused, as in Aurora.
func (s *Scheduler) AddInstances(ctx context.Context, key api.InstanceKey, count int) ([]int, error) {
	k := key.JobKey
	if err := k.Validate(); err != nil {
		return nil, invalid("%v", err)
	}
	if count <= 0 {
		return nil, invalid("Instance count must be positive.")
	}
	if err := s.checkRole(k.Role); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cronJobs[k] != nil {
		return nil, invalid("Instances may not be added to cron jobs.")
	}
	if err := s.checkNotUpdating(k, "addInstances"); err != nil {
		return nil, err
	}
	active := s.activeTasks(k, nil)
	var template *api.ScheduledTask
	last := -1
	for _, t := range active {
		if t.AssignedTask.InstanceID == key.InstanceID && template == nil {
			template = t
		}
		last = max(last, t.AssignedTask.InstanceID)
	}
	if template == nil {
		return nil, invalid("No active task found for a given instance ID.")
	}
	tc := template.AssignedTask.Task
	// A job stored before containers were checked may not grow.
	if err := s.checkContainer(tc); err != nil {
		return nil, err
	}
	if err := s.checkFits(tc); err != nil {
		return nil, err
	}
	if err := s.checkLimits(tc, len(active)+count, count); err != nil {
		return nil, err
	}
	tx := s.begin()
	var ids []int
	for i := last + 1; i <= last+count; i++ {
		s.addTask(tx, tc, i)
		ids = append(ids, i)
	}
	if err := tx.commit(); err != nil {
		return nil, err
	}
	s.log.Info("instances added", "job", k, "from", key.InstanceID, "instances", ids)
	s.wake()
	return ids, nil
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
// instances when none are given). A job is its tasks: once the last
// active one has ended, the job no longer exists (state.JobExists),
// whether or not the instances were named. A cron job's template stays
// until descheduleCronJob.
func (s *Scheduler) KillTasks(ctx context.Context, k api.JobKey, instances []int, message string) (int, error) {
	if err := k.Validate(); err != nil {
		return 0, invalid("%v", err)
	}
	s.mu.Lock()
	if err := s.checkNotUpdating(k, "killTasks"); err != nil {
		s.mu.Unlock()
		return 0, err
	}
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
	if err := s.checkRole(k.Role); err != nil {
		return err
	}
	s.mu.Lock()
	if err := s.checkNotUpdating(k, "restartShards"); err != nil {
		s.mu.Unlock()
		return err
	}
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

// jobExists reports whether job k exists (state.JobExists): it has an
// active task or is a cron job. The caller holds s.mu.
func (s *Scheduler) jobExists(k api.JobKey) bool {
	if s.cronJobs[k] != nil {
		return true
	}
	for _, t := range s.tasks {
		if t.AssignedTask.Task.Job == k {
			if st, _ := state.ParseStatus(t.Status); state.JobExists(false, st) {
				return true
			}
		}
	}
	return false
}

// Jobs is getJobs: the role's jobs (all roles when empty) that exist, as
// in Aurora 0.11: each job with an active task, and each cron job. A cron
// job is its stored template; any other job is read from its active
// tasks (see jobFromTasks).
func (s *Scheduler) Jobs(role string) []api.JobConfiguration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listJobs(role, true)
}

// listJobs lists the role's jobs (all roles when empty): the cron jobs,
// and the jobs with an active task or, unless activeOnly, with any
// stored task. The caller holds s.mu.
func (s *Scheduler) listJobs(role string, activeOnly bool) []api.JobConfiguration {
	byJob := map[api.JobKey][]*api.ScheduledTask{}
	for _, t := range s.tasks {
		k := t.AssignedTask.Task.Job
		if role != "" && k.Role != role {
			continue
		}
		if st, _ := state.ParseStatus(t.Status); activeOnly && !st.Active() {
			continue
		}
		byJob[k] = append(byJob[k], t)
	}
	var out []api.JobConfiguration
	for k, tasks := range byJob {
		if s.cronJobs[k] == nil {
			out = append(out, jobFromTasks(k, tasks))
		}
	}
	for k, j := range s.cronJobs {
		if role == "" || k.Role == role {
			out = append(out, *j)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

// jobFromTasks is the configuration of a job that is not a cron job, read
// from its tasks as Aurora 0.11 does: the task config of its latest task
// (active ones before ended ones, then the latest event, then the task
// id), and as many instances as it has active instances (0 when it only
// has history).
func jobFromTasks(k api.JobKey, tasks []*api.ScheduledTask) api.JobConfiguration {
	var latest *api.ScheduledTask
	var latestActive bool
	instances := map[int]bool{}
	for _, t := range tasks {
		st, _ := state.ParseStatus(t.Status)
		if st.Active() {
			instances[t.AssignedTask.InstanceID] = true
		}
		switch {
		case latest == nil, st.Active() && !latestActive:
		case st.Active() != latestActive:
			continue
		case !ended(t).Equal(ended(latest)):
			if ended(t).Before(ended(latest)) {
				continue
			}
		case t.AssignedTask.TaskID < latest.AssignedTask.TaskID:
			continue
		}
		latest, latestActive = t, st.Active()
	}
	tc := latest.AssignedTask.Task
	return api.JobConfiguration{Key: k, Owner: tc.Owner, TaskConfig: tc, InstanceCount: len(instances)}
}
