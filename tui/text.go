package tui

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/aurorabox/aurorabox/observer/observerapi"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// How much of a log or file is read and kept.
const (
	tailBytes  = 64 << 10  // a log opens on its last 64 KiB
	chunkBytes = 256 << 10 // asked for in one request
	loadBytes  = 1 << 20   // read in one load at most
	keepBytes  = 2 << 20   // a log keeps its last 2 MiB
	fileBytes  = 1 << 20   // a file shows its first 1 MiB
)

// textView is the live log pane (a process run's stdout or stderr) or the
// file viewer (a sandbox file).
type textView struct {
	viewBase
	ref     TaskRef
	isLog   bool
	process string // log: "" until the first load picks one
	run     int
	stream  string // stdout or stderr
	file    string // file: its sandbox path
	pane    pane
}

func newLog(ref TaskRef, process string, run int, stream string) *textView {
	v := &textView{ref: ref, isLog: true, process: process, run: run, stream: stream}
	v.pane = newPane(true)
	return v
}

func newFile(ref TaskRef, file string) *textView {
	v := &textView{ref: ref, file: file}
	v.pane = newPane(false)
	return v
}

func (v *textView) title() string {
	if !v.isLog {
		return path.Base(v.file)
	}
	if v.process == "" {
		return "log " + v.stream
	}
	return v.process + " " + v.stream
}

// textData is what a load of a textView brings.
type textData struct {
	process string
	run     int
	chunk   chunkData
}

func (v *textView) fetch(src Source) func(ctx context.Context) (any, error) {
	if !v.isLog && v.pane.full {
		return nil // the file viewer shows the head of a file and stops there
	}
	ref, isLog, process, run, stream, file := v.ref, v.isLog, v.process, v.run, v.stream, v.file
	next, tail, have := v.pane.next, v.pane.tail, v.pane.held()
	return func(ctx context.Context) (any, error) {
		d := textData{process: process, run: run}
		if isLog && process == "" {
			ot, err := src.Task(ctx, ref)
			if err != nil {
				return nil, err
			}
			p, ok := pickProcess(ot)
			if !ok {
				return nil, fmt.Errorf("no process of %s has run yet", ref.ID)
			}
			d.process, d.run, next = p.Name, p.Run, -1
		}
		read := func(ctx context.Context, offset, length int64) (observerapi.Chunk, error) {
			if isLog {
				return src.Log(ctx, ref, d.process, d.run, stream, offset, length)
			}
			return src.File(ctx, ref, file, offset, length)
		}
		var err error
		d.chunk, err = readMore(ctx, read, next, tail, have)
		return d, err
	}
}

// pickProcess is the process whose log `l` opens from an instance: the
// first running one, else the first that ran.
func pickProcess(ot *ObservedTask) (Process, bool) {
	for _, p := range ot.Processes {
		if p.Run >= 0 && p.Active {
			return p, true
		}
	}
	for _, p := range ot.Processes {
		if p.Run >= 0 && p.State == "RUNNING" {
			return p, true
		}
	}
	for _, p := range ot.Processes {
		if p.Run >= 0 {
			return p, true
		}
	}
	return Process{}, false
}

// chunkData is what readMore read: data to append at next-len(data), or to
// start over with (reset).
type chunkData struct {
	data        string
	next        int64
	reset       bool
	dropPartial bool // data starts mid-line
	full        bool // the head of a file is read
}

// readMore reads on from next (-1: not started; a tail starts tailBytes
// before the end, a head at 0). A file that shrank below next is read
// again from its start.
func readMore(ctx context.Context, read func(context.Context, int64, int64) (observerapi.Chunk, error), next int64, tail bool, have int64) (chunkData, error) {
	var d chunkData
	for attempt := 0; attempt < 2; attempt++ {
		if next < 0 {
			d, next, have = chunkData{reset: true}, 0, 0
			if tail {
				c, err := read(ctx, -1, 0)
				if err != nil {
					return d, err
				}
				next = max(0, c.Offset-tailBytes)
				d.dropPartial = next > 0
			}
		}
		var b strings.Builder
		shrank := false
		got := int64(0)
		for got < loadBytes {
			want := int64(chunkBytes)
			if !tail {
				if want = min(want, fileBytes-have-got); want <= 0 {
					break
				}
			}
			c, err := read(ctx, next, want)
			if err != nil {
				return d, err
			}
			if c.Offset < next {
				shrank = true
				break
			}
			b.WriteString(c.Data)
			next, got = c.Offset+c.Length, got+c.Length
			if c.Length == 0 {
				break // the end, for now (a chunk may be cut short by the observer's cap)
			}
		}
		if !tail && have+got >= fileBytes {
			d.full = true
		}
		if shrank {
			next = -1
			continue
		}
		d.data, d.next = b.String(), next
		return d, nil
	}
	return d, fmt.Errorf("the file keeps shrinking")
}

func (v *textView) apply(m *Model, data any) tea.Cmd {
	d := data.(textData)
	v.process, v.run = d.process, d.run
	v.pane.add(d.chunk)
	return nil
}

func (v *textView) query() string { return v.pane.query }

func (v *textView) setQuery(q string) { v.pane.setQuery(q) }

func (v *textView) render(m *Model, w, h int) string {
	var head string
	if v.isLog {
		out, errs := "stdout", "stderr"
		if v.stream == "stdout" {
			out = "[stdout]"
		} else {
			errs = "[stderr]"
		}
		name := v.process
		if name == "" {
			name = "…"
		}
		head = fmt.Sprintf("%s · run %d · %s %s · %s", name, v.run, out, errs, v.ref.ID)
	} else {
		head = "/" + v.file + " · " + v.ref.ID
	}
	if !v.loaded && v.err == nil {
		return clip(head, w) + "\n" + dimStyle.Render("Loading…")
	}
	return clip(head, w) + "\n" + v.pane.view(w, h-1)
}

func (v *textView) status(m *Model) string {
	p := &v.pane
	s := plural(p.count(), "line")
	if !v.isLog && p.full {
		s += " (the first " + bytesText(fileBytes) + ")"
	}
	if p.follow {
		s += " · following"
	} else {
		s += " · paused (F follows)"
	}
	if p.query != "" {
		if len(p.matches) == 0 {
			s += fmt.Sprintf(" · no match for %q", p.query)
		} else {
			s += fmt.Sprintf(" · %q match %d of %d", p.query, p.match+1, len(p.matches))
		}
	}
	return s
}

func (v *textView) key(m *Model, msg tea.KeyMsg) (tea.Cmd, bool) {
	p := &v.pane
	k := m.keys
	switch {
	case key.Matches(msg, k.Up):
		p.scroll(-1)
	case key.Matches(msg, k.Down):
		p.scroll(1)
	case key.Matches(msg, k.PageUp):
		p.scroll(-p.h)
	case key.Matches(msg, k.PageDown):
		p.scroll(p.h)
	case key.Matches(msg, k.Home):
		p.y, p.follow = 0, false
	case key.Matches(msg, k.End):
		p.y, p.follow = p.bottom(), true
	case key.Matches(msg, k.Left):
		p.x = max(0, p.x-8)
	case key.Matches(msg, k.Right):
		p.x = min(p.x+8, 4096)
	case key.Matches(msg, k.Follow):
		p.follow = !p.follow
	case key.Matches(msg, k.Next):
		p.nextMatch(1, false)
	case key.Matches(msg, k.Prev):
		p.nextMatch(-1, false)
	case key.Matches(msg, k.Stream) && v.isLog:
		if v.stream == "stdout" {
			v.stream = "stderr"
		} else {
			v.stream = "stdout"
		}
		v.pane.reset()
		return m.reload(v), true
	case key.Matches(msg, k.Files):
		return m.push(newFiles(v.ref, "")), true
	default:
		return nil, false
	}
	return nil, true
}

func (v *textView) bindings(m *Model) []key.Binding {
	k := m.keys
	search := key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "search"))
	next := key.NewBinding(key.WithKeys("n"), key.WithHelp("n/N", "match"))
	if v.isLog {
		stream := key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "stdout/stderr"))
		return []key.Binding{stream, k.Follow, search, next, k.Files}
	}
	return []key.Binding{k.Follow, search, next}
}

// pane is the text of a log or file, scrolled and searched. It keeps the
// text as lines, split as chunks arrive, and draws only the lines on
// screen, so a refresh costs what it reads and a frame what it shows.
type pane struct {
	tail    bool     // a log: starts at the end and keeps the last keepBytes
	lines   []string // complete lines, cleaned for display
	partial string   // what follows the last newline, raw
	size    int      // bytes held in lines
	next    int64    // next offset to read; -1 before the first read
	full    bool
	follow  bool
	y, x    int // the top line and left column on screen
	h       int // lines on screen at the last render
	query   string
	matches []int // lines with the query
	match   int   // the current match, an index into matches
}

func newPane(tail bool) pane {
	return pane{tail: tail, next: -1, follow: tail, h: 20}
}

func (p *pane) reset() {
	*p = newPane(p.tail)
}

// count is the number of lines shown, a partial last line included.
func (p *pane) count() int {
	if p.partial != "" {
		return len(p.lines) + 1
	}
	return len(p.lines)
}

// held is how many bytes of the file the pane holds.
func (p *pane) held() int64 { return int64(p.size + len(p.partial)) }

func (p *pane) line(i int) string {
	if i < len(p.lines) {
		return p.lines[i]
	}
	return cleanLine(p.partial)
}

func (p *pane) add(d chunkData) {
	p.next, p.full = d.next, d.full
	if d.reset {
		p.lines, p.partial, p.size, p.y, p.x = nil, "", 0, 0, 0
	}
	s := d.data
	if d.dropPartial {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	if s == "" && !d.reset {
		return
	}
	parts := strings.Split(p.partial+s, "\n")
	p.partial = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		p.lines = append(p.lines, cleanLine(l))
		p.size += len(l) + 1
	}
	if p.tail && p.size > keepBytes {
		drop := 0
		for p.size > keepBytes && drop < len(p.lines) {
			p.size -= len(p.lines[drop]) + 1
			drop++
		}
		p.lines = p.lines[drop:] // the next append that grows it lets the rest go
		p.y = max(0, p.y-drop)
	}
	p.rematch()
}

// cleanLine makes a line of task output safe to draw: escape sequences
// and control characters are dropped and tabs expanded, so that the output
// cannot repaint the terminal.
func cleanLine(l string) string {
	if strings.ContainsRune(l, '\x1b') {
		l = ansi.Strip(l)
	}
	clean := true
	for i := 0; i < len(l); i++ {
		if c := l[i]; c < 0x20 || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return l
	}
	var b strings.Builder
	col := 0
	for _, r := range l {
		switch {
		case r == '\t':
			n := 8 - col%8
			b.WriteString(strings.Repeat(" ", n))
			col += n
		case r < 0x20 || r == 0x7f:
		default:
			b.WriteRune(r)
			col++
		}
	}
	return b.String()
}

func (p *pane) setQuery(q string) {
	p.query = q
	p.match = 0
	p.rematch()
}

// rematch finds the lines with the query.
func (p *pane) rematch() {
	p.matches = p.matches[:0]
	if p.query == "" {
		return
	}
	q := strings.ToLower(p.query)
	for i, n := 0, p.count(); i < n; i++ {
		if strings.Contains(strings.ToLower(p.line(i)), q) {
			p.matches = append(p.matches, i)
		}
	}
	if p.match >= len(p.matches) {
		p.match = max(0, len(p.matches)-1)
	}
}

// highlight marks every case-insensitive occurrence of q (lower case) in l.
func highlight(l, q string) string {
	low := strings.ToLower(l)
	if len(low) != len(l) {
		return l // case folding changed the length: leave it plain
	}
	var b strings.Builder
	for {
		i := strings.Index(low, q)
		if i < 0 {
			b.WriteString(l)
			return b.String()
		}
		b.WriteString(l[:i] + matchStyle.Render(l[i:i+len(q)]))
		l, low = l[i+len(q):], low[i+len(q):]
	}
}

// nextMatch moves to the next (dir 1) or previous (-1) match. A new
// search (start) goes to the first match from the top line on screen, or
// to the last match when the pane follows the end.
func (p *pane) nextMatch(dir int, start bool) {
	if len(p.matches) == 0 {
		return
	}
	if start {
		p.match = len(p.matches) - 1
		for i, l := range p.matches {
			if l >= p.y && !p.follow {
				p.match = i
				break
			}
		}
	} else {
		p.match = (p.match + dir + len(p.matches)) % len(p.matches)
	}
	p.follow = false
	p.y = max(0, p.matches[p.match]-p.h/3)
}

func (p *pane) scroll(n int) {
	p.y += n
	if n < 0 {
		p.follow = false
	}
}

func (p *pane) bottom() int { return max(0, p.count()-p.h) }

func (p *pane) view(w, h int) string {
	p.h = max(h, 1)
	if p.follow {
		p.y = p.bottom()
	}
	p.y = max(0, min(p.y, p.bottom()))
	if p.count() == 0 {
		return dimStyle.Render("(empty)")
	}
	q := strings.ToLower(p.query)
	var b strings.Builder
	for i := p.y; i < p.count() && i < p.y+p.h; i++ {
		l := p.line(i)
		if p.x > 0 {
			l = ansi.Cut(l, p.x, p.x+w)
		}
		l = clip(l, w)
		if q != "" {
			l = highlight(l, q)
		}
		if i > p.y {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	return b.String()
}
