// Package zklog sends the log lines of the go-zookeeper client
// (github.com/go-zookeeper/zk), which it writes through its own Printf-style
// Logger, to an slog.Logger, so that they come out formatted like every other
// line of the component that uses the client.
package zklog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-zookeeper/zk"
)

// Logger is a zk.Logger that writes to an slog.Logger.
type Logger struct {
	l     *slog.Logger
	level slog.Level
}

// New returns a zk.Logger that logs go-zookeeper's lines to l at level,
// tagged component=zk-client. A nil l discards them.
func New(l *slog.Logger, level slog.Level) Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return Logger{l: l.With("component", "zk-client"), level: level}
}

// Option is New(l, level) as a zk.Connect option.
func Option(l *slog.Logger, level slog.Level) func(*zk.Conn) {
	return zk.WithLogger(New(l, level))
}

// Printf implements zk.Logger.
func (z Logger) Printf(format string, args ...any) {
	if !z.l.Enabled(context.Background(), z.level) {
		return
	}
	z.l.Log(context.Background(), z.level, strings.TrimSpace(fmt.Sprintf(format, args...)))
}
