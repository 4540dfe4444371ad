package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/thermos/schema"
	"github.com/spf13/cobra"
)

// Aurora's JobUpdateStatus names and groups (api.thrift).
var (
	activeUpdateStatuses = []string{"ROLLING_FORWARD", "ROLLING_BACK", "ROLL_FORWARD_PAUSED", "ROLL_BACK_PAUSED",
		"ROLL_FORWARD_AWAITING_PULSE", "ROLL_BACK_AWAITING_PULSE"}
	allUpdateStatuses = append(append([]string{}, activeUpdateStatuses...),
		"ROLLED_FORWARD", "ROLLED_BACK", "ABORTED", "ERROR", "FAILED")
	// updateStatusGroups are `update list --status` values besides the
	// status names themselves.
	updateStatusGroups = map[string][]string{
		"active":    activeUpdateStatuses,
		"all":       allUpdateStatuses,
		"blocked":   {"ROLL_FORWARD_AWAITING_PULSE", "ROLL_BACK_AWAITING_PULSE"},
		"failed":    {"ERROR", "FAILED", "ROLLED_BACK"},
		"inactive":  {"ROLLED_FORWARD", "ROLLED_BACK", "ABORTED", "ERROR", "FAILED"},
		"paused":    {"ROLL_FORWARD_PAUSED", "ROLL_BACK_PAUSED"},
		"succeeded": {"ROLLED_FORWARD"},
	}
)

// updateWaitPoll is how often `update wait` looks, as Aurora's 5 s.
const updateWaitPoll = 5 * time.Second

func updateCommand(env *Env) *cobra.Command {
	u := group("update", "Work with rolling updates")
	u.AddCommand(updateStart(env), updateModify(env, "pause", "pauseJobUpdate", "Update has been paused."),
		updateModify(env, "resume", "resumeJobUpdate", "Update has been resumed."),
		updateModify(env, "abort", "abortJobUpdate", "Update has been aborted."),
		updateRollback(env), updateList(env), updateInfo(env), updateWait(env))
	return u
}

// settingsOf turns a config's update_config into JobUpdateSettings, as
// the Aurora client does.
func settingsOf(u schema.UpdateConfig, instances []int) api.JobUpdateSettings {
	s := api.JobUpdateSettings{
		UpdateGroupSize:            u.BatchSize,
		MaxPerInstanceFailures:     u.MaxPerShardFailures,
		MaxFailedInstances:         u.MaxTotalFailures,
		MinWaitInInstanceRunningMs: int64(u.WatchSecs) * 1000,
		RollbackOnFailure:          u.RollbackOnFailure,
		WaitForBatchCompletion:     u.WaitForBatchCompletion,
		SlaAware:                   u.SlaAware,
		UpdateOnlyTheseInstances:   ranges(instances),
	}
	if u.PulseIntervalSecs != nil {
		s.BlockIfNoPulsesAfterMs = int64(*u.PulseIntervalSecs) * 1000
	}
	if st := u.UpdateStrategy; st != nil {
		switch {
		case st.Queue != nil:
			s.UpdateStrategy = &api.JobUpdateStrategy{QueueStrategy: &api.QueueJobUpdateStrategy{GroupSize: st.Queue.BatchSize}}
		case st.Batch != nil:
			s.UpdateStrategy = &api.JobUpdateStrategy{BatchStrategy: &api.BatchJobUpdateStrategy{GroupSize: st.Batch.BatchSize, AutopauseAfterBatch: st.Batch.AutopauseAfterBatch}}
		case st.VariableBatch != nil:
			s.UpdateStrategy = &api.JobUpdateStrategy{VarBatchStrategy: &api.VariableBatchJobUpdateStrategy{GroupSizes: st.VariableBatch.BatchSizes, AutopauseAfterBatch: st.VariableBatch.AutopauseAfterBatch}}
		}
	}
	return s
}

// ranges folds sorted instance ids into inclusive ranges.
func ranges(ids []int) []api.Range {
	var out []api.Range
	for _, i := range ids {
		if n := len(out); n > 0 && out[n-1].Last+1 == i {
			out[n-1].Last = i
			continue
		}
		out = append(out, api.Range{First: i, Last: i})
	}
	return out
}

// uuid4 is the client's update id metadata, as Python's uuid.uuid4().
func uuid4() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func updateStart(env *Env) *cobra.Command {
	var cf configFlags
	var message string
	var wait bool
	cmd := &cobra.Command{
		Use: "start CLUSTER/ROLE/ENV/NAME[/INSTANCES] CONFIG", Short: "Start a rolling update", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, instances, err := client.ParseInstanceSpec(args[0])
			if err != nil {
				return err
			}
			j, err := cf.job(env, k, args[1])
			if err != nil {
				return err
			}
			if j.CronSchedule != "" {
				return client.Errorf(client.ExitCommandFailure, "Cron jobs may only be updated with \"aurora cron schedule\" command")
			}
			c, err := env.client(k.Cluster)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			jc, err := jobConfig(ctx, c, j)
			if err != nil {
				return err
			}
			req := api.JobUpdateRequest{TaskConfig: jc.TaskConfig, InstanceCount: jc.InstanceCount,
				Settings: settingsOf(j.UpdateConfig, instances),
				Metadata: []api.Metadata{{Key: "org.apache.aurora.client.update_id", Value: uuid4()}}}
			r, err := c.Call(ctx, "startJobUpdate", map[string]any{"request": req, "message": message})
			if err != nil {
				return prefixed(err, "Failed to start update due to error:")
			}
			if r.Result == nil || r.Result.StartJobUpdateResult == nil {
				stdoutf(env, "%s\n", messages(r)) // "Job is unchanged by proposed update."
				return nil
			}
			key := r.Result.StartJobUpdateResult.Key
			u, err := updateURL(ctx, c, key)
			if err != nil {
				return err
			}
			stdoutf(env, "Job update has started. View your update progress at %s\n", u)
			if wait {
				return waitForUpdate(ctx, env, c, key)
			}
			return nil
		},
	}
	cf.add(cmd)
	cmd.Flags().StringVarP(&message, "message", "m", "", "message for the update's first event")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the update ends, exiting as update wait does")
	cmd.Flags().Int("healthcheck-interval-seconds", 3, "accepted for compatibility")
	cmd.Flags().Bool("strict", false, "accepted for compatibility")
	cmd.Flags().Bool("open-browser", false, "accepted for compatibility")
	return cmd
}

func messages(r *api.Response) string {
	var ms []string
	for _, d := range r.Details {
		ms = append(ms, d.Message)
	}
	return strings.Join(ms, ", ")
}

// prefixed puts Aurora's context line before an API error, keeping its code.
func prefixed(err error, prefix string) error {
	if ce, ok := err.(*client.Error); ok {
		return &client.Error{Code: ce.Code, Err: fmt.Errorf("%s %w", prefix, ce.Err)}
	}
	return err
}

func updateURL(ctx context.Context, c *client.Client, key api.JobUpdateKey) (string, error) {
	u, err := jobURL(ctx, c, key.Job)
	if err != nil {
		return "", err
	}
	return u + "/update/" + key.ID, nil
}

// activeUpdate is the one active update of a job, or nil.
func activeUpdate(ctx context.Context, c *client.Client, k client.JobKey) (*api.JobUpdateKey, error) {
	sums, err := updateSummaries(ctx, c, api.JobUpdateQuery{JobKey: &k.JobKey, UpdateStatuses: activeUpdateStatuses})
	if err != nil {
		return nil, err
	}
	switch len(sums) {
	case 0:
		return nil, nil
	case 1:
		return &sums[0].Key, nil
	}
	return nil, client.Errorf(client.ExitAPIError, "scheduler returned multiple active updates for this job.")
}

func updateSummaries(ctx context.Context, c *client.Client, q api.JobUpdateQuery) ([]api.JobUpdateSummary, error) {
	r, err := c.Call(ctx, "getJobUpdateSummaries", map[string]any{"jobUpdateQuery": q})
	if err != nil {
		return nil, err
	}
	if r.Result == nil || r.Result.GetJobUpdateSummariesResult == nil {
		return nil, nil
	}
	return r.Result.GetJobUpdateSummariesResult.UpdateSummaries, nil
}

func updateModify(env *Env, verb, method, done string) *cobra.Command {
	var message string
	cmd := &cobra.Command{
		Use: verb + " CLUSTER/ROLE/ENV/NAME", Short: strings.ToUpper(verb[:1]) + verb[1:] + " a job's active update", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, c, err := env.jobClient(args[0])
			if err != nil {
				return err
			}
			key, err := activeUpdate(cmd.Context(), c, k)
			if err != nil {
				return err
			}
			if key == nil {
				return client.Errorf(client.ExitInvalidParameter, "No active update found for this job.")
			}
			if _, err := c.Call(cmd.Context(), method, map[string]any{"key": key, "message": message}); err != nil {
				return prefixed(err, fmt.Sprintf("Failed to %s update due to error:", verb))
			}
			stdoutf(env, "%s\n", done)
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "message for the update event")
	return cmd
}

func updateRollback(env *Env) *cobra.Command {
	var message string
	var wait bool
	cmd := &cobra.Command{
		Use: "rollback CLUSTER/ROLE/ENV/NAME", Short: "Roll a job's active update back", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, c, err := env.jobClient(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			key, err := activeUpdate(ctx, c, k)
			if err != nil {
				return err
			}
			if key == nil {
				return client.Errorf(client.ExitInvalidParameter, "No active update found for this job.")
			}
			if _, err := c.Call(ctx, "rollbackJobUpdate", map[string]any{"key": key, "message": message}); err != nil {
				return prefixed(err, "Failed to rollback update due to error:")
			}
			stdoutf(env, "Update rollback has started.\n")
			if !wait {
				return nil
			}
			// Success here is a rollback that completed.
			status, err := pollUpdate(ctx, env, c, *key)
			if err != nil {
				return err
			}
			if status != "ROLLED_BACK" {
				return client.Errorf(client.ExitUnknownError, "Update ended %s, not ROLLED_BACK", status)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "message for the update event")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the rollback ends")
	return cmd
}

func updateList(env *Env) *cobra.Command {
	var statuses []string
	var user string
	var writeJSON bool
	cmd := &cobra.Command{
		Use: "list CLUSTER[/ROLE[/ENV[/JOB]]]", Short: "List job updates", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts := strings.Split(args[0], "/")
			if len(parts) > 4 || parts[0] == "" {
				return client.Errorf(client.ExitInvalidParameter, "Update filter must be a path of the form CLUSTER/ROLE/ENV/JOB.")
			}
			for len(parts) < 4 {
				parts = append(parts, "")
			}
			q := api.JobUpdateQuery{User: user}
			var envFilter string
			if parts[1] != "" && parts[2] != "" && parts[3] != "" {
				k, err := client.ParseJobKey(args[0])
				if err != nil {
					return err
				}
				q.JobKey = &k.JobKey
			} else {
				q.Role, envFilter = parts[1], parts[2]
			}
			want := map[string]bool{}
			for _, s := range statuses {
				group, ok := updateStatusGroups[strings.ToLower(s)]
				switch {
				case ok:
				case slices.Contains(allUpdateStatuses, strings.ToUpper(s)):
					group = []string{strings.ToUpper(s)}
				default:
					return client.Errorf(client.ExitInvalidParameter, "--status %q: want a status name or one of active, all, blocked, failed, inactive, paused, succeeded", s)
				}
				for _, g := range group {
					want[g] = true
				}
			}
			for s := range want {
				q.UpdateStatuses = append(q.UpdateStatuses, s)
			}
			sort.Strings(q.UpdateStatuses)
			c, err := env.client(parts[0])
			if err != nil {
				return err
			}
			sums, err := updateSummaries(cmd.Context(), c, q)
			if err != nil {
				return err
			}
			var shown []api.JobUpdateSummary
			for _, s := range sums {
				// The API cannot filter by environment; the client does.
				if envFilter == "" || s.Key.Job.Environment == envFilter {
					shown = append(shown, s)
				}
			}
			if writeJSON {
				type entry struct {
					Job          string `json:"job"`
					ID           string `json:"id"`
					User         string `json:"user"`
					Started      string `json:"started"`
					LastModified string `json:"last_modified"`
					Status       string `json:"status"`
				}
				out := []entry{}
				for _, s := range shown {
					out = append(out, entry{parts[0] + "/" + s.Key.Job.String(), s.Key.ID, s.User,
						isoUTC(s.State.CreatedTimestampMs), isoUTC(s.State.LastModifiedTimestampMs), s.State.Status})
				}
				b, _ := json.MarshalIndent(out, "", "  ")
				stdoutf(env, "%s\n", b)
				return nil
			}
			row := func(cols ...string) {
				stdoutf(env, "%-47s %-36s %-15s %-11s %-19s %-19s\n", cols[0], cols[1], cols[2], cols[3], cols[4], cols[5])
			}
			if len(shown) > 0 {
				row("JOB", "UPDATE ID", "STATUS", "CREATED BY", "STARTED", "LAST MODIFIED")
			}
			for _, s := range shown {
				row(parts[0]+"/"+s.Key.Job.String(), s.Key.ID, s.State.Status, s.User,
					isoUTC(s.State.CreatedTimestampMs), isoUTC(s.State.LastModifiedTimestampMs))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&statuses, "status", nil, "statuses or groups to list (repeatable)")
	cmd.Flags().StringVar(&user, "user", "", "only updates started by this user")
	cmd.Flags().BoolVar(&writeJSON, "write-json", false, "print JSON")
	return cmd
}

// isoUTC is Python's datetime.utcfromtimestamp(ms/1000).isoformat().
func isoUTC(ms int64) string {
	t := time.UnixMilli(ms).UTC()
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05")
	}
	return t.Format("2006-01-02T15:04:05.000000")
}

// ctime is Python's time.ctime(ms/1000), in local time.
func ctime(ms int64) string { return time.UnixMilli(ms).Format("Mon Jan _2 15:04:05 2006") }

func updateInfo(env *Env) *cobra.Command {
	var writeJSON bool
	cmd := &cobra.Command{
		Use: "info CLUSTER/ROLE/ENV/NAME [ID]", Short: "Show an update's details (the active one without ID)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return client.Errorf(client.ExitInvalidCommand, "%s takes a job key and an optional update id", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			k, c, err := env.jobClient(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var key *api.JobUpdateKey
			if len(args) == 2 {
				key = &api.JobUpdateKey{Job: k.JobKey, ID: args[1]}
			} else if key, err = activeUpdate(ctx, c, k); err != nil {
				return err
			} else if key == nil {
				return client.Errorf(client.ExitInvalidParameter, "No updates found for job %s", k)
			}
			d, err := updateDetails(ctx, c, *key)
			if err != nil {
				return err
			}
			sum := d.Update.Summary
			if writeJSON {
				out := map[string]any{
					"updateId": sum.Key.ID, "job": k.String(), "started": sum.State.CreatedTimestampMs,
					"last_updated": sum.State.LastModifiedTimestampMs, "status": sum.State.Status,
					"update_events": []map[string]any{}, "instance_update_events": []map[string]any{},
				}
				for _, e := range d.UpdateEvents {
					ev := map[string]any{"status": e.Status, "timestampMs": e.TimestampMs}
					if e.Message != "" {
						ev["message"] = e.Message
					}
					out["update_events"] = append(out["update_events"].([]map[string]any), ev)
				}
				for _, e := range d.InstanceEvents {
					out["instance_update_events"] = append(out["instance_update_events"].([]map[string]any),
						map[string]any{"instance": e.InstanceID, "timestamp": e.TimestampMs, "action": e.Action})
				}
				b, _ := json.MarshalIndent(out, "", "  ")
				stdoutf(env, "%s\n", b)
				return nil
			}
			stdoutf(env, "Job: %s, UpdateID: %s\n", k, sum.Key.ID)
			stdoutf(env, "Started %s, last activity: %s\n", ctime(sum.State.CreatedTimestampMs), ctime(sum.State.LastModifiedTimestampMs))
			stdoutf(env, "Current status: %s\n", sum.State.Status)
			if len(d.UpdateEvents) > 0 {
				stdoutf(env, "Update events:\n")
				for _, e := range d.UpdateEvents {
					stdoutf(env, "  Status: %s at %s\n", e.Status, ctime(e.TimestampMs))
					if e.Message != "" {
						stdoutf(env, "      message: %s\n", e.Message)
					}
				}
			}
			if len(d.InstanceEvents) > 0 {
				stdoutf(env, "Instance events:\n")
				for _, e := range d.InstanceEvents {
					stdoutf(env, "  Instance %d at %s: %s\n", e.InstanceID, ctime(e.TimestampMs), e.Action)
				}
			}
			if len(sum.Metadata) > 0 {
				stdoutf(env, "Metadata:\n")
				for _, m := range sum.Metadata {
					stdoutf(env, "  %s: %s\n", m.Key, m.Value)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&writeJSON, "write-json", false, "print JSON")
	return cmd
}

func updateDetails(ctx context.Context, c *client.Client, key api.JobUpdateKey) (*api.JobUpdateDetails, error) {
	r, err := c.Call(ctx, "getJobUpdateDetails", map[string]any{"key": key})
	if err != nil {
		return nil, err
	}
	if r.Result == nil || r.Result.GetJobUpdateDetailsResult == nil || r.Result.GetJobUpdateDetailsResult.Details == nil {
		return nil, client.Errorf(client.ExitInvalidParameter, "No update %s found for job %s", key.ID, key.Job)
	}
	return r.Result.GetJobUpdateDetailsResult.Details, nil
}

// pollUpdate prints "Current state X" until the update is no longer
// active, and returns its last status.
func pollUpdate(ctx context.Context, env *Env, c *client.Client, key api.JobUpdateKey) (string, error) {
	poll := updateWaitPoll
	if env.Poll < time.Second {
		poll = env.Poll // tests
	}
	for {
		d, err := updateDetails(ctx, c, key)
		if err != nil {
			return "", err
		}
		st := d.Update.Summary.State.Status
		stdoutf(env, "Current state %s\n", st)
		if !slices.Contains(activeUpdateStatuses, st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(poll):
		}
	}
}

// waitForUpdate is `update wait`'s exit status: 0 for ROLLED_FORWARD, 4
// for ROLLED_BACK, 20 for any other end.
func waitForUpdate(ctx context.Context, env *Env, c *client.Client, key api.JobUpdateKey) error {
	st, err := pollUpdate(ctx, env, c, key)
	if err != nil {
		return err
	}
	switch st {
	case "ROLLED_FORWARD":
		return nil
	case "ROLLED_BACK":
		return client.Errorf(client.ExitCommandFailure, "Update %s ended ROLLED_BACK", key.ID)
	}
	return client.Errorf(client.ExitUnknownError, "Update %s ended %s", key.ID, st)
}

func updateWait(env *Env) *cobra.Command {
	return &cobra.Command{
		Use: "wait CLUSTER/ROLE/ENV/NAME ID", Short: "Wait until an update ends", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, c, err := env.jobClient(args[0])
			if err != nil {
				return err
			}
			return waitForUpdate(cmd.Context(), env, c, api.JobUpdateKey{Job: k.JobKey, ID: args[1]})
		},
	}
}
