package main

import (
	"fmt"
	"net"

	"github.com/aurorabox/aurorabox/appliance"
	"github.com/aurorabox/aurorabox/observer"
	"github.com/spf13/cobra"
)

func observerCommand() *cobra.Command {
	var listen, workDir, hostname string
	var oc observer.Config
	cmd := &cobra.Command{
		Use:   "observer",
		Short: "Run the Thermos observer: tasks, processes, logs and sandboxes of this host (started by up)",
		Long: `Serves a read-only web UI and JSON API (Aurora's observer paths: /task/<id>, /logs/..., /j/...)
over the tasks that executors run under the agent work dir. It reads the executors' checkpoints and
the sandboxes and never writes to them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if listen == "" {
				listen = cfg.Addr(cfg.Observer.Port)
			}
			if workDir == "" {
				workDir = appliance.AgentWorkDir(cfg)
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{1, fmt.Errorf("observer: %w", err)}
			}
			oc.WorkDir, oc.Logger, oc.Hostname = workDir, newLogger(), hostname
			return serveHTTP(ctx, ln, observer.New(oc).Handler())
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "address to listen on (default: bind and observer.port)")
	f.StringVar(&workDir, "work-dir", "", "the agent work dir to observe (default: <data-dir>/mesos)")
	f.StringVar(&hostname, "hostname", "", "host name shown on the pages (default: this host's)")
	f.DurationVar(&oc.ScanInterval, "polling-interval", observer.DefaultScanInterval, "how long a scan of the work dir for tasks is reused")
	f.DurationVar(&oc.DiskInterval, "disk-collection-interval", observer.DefaultDiskInterval, "how long a sandbox's disk usage is reused")
	f.Int64Var(&oc.MaxChunk, "max-chunk", observer.DefaultMaxChunk, "largest /logdata or /filedata chunk, in bytes")
	return cmd
}
