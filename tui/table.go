package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

var (
	titleStyle    = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("15")).Background(lipgloss.Color("24"))
	headerStyle   = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("110"))
	selectedStyle = lipgloss.NewStyle().Reverse(true)
	dimStyle      = lipgloss.NewStyle().Faint(true)
	errorStyle    = lipgloss.NewStyle().Foreground(lipgloss.Color("9")).Bold(true)
	okStyle       = lipgloss.NewStyle().Foreground(lipgloss.Color("10"))
	warnStyle     = lipgloss.NewStyle().Foreground(lipgloss.Color("11"))
	matchStyle    = lipgloss.NewStyle().Reverse(true).Foreground(lipgloss.Color("11"))
	keyStyle      = lipgloss.NewStyle().Bold(true)
)

// stateStyle colours a task, process or component state.
func stateStyle(s string) lipgloss.Style {
	switch s {
	case "RUNNING", "healthy", "ACTIVE", "SUCCESS", "FINISHED", "active":
		return okStyle
	case "PENDING", "THROTTLED", "ASSIGNED", "STARTING", "starting", "KILLING", "RESTARTING", "DRAINING",
		"PREEMPTING", "PARTITIONED", "WAITING", "FORKED", "CLEANING", "FINALIZING":
		return warnStyle
	case "FAILED", "LOST", "unhealthy", "KILLED", "inactive":
		return errorStyle
	}
	return lipgloss.NewStyle()
}

// column is a column of a list; one column may be flex, taking the width
// the others leave.
type column struct {
	title string
	width int
	flex  bool
	right bool
	// style colours a cell by its text (nil: plain).
	style func(string) lipgloss.Style
}

// row is one line of a list; key identifies it across reloads, so the
// cursor stays on the same thing while rows come and go.
type row struct {
	key   string
	cells []string
}

// list is a table with a cursor, scrolling and a filter. It renders plain
// cells padded to their columns, the cursor row marked with ▸ and reversed.
type list struct {
	cols     []column
	all      []row // every row
	rows     []row // the rows that pass the filter
	filter   string
	cursor   int
	offset   int
	selected string // the key under the cursor
	noCursor bool
}

func newList(cols ...column) *list { return &list{cols: cols} }

// setRows replaces the rows, keeping the cursor on the same key.
func (l *list) setRows(rows []row) {
	l.all = rows
	l.apply()
}

func (l *list) setFilter(f string) {
	l.filter = f
	l.apply()
}

func (l *list) apply() {
	l.rows = l.rows[:0:0]
	f := strings.ToLower(l.filter)
	for _, r := range l.all {
		if f == "" || strings.Contains(strings.ToLower(strings.Join(r.cells, " ")), f) {
			l.rows = append(l.rows, r)
		}
	}
	l.cursor = 0
	for i, r := range l.rows {
		if r.key == l.selected {
			l.cursor = i
			break
		}
	}
	l.clamp()
}

func (l *list) clamp() {
	if l.cursor >= len(l.rows) {
		l.cursor = len(l.rows) - 1
	}
	if l.cursor < 0 {
		l.cursor = 0
	}
	if len(l.rows) > 0 {
		l.selected = l.rows[l.cursor].key
	}
}

func (l *list) move(n int) {
	l.cursor += n
	l.clamp()
}

// current is the row under the cursor.
func (l *list) current() (row, bool) {
	if l.cursor < len(l.rows) {
		return l.rows[l.cursor], true
	}
	return row{}, false
}

// widths fits the columns into w (the cursor mark and one space between
// columns included).
func (l *list) widths(w int) []int {
	ws := make([]int, len(l.cols))
	used := 2 + len(l.cols) - 1
	flex := -1
	for i, c := range l.cols {
		ws[i] = c.width
		if c.flex {
			flex = i
		} else {
			used += c.width
		}
	}
	if flex >= 0 {
		ws[flex] = max(w-used, 4)
	}
	return ws
}

// pad truncates or pads s to exactly w cells.
func pad(s string, w int, right bool) string {
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	gap := strings.Repeat(" ", w-ansi.StringWidth(s))
	if right {
		return gap + s
	}
	return s + gap
}

// render draws the header and as many rows as fit in h lines, scrolling to
// keep the cursor visible.
func (l *list) render(w, h int) string {
	if h < 1 {
		return ""
	}
	ws := l.widths(w)
	var b strings.Builder
	var head []string
	for i, c := range l.cols {
		head = append(head, pad(c.title, ws[i], c.right))
	}
	b.WriteString(headerStyle.Render(clip("  "+strings.Join(head, " "), w)))
	n := h - 1
	if n <= 0 {
		return b.String()
	}
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+n {
		l.offset = l.cursor - n + 1
	}
	if l.offset > max(0, len(l.rows)-n) {
		l.offset = max(0, len(l.rows)-n)
	}
	for i := l.offset; i < len(l.rows) && i < l.offset+n; i++ {
		r := l.rows[i]
		sel := i == l.cursor && !l.noCursor
		var cells []string
		for j, c := range l.cols {
			v := ""
			if j < len(r.cells) {
				v = r.cells[j]
			}
			cell := pad(v, ws[j], c.right)
			if c.style != nil && !sel {
				cell = c.style(strings.TrimSpace(v)).Render(cell)
			}
			cells = append(cells, cell)
		}
		line := "  " + strings.Join(cells, " ")
		if sel {
			line = selectedStyle.Render(clip("▸ "+strings.Join(cells, " "), w))
		} else {
			line = clip(line, w)
		}
		b.WriteString("\n" + line)
	}
	if len(l.rows) == 0 {
		msg := "  (none)"
		if l.filter != "" {
			msg = fmt.Sprintf("  (nothing matches %q)", l.filter)
		}
		b.WriteString("\n" + dimStyle.Render(clip(msg, w)))
	}
	return b.String()
}

// clip cuts s (which may hold ANSI codes) to w cells.
func clip(s string, w int) string {
	if ansi.StringWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "")
}
