// Command aurorabox is the multi-call binary: the appliance controls (up,
// down, restart, destroy, status, logs, version), the component roles that `up` runs as child
// processes, and, when invoked as `aurora` or `aurora_admin` (symlinks made
// by `make install`), Aurora's client commands. It only dispatches; the work
// is in the packages under appliance/, scheduler/, executor/ and so on.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aurorabox/aurorabox/client/cli"
	"github.com/spf13/cobra"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func main() {
	os.Exit(run(os.Args))
}

func run(args []string) int {
	var root *cobra.Command
	switch filepath.Base(args[0]) {
	case "aurora", "aurora_admin":
		root = clientCommand(filepath.Base(args[0]))
	default:
		root = rootCommand()
	}
	root.SetArgs(args[1:])
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "aurorabox:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "aurorabox:", err)
	return 1
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "aurorabox",
		Short:         "Apache Aurora, Mesos and ZooKeeper on one machine, in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return setLogLevel(cmd)
		},
	}
	addConfigFlags(root)
	root.AddCommand(upCommand(), downCommand(), restartCommand(), destroyCommand(), statusCommand(), logsCommand(), versionCommand(), tuiCommand(), imageCommand())
	root.AddCommand(roleCommands()...)
	for _, name := range []string{"aurora", "aurora_admin"} {
		c := clientCommand(name)
		c.Use = name + " [args...]"
		c.Short = "Aurora's " + name + " client (also runs as `" + name + "` through a symlink)"
		root.AddCommand(c)
	}
	return root
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the aurorabox version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "aurorabox %s\n", version)
			return nil
		},
	}
}

// clientCommand is where the aurora and aurora_admin clients plug in.
func clientCommand(name string) *cobra.Command {
	return &cobra.Command{
		Use:                name,
		SilenceUsage:       true,
		SilenceErrors:      true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			env := &cli.Env{Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(), Version: version}
			if code := cli.Run(cmd.Context(), env, name == "aurora_admin", args); code != 0 {
				return &exitError{code, nil} // cli printed the error
			}
			return nil
		},
	}
}
