package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance"
	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/tui"
	"github.com/spf13/cobra"
)

func tuiCommand() *cobra.Command {
	var observerURL, masterURL, statusCmd string
	var noStatus bool
	var refresh time.Duration
	cmd := &cobra.Command{
		Use:   "tui",
		Short: "Terminal UI: the appliance, jobs, instances, processes, logs and sandboxes",
		Long: `A terminal UI over the cluster's public APIs: the scheduler's /api (the cluster named by
--cluster in clusters.json, the appliance's by default), the observer's JSON API, the master's
/master/state and the appliance's status document. Press ? in it for the keys.

The observer URL is --observer-url, else $AURORABOX_OBSERVER_URL, else the appliance's env file
(for its own cluster), else ` + tui.DefaultObserverURL + `; "{host}" in it stands for the task's host.
The master URL comes the same way from --master-url, $AURORABOX_MASTER_URL or the env file.
The overview asks the appliance's supervisor for its status unless --status-cmd names a command
that prints ` + "`aurorabox status --json`" + ` (e.g. over ssh), or --no-status is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			// The appliance's clusters.json: --data-dir's, else where the
			// client looks for it ($AURORABOX_DATA_DIR, ~/.aurorabox).
			var dataDir string
			if f := cmd.Flags().Lookup("data-dir"); f != nil && f.Changed {
				dataDir = cfg.DataDir
			}
			clusters, err := client.LoadClustersFrom(dataDir)
			if err != nil {
				return clientExit(err)
			}
			sched, err := client.New(clusters, cfg.Cluster)
			if err != nil {
				return clientExit(err)
			}
			// The TUI polls and shows a scheduler it cannot reach: no
			// retries through a leader change, which would only hold up
			// the screen.
			sched.RetryFor = -1
			env := map[string]string{}
			if b, err := os.ReadFile(cfg.Path("env")); err == nil {
				env = parseEnvFile(string(b))
				if env["AURORABOX_CLUSTER"] != cfg.Cluster {
					env = map[string]string{}
				}
			}
			first := func(vs ...string) string {
				for _, v := range vs {
					if v != "" {
						return v
					}
				}
				return ""
			}
			src := &tui.HTTPSource{
				Scheduler:   sched,
				ObserverURL: first(observerURL, os.Getenv("AURORABOX_OBSERVER_URL"), env["AURORABOX_OBSERVER_URL"], tui.DefaultObserverURL),
				MasterURL:   first(masterURL, os.Getenv("AURORABOX_MASTER_URL"), env["AURORABOX_MASTER_URL"]),
			}
			switch {
			case noStatus:
			case statusCmd != "":
				src.StatusFunc = func(ctx context.Context) (*status.Appliance, error) { return commandStatus(ctx, statusCmd) }
			default:
				src.StatusFunc = func(ctx context.Context) (*status.Appliance, error) { return appliance.GetStatus(ctx, cfg) }
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			if err := tui.Run(ctx, src, tui.Options{Cluster: cfg.Cluster, Refresh: refresh}); err != nil {
				return &exitError{1, err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&observerURL, "observer-url", "", "the observer's base URL ({host} is the task's host)")
	f.StringVar(&masterURL, "master-url", "", "the Mesos master's base URL, for the agents")
	f.StringVar(&statusCmd, "status-cmd", "", "a shell `command` that prints aurorabox status --json, for the overview")
	f.BoolVar(&noStatus, "no-status", false, "no appliance overview (a cluster that is not an appliance)")
	f.DurationVar(&refresh, "refresh", tui.DefaultRefresh, "how often the view on screen reloads")
	return cmd
}

// clientExit keeps the client's exit code for its errors.
func clientExit(err error) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		return &exitError{ce.Code, err}
	}
	return &exitError{1, err}
}

// commandStatus runs a shell command that prints the status document. Its
// exit status is ignored when it printed one: status exits 1 when the
// appliance is unhealthy.
func commandStatus(ctx context.Context, command string) (*status.Appliance, error) {
	var out, errb bytes.Buffer
	c := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	c.Stdout, c.Stderr = &out, &errb
	runErr := c.Run()
	var st status.Appliance
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("%s: %v %s", command, runErr, strings.TrimSpace(errb.String()))
		}
		return nil, fmt.Errorf("%s: not a status document: %v", command, err)
	}
	return &st, nil
}

// parseEnvFile reads the appliance's env file: `export NAME='value'` lines
// with shell single quoting.
func parseEnvFile(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "export "))
		name, val, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		var b strings.Builder
		for val != "" {
			if val[0] == '\'' {
				end := strings.IndexByte(val[1:], '\'')
				if end < 0 {
					b.WriteString(val[1:])
					break
				}
				b.WriteString(val[1 : end+1])
				val = val[end+2:]
				continue
			}
			if strings.HasPrefix(val, `\'`) {
				b.WriteByte('\'')
				val = val[2:]
				continue
			}
			b.WriteByte(val[0])
			val = val[1:]
		}
		out[name] = b.String()
	}
	return out
}
