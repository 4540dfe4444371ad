package appliance

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
)

// roleOrder puts the components' logs in start order, then the supervisor's.
var roleOrder = []string{"zookeeper", "master", "agent", "scheduler", "observer", "aurorabox"}

// LogRoles lists the roles that have a log in the data dir.
func LogRoles(cfg *config.Config) []string {
	files, _ := filepath.Glob(cfg.Path("logs", "*.log"))
	have := map[string]bool{}
	for _, f := range files {
		have[strings.TrimSuffix(filepath.Base(f), ".log")] = true
	}
	var out []string
	for _, r := range roleOrder {
		if have[r] {
			out = append(out, r)
			delete(have, r)
		}
	}
	var rest []string
	for r := range have {
		rest = append(rest, r)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// LogOptions select what Logs shows.
type LogOptions struct {
	Roles  []string // empty: all
	Follow bool
	Tail   int // lines per log to show first; < 0: all
	Poll   time.Duration
}

// Logs writes the selected logs to w, each line prefixed with its role. With
// Follow it then keeps writing new lines, interleaved as they arrive, until
// ctx is done.
func Logs(ctx context.Context, cfg *config.Config, w io.Writer, opts LogOptions) error {
	all := LogRoles(cfg)
	roles := opts.Roles
	if len(roles) == 0 {
		roles = all
	}
	for _, r := range roles {
		if !contains(all, r) && !opts.Follow {
			return fmt.Errorf("no log for %q in %s (have: %s)", r, cfg.Path("logs"), strings.Join(all, ", "))
		}
	}
	if len(roles) == 0 && !opts.Follow {
		return fmt.Errorf("no logs in %s yet", cfg.Path("logs"))
	}
	width := 0
	for _, r := range roles {
		width = max(width, len(r))
	}
	prefix := func(role string) string { return fmt.Sprintf("%-*s | ", width, role) }
	if opts.Poll <= 0 {
		opts.Poll = 200 * time.Millisecond
	}

	offsets := map[string]int64{}
	for _, r := range roles {
		path := cfg.Path("logs", r+".log")
		lines, end, err := lastLines(path, opts.Tail)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		for _, l := range lines {
			fmt.Fprintf(w, "%s%s\n", prefix(r), l)
		}
		offsets[r] = end
	}
	if !opts.Follow {
		return nil
	}
	lines := make(chan string)
	for _, r := range roles {
		go follow(ctx, cfg.Path("logs", r+".log"), offsets[r], opts.Poll, prefix(r), lines)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-lines:
			if _, err := io.WriteString(w, l); err != nil {
				return err
			}
		}
	}
}

// lastLines returns the last n lines of path (all if n < 0) and its size.
func lastLines(path string, n int) ([]string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := st.Size()
	if n == 0 {
		return nil, size, nil
	}
	start := int64(0)
	if n > 0 {
		// Enough for n ordinary lines without reading a huge log whole.
		start = max(0, size-int64(n)*1024)
	}
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return nil, 0, err
	}
	if start > 0 {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:] // drop the partial first line
		}
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(buf))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, size, nil
}

// follow polls path from offset and sends complete new lines, prefixed. It
// copes with the file appearing late and with truncation.
func follow(ctx context.Context, path string, offset int64, poll time.Duration, prefix string, out chan<- string) {
	var partial []byte
	buf := make([]byte, 32*1024)
	for {
		f, err := os.Open(path)
		if err == nil {
			if st, err := f.Stat(); err == nil && st.Size() < offset {
				offset, partial = 0, nil // truncated
			}
			for {
				n, err := f.ReadAt(buf, offset)
				offset += int64(n)
				partial = append(partial, buf[:n]...)
				for {
					i := bytes.IndexByte(partial, '\n')
					if i < 0 {
						break
					}
					select {
					case out <- prefix + string(partial[:i+1]):
					case <-ctx.Done():
						f.Close()
						return
					}
					partial = partial[i+1:]
				}
				if err != nil || n == 0 {
					break
				}
			}
			f.Close()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(poll):
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
