package main

import "github.com/spf13/cobra"

// roleCommands are the components that `up` runs as child processes.
func roleCommands() []*cobra.Command {
	return nil
}
