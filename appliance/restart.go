package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
)

// UnknownComponentError names a component the running appliance does not
// have, and the ones it has.
type UnknownComponentError struct {
	Name  string
	Known []string
}

func (e *UnknownComponentError) Error() string {
	return fmt.Sprintf("unknown component %q; this appliance runs %s (or all)", e.Name, strings.Join(e.Known, ", "))
}

// Restart restarts the named components of the appliance running on cfg's
// data dir, one after another in the order given ("all": every component,
// in start order), each from the binary path `up` started it with, so that
// `make build` then `restart scheduler` runs the new scheduler. The other
// components and the tasks keep running: task executors live in their own
// sessions, and a restarted agent recovers them from its checkpoints. Every
// name is checked before anything is restarted. It prints one line per
// component to out.
func Restart(ctx context.Context, cfg *config.Config, names []string, out io.Writer) error {
	st, err := GetStatus(ctx, cfg)
	if err != nil {
		return err
	}
	if !st.Running {
		return fmt.Errorf("%w: no appliance on data dir %s (start one with aurorabox up)", ErrNotRunning, cfg.DataDir)
	}
	var known []string
	for _, c := range st.Components {
		known = append(known, c.Name)
	}
	var todo []string
	for _, n := range names {
		switch {
		case n == "all":
			todo = append(todo, known...)
		case slices.Contains(known, n):
			todo = append(todo, n)
		default:
			return &UnknownComponentError{Name: n, Known: known}
		}
	}
	timeout := cfg.ShutdownGrace + cfg.ReadyTimeout + 10*time.Second
	for _, n := range todo {
		begin := time.Now()
		err := controlDoTimeout(ctx, cfg, "POST", "/v1/restart/"+n, nil, timeout)
		var ce *controlError
		if errors.As(err, &ce) && ce.code == 404 {
			return &UnknownComponentError{Name: n, Known: known}
		}
		if err != nil {
			return fmt.Errorf("restart %s: %w", n, err)
		}
		fmt.Fprintf(out, "aurorabox: restarted %s in %s\n", n, time.Since(begin).Round(time.Millisecond))
	}
	return nil
}
