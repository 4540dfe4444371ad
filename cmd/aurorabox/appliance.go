package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aurorabox/aurorabox/appliance"
	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/spf13/cobra"
)

func addConfigFlags(root *cobra.Command) {
	config.AddFlags(root.PersistentFlags())
}

func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/"
	}
	cfg, err := config.Load(cmd.Flags(), os.Environ(), home)
	if err != nil {
		return nil, &exitError{2, err}
	}
	// The config file may set the level too (validated by Load).
	if l, err := config.ParseLogLevel(cfg.LogLevel); err == nil {
		logLevel.Set(l)
	}
	return cfg, nil
}

// logLevel is the level of every logger newLogger makes, set from
// --log-level or AURORABOX_LOG_LEVEL before any command runs (setLogLevel).
var logLevel slog.LevelVar

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &logLevel}))
}

// setLogLevel reads the --log-level flag, else AURORABOX_LOG_LEVEL, else
// info. The roles that `up` runs get the flag from it.
func setLogLevel(cmd *cobra.Command) error {
	s, where := os.Getenv(config.EnvPrefix+"_LOG_LEVEL"), config.EnvPrefix+"_LOG_LEVEL"
	if f := cmd.Flags().Lookup("log-level"); f != nil && f.Changed {
		s, where = f.Value.String(), "--log-level"
	}
	if s == "" {
		s = "info"
	}
	l, err := config.ParseLogLevel(s)
	if err != nil {
		return &exitError{2, fmt.Errorf("%s: %w", where, err)}
	}
	logLevel.Set(l)
	return nil
}

func upCommand() *cobra.Command {
	var detach, fresh, yes bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the cluster's components and supervise them (foreground; Ctrl-C stops)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if fresh {
				if _, err := destroy(cmd, cfg, yes); err != nil {
					return err
				}
			}
			if detach {
				var args []string
				for _, a := range os.Args[1:] {
					if !isFlag(a, "detach", "d") && !isFlag(a, "fresh", "") && !isFlag(a, "yes", "y") {
						args = append(args, a)
					}
				}
				timeout := cfg.ReadyTimeout*6 + cfg.ShutdownGrace
				if err := appliance.Detach(cfg, exe, args, timeout); err != nil {
					return &exitError{1, err}
				}
				st, err := appliance.GetStatus(cmd.Context(), cfg)
				if err != nil {
					return err
				}
				appliance.PrintStatus(cmd.OutOrStdout(), st)
				fmt.Fprintf(cmd.OutOrStdout(), "endpoints: %s   stop with: aurorabox down --data-dir %s\n", cfg.Path("env"), cfg.DataDir)
				return nil
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = appliance.Up(ctx, cfg, appliance.UpOptions{
				Exe: exe, Version: version, Logger: newLogger(), Out: cmd.OutOrStdout(),
				Ready: appliance.ReadyReporter(),
			})
			if err != nil {
				return &exitError{1, err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run in the background; return once every component is ready")
	cmd.Flags().BoolVar(&fresh, "fresh", false, "first stop the appliance and delete its data dir, as destroy (asks unless --yes)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "with --fresh: do not ask before deleting the data dir")
	config.AddUpFlags(cmd.Flags())
	return cmd
}

// isFlag reports whether arg is the boolean flag --long (or -short).
func isFlag(arg, long, short string) bool {
	return arg == "--"+long || strings.HasPrefix(arg, "--"+long+"=") || (short != "" && arg == "-"+short)
}

func downCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop the cluster (reverse order) and every process it started",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			running, err := appliance.Down(cmd.Context(), cfg)
			if err != nil {
				return &exitError{1, err}
			}
			if running {
				fmt.Fprintf(cmd.OutOrStdout(), "aurorabox: stopped (data dir %s)\n", cfg.DataDir)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "aurorabox: not running (data dir %s)\n", cfg.DataDir)
			}
			return nil
		},
	}
}

func statusCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the components; exits 1 unless everything is healthy",
		Long: `Show each component's pid, address, health, uptime and restarts.
Exit status: 0 when the appliance runs and every component is healthy, 1 otherwise.
--json prints the stable, versioned document described in docs/status.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			st, err := appliance.GetStatus(cmd.Context(), cfg)
			if err != nil {
				return &exitError{1, err}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				enc.Encode(st)
			} else {
				appliance.PrintStatus(cmd.OutOrStdout(), st)
			}
			if !st.Healthy {
				return &exitError{1, nil}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func logsCommand() *cobra.Command {
	var follow bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs [role...]",
		Short: "Show the components' logs, each line prefixed with its component",
		RunE: func(cmd *cobra.Command, roles []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("tail") {
				tail = -1
				if follow {
					tail = 10
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = appliance.Logs(ctx, cfg, cmd.OutOrStdout(), appliance.LogOptions{Roles: roles, Follow: follow, Tail: tail})
			if err != nil && !errors.Is(err, ctx.Err()) {
				return &exitError{1, err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&tail, "tail", "n", -1, "lines per log to show first (default: all; 10 with -f)")
	return cmd
}
