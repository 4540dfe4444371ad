package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aurorabox/aurorabox/appliance"
	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func restartCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "restart COMPONENT...",
		Short: "Restart running components on the current binary (after make build); the others and the tasks keep running",
		Long: `Restart the named components of the running appliance, one after another, each
from the aurorabox binary path that up started (so "make build" then
"aurorabox restart scheduler" runs the new scheduler), and wait until each is
ready again. The other components keep running, and so do the tasks: a
restarted agent takes its executors back from its checkpoints. Components:
zookeeper, master, agent (agent2, ... with --agents), scheduler, observer, or
all. Aurora's Vagrant box did this with aurorabuild.
Exit status: 0 restarted, 1 failed or not running, 2 unknown component.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			err = appliance.Restart(cmd.Context(), cfg, names, cmd.OutOrStdout())
			var uc *appliance.UnknownComponentError
			if errors.As(err, &uc) {
				return &exitError{2, err}
			}
			if err != nil {
				return &exitError{1, err}
			}
			return nil
		},
	}
}

func destroyCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Stop everything and delete the data dir (jobs, tasks, logs, credentials)",
		Long: `Stop the appliance (as down) and delete its data dir with everything in it.
It asks first unless --yes; without a terminal on stdin it refuses without --yes.
Only a directory the appliance ran in is deleted: never /, your home directory
or one of its parents, a symbolic link, or a directory without aurorabox.lock.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			deleted, err := destroy(cmd, cfg, yes)
			if err != nil {
				return err
			}
			if deleted {
				fmt.Fprintf(cmd.OutOrStdout(), "aurorabox: stopped and deleted %s\n", cfg.DataDir)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "aurorabox: nothing to delete (no data dir %s)\n", cfg.DataDir)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// destroy is `destroy` and `up --fresh`: check, confirm, stop, delete.
func destroy(cmd *cobra.Command, cfg *config.Config, yes bool) (bool, error) {
	home, _ := os.UserHomeDir()
	ok, err := appliance.CheckDestroyable(cfg.DataDir, home)
	if err != nil {
		return false, &exitError{1, err}
	}
	if !ok {
		return false, nil
	}
	if !yes {
		if err := confirm(cmd.InOrStdin(), cmd.ErrOrStderr(), cfg.DataDir); err != nil {
			return false, err
		}
	}
	deleted, err := appliance.Destroy(cmd.Context(), cfg, home)
	if err != nil {
		return false, &exitError{1, err}
	}
	return deleted, nil
}

// confirm asks on stderr and reads the answer from in, which must be a
// terminal: a script must say --yes.
func confirm(in io.Reader, out io.Writer, dir string) error {
	f, isFile := in.(*os.File)
	if !isFile || !isTerminal(f) {
		return &exitError{1, fmt.Errorf("refusing to delete %s without confirmation: stdin is not a terminal; pass --yes to delete it", dir)}
	}
	fmt.Fprintf(out, "Stop the appliance and delete %s with all its jobs, tasks, logs and credentials? [y/N] ", dir)
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return &exitError{1, errors.New("not confirmed; nothing deleted")}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
