package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/spf13/cobra"
)

func cronCommand(env *Env) *cobra.Command {
	c := group("cron", "Work with cron jobs")
	c.AddCommand(cronSchedule(env), cronDeschedule(env), cronStart(env), cronShow(env))
	return c
}

func cronSchedule(env *Env) *cobra.Command {
	var cf configFlags
	cmd := &cobra.Command{
		Use: "schedule CLUSTER/ROLE/ENV/NAME CONFIG", Short: "Create or replace a job's cron schedule", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := client.ParseJobKey(args[0])
			if err != nil {
				return err
			}
			j, err := cf.job(env, k, args[1])
			if err != nil {
				return err
			}
			if j.CronSchedule == "" {
				return client.Errorf(client.ExitCommandFailure, "Non-cron jobs may only be created with \"aurora job create\" command")
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
			if _, err := c.Call(ctx, "scheduleCronJob", map[string]any{"description": jc}); err != nil {
				return prefixed(err, fmt.Sprintf("Error scheduling cron job %s:", k))
			}
			u, err := jobURL(ctx, c, k.JobKey)
			if err != nil {
				return err
			}
			stdoutf(env, "Cron job scheduled, status can be viewed at %s\n", u)
			return nil
		},
	}
	cf.add(cmd)
	return cmd
}

func cronDeschedule(env *Env) *cobra.Command {
	return &cobra.Command{
		Use: "deschedule CLUSTER/ROLE/ENV/NAME", Short: "Remove a job's cron schedule", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, c, err := env.jobClient(args[0])
			if err != nil {
				return err
			}
			r, err := c.Call(cmd.Context(), "descheduleCronJob", map[string]any{"job": k.JobKey})
			if err != nil {
				return prefixed(err, fmt.Sprintf("Error descheduling cron job %s:", k))
			}
			for _, d := range r.Details {
				fmt.Fprintln(env.Stderr, d.Message) // e.g. "... is not scheduled with cron"
			}
			stdoutf(env, "Cron descheduling succeeded.\n")
			return nil
		},
	}
}

func cronStart(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use: "start CLUSTER/ROLE/ENV/NAME", Short: "Run a cron job now, outside its schedule", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, c, err := env.jobClient(args[0])
			if err != nil {
				return err
			}
			if _, err := c.Call(cmd.Context(), "startCronJob", map[string]any{"job": k.JobKey}); err != nil {
				return prefixed(err, fmt.Sprintf("Error starting cron job %s:", k))
			}
			return nil
		},
	}
	cmd.Flags().String("config", "", "accepted for compatibility")
	cmd.Flags().StringArray("bind", nil, "accepted for compatibility")
	cmd.Flags().Bool("read-json", false, "accepted for compatibility")
	cmd.Flags().Bool("open-browser", false, "accepted for compatibility")
	return cmd
}

func cronShow(env *Env) *cobra.Command {
	return &cobra.Command{
		Use: "show CLUSTER/ROLE/ENV/NAME", Short: "Show a job's cron schedule", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, c, err := env.jobClient(args[0])
			if err != nil {
				return err
			}
			r, err := c.Call(cmd.Context(), "getJobs", map[string]any{"ownerRole": k.Role})
			if err != nil {
				err = prefixed(err, fmt.Sprintf("Error getting cron status for %s from server:", k))
				if ce, ok := err.(*client.Error); ok {
					ce.Code = client.ExitInvalidParameter
				}
				return err
			}
			if r.Result != nil && r.Result.GetJobsResult != nil {
				for _, j := range r.Result.GetJobsResult.Configs {
					if j.Key == k.JobKey && j.CronSchedule != "" {
						stdoutf(env, "%s\t %s\n", k, j.CronSchedule)
						return nil
					}
				}
			}
			return client.Errorf(client.ExitInvalidParameter, "No cron entry found for job %s", k)
		},
	}
}

// parseAuroraDuration reads the admin tools' durations: a number with a
// unit of s, m, h or d ("30m", "7d").
func parseAuroraDuration(s string) (time.Duration, error) {
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}
	if len(s) < 2 || units[s[len(s)-1]] == 0 {
		return 0, fmt.Errorf("invalid duration %q: want a number and s, m, h or d (30m, 7d)", s)
	}
	n, err := strconv.ParseFloat(s[:len(s)-1], 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid duration %q: want a number and s, m, h or d (30m, 7d)", s)
	}
	return time.Duration(n * float64(units[s[len(s)-1]])), nil
}

// slaHostDrain is aurora_admin sla_host_drain: the scheduler drains the
// hosts itself, honouring each job's SLA policy (the default one for jobs
// without) and forcing the drain after the timeout.
func slaHostDrain(env *Env, cl func(string) (*client.Client, error)) *cobra.Command {
	var hosts, file, defDuration, forceTimeout string
	var defPercentage float64
	cmd := &cobra.Command{
		Use: "sla_host_drain CLUSTER", Short: "Drain hosts, honouring the jobs' SLA policies", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := hostNames(hosts, file)
			if err != nil {
				return err
			}
			d, err := parseAuroraDuration(defDuration)
			if err != nil {
				return client.Errorf(client.ExitInvalidParameter, "--default_duration: %v", err)
			}
			timeout, err := parseAuroraDuration(forceTimeout)
			if err != nil {
				return client.Errorf(client.ExitInvalidParameter, "--force_drain_timeout: %v", err)
			}
			if defPercentage <= 0 || defPercentage > 100 {
				return client.Errorf(client.ExitInvalidParameter, "--default_percentage %g: want (0, 100]", defPercentage)
			}
			c, err := cl(args[0])
			if err != nil {
				return err
			}
			policy := api.SlaPolicy{PercentageSlaPolicy: &api.PercentageSlaPolicy{Percentage: defPercentage, DurationSecs: int64(d / time.Second)}}
			r, err := c.Call(cmd.Context(), "slaDrainHosts", map[string]any{"hosts": api.Hosts{HostNames: names},
				"defaultSlaPolicy": policy, "timeoutSecs": int64(timeout / time.Second)})
			if err != nil {
				return err
			}
			for _, d := range r.Details {
				fmt.Fprintln(env.Stderr, d.Message)
			}
			for _, s := range hostStatuses(r) {
				fmt.Fprintf(env.Stderr, "INFO] %s is in state: %s\n", s.Host, s.Mode)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&hosts, "hosts", "", "comma-separated host names")
	cmd.Flags().StringVar(&file, "filename", "", "file of host names")
	cmd.Flags().Float64Var(&defPercentage, "default_percentage", 95, "SLA percentage for jobs without an SLA policy")
	cmd.Flags().StringVar(&defDuration, "default_duration", "30m", "SLA duration for jobs without an SLA policy")
	cmd.Flags().StringVar(&forceTimeout, "force_drain_timeout", "7d", "drain regardless of SLA after this long")
	return cmd
}

// hostNames reads --hosts and --filename.
func hostNames(hosts, file string) ([]string, error) {
	names := splitList(hosts)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, client.Errorf(client.ExitInvalidParameter, "--filename: %v", err)
		}
		names = append(names, strings.Fields(string(b))...)
	}
	if len(names) == 0 {
		return nil, client.Errorf(client.ExitInvalidParameter, "give --hosts or --filename")
	}
	return names, nil
}
