package tui

import (
	"context"

	tea "github.com/charmbracelet/bubbletea"
)

// Run shows the TUI on the terminal (the alternate screen) until the user
// quits or ctx ends.
func Run(ctx context.Context, src Source, opts Options) error {
	if opts.Refresh == 0 {
		opts.Refresh = DefaultRefresh
	}
	p := tea.NewProgram(New(src, opts), tea.WithAltScreen(), tea.WithContext(ctx))
	_, err := p.Run()
	if err == tea.ErrProgramKilled && ctx.Err() != nil {
		return nil
	}
	return err
}
