// Package cli is the command tree of `aurora` and `aurora_admin` (the
// aurorabox binary under those names): Aurora's nouns and verbs with its
// flags, output lines and exit codes (§3 of the reference), over package
// client. Commands write to the Env's streams, so tests can check the
// exact output scripts parse.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aurorabox/aurorabox/client"
	"github.com/spf13/cobra"
)

// Env is what commands need from the outside world.
type Env struct {
	Stdout, Stderr io.Writer
	Version        string
	// Clusters loads clusters.json; nil means client.LoadClusters.
	Clusters func() (map[string]client.Cluster, error)
	// Poll is the interval of --wait-until and kill waits.
	Poll time.Duration
	// RetryFor bounds the retries of an RPC through a leader change
	// (client.Client.RetryFor; 0: client.DefaultRetryFor).
	RetryFor time.Duration
}

func (e *Env) clusters() (map[string]client.Cluster, error) {
	if e.Clusters != nil {
		return e.Clusters()
	}
	return client.LoadClusters()
}

func (e *Env) client(cluster string) (*client.Client, error) {
	cs, err := e.clusters()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cs, cluster)
	if err != nil {
		return nil, err
	}
	c.RetryFor = e.RetryFor
	return c, nil
}

// jobClient parses a CLUSTER/ROLE/ENV/NAME argument and returns the
// client of its cluster.
func (e *Env) jobClient(arg string) (client.JobKey, *client.Client, error) {
	k, err := client.ParseJobKey(arg)
	if err != nil {
		return k, nil, err
	}
	c, err := e.client(k.Cluster)
	return k, c, err
}

// Run runs `aurora` (admin false) or `aurora_admin` with args and returns
// the exit code.
func Run(ctx context.Context, env *Env, admin bool, args []string) int {
	if env.Poll <= 0 {
		env.Poll = time.Second
	}
	var root *cobra.Command
	if admin {
		root = adminCommand(env)
	} else {
		root = auroraCommand(env)
	}
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SilenceErrors, root.SilenceUsage = true, true
	err := root.ExecuteContext(ctx)
	if err == nil {
		return client.ExitOK
	}
	fmt.Fprintln(env.Stderr, "Error executing command:", err)
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	if errors.Is(err, context.Canceled) {
		return client.ExitInterrupted
	}
	// cobra's own errors: unknown command or flag, wrong arguments.
	return client.ExitInvalidCommand
}

// exactArgs is cobra.ExactArgs with Aurora's exit code.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return client.Errorf(client.ExitInvalidCommand, "%s takes %d argument(s), got %d; see --help", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

func stdoutf(env *Env, format string, args ...any) { fmt.Fprintf(env.Stdout, format, args...) }

var _ = os.Stdout
