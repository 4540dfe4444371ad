package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// DefaultRefresh is how often the view on screen reloads.
const DefaultRefresh = 2 * time.Second

// Options tune a Model.
type Options struct {
	// Cluster is the cluster's name, shown in the title.
	Cluster string
	// Refresh is the reload interval; 0 or less never reloads by itself
	// (tests drive reloads with explicit messages).
	Refresh time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Timeout bounds each load (default 10 s).
	Timeout time.Duration
}

// keyMap holds every binding; views pick theirs for the footer.
type keyMap struct {
	Up, Down, PageUp, PageDown, Home, End, Left, Right key.Binding
	Enter, Back, Filter, Logs, Files, Kill, Restart    key.Binding
	Stream, Follow, Next, Prev, Help, Quit, Jobs       key.Binding
}

func defaultKeys() keyMap {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return keyMap{
		Up:       b("↑/k", "up", "up", "k"),
		Down:     b("↓/j", "down", "down", "j"),
		PageUp:   b("pgup", "page up", "pgup", "ctrl+b"),
		PageDown: b("pgdn", "page down", "pgdown", "ctrl+f", " "),
		Home:     b("g/home", "top", "home", "g"),
		End:      b("G/end", "bottom", "end", "G"),
		Left:     b("←", "scroll left", "left"),
		Right:    b("→", "scroll right", "right"),
		Enter:    b("enter", "open", "enter"),
		Back:     b("esc", "back", "esc"),
		Filter:   b("/", "filter", "/"),
		Logs:     b("l", "logs", "l"),
		Files:    b("f", "files", "f"),
		Kill:     b("k", "kill", "k"),
		Restart:  b("r", "restart", "r"),
		Stream:   b("s/tab", "stdout/stderr", "s", "tab"),
		Follow:   b("F", "follow", "F"),
		Next:     b("n/N", "next/prev match", "n"),
		Prev:     b("N", "previous match", "N"),
		Help:     b("?", "help", "?"),
		Quit:     b("q", "quit", "q", "ctrl+c"),
		Jobs:     b("enter", "jobs", "enter"),
	}
}

// Messages.
type (
	tickMsg   time.Time
	loadedMsg struct {
		id, gen int
		data    any
		err     error
	}
	// actionMsg reports a kill or restart.
	actionMsg struct {
		text string
		err  error
	}
	// openMsg answers openSandbox: push v, or say why there is nothing
	// to open; from is the view that asked.
	openMsg struct {
		from int
		v    view
		why  string
	}
)

// inputMode says what the text input edits.
type inputMode int

const (
	inputNone inputMode = iota
	inputFilter
	inputSearch
)

// confirmation is a pending kill or restart.
type confirmation struct {
	prompt string
	run    func(ctx context.Context) (string, error)
}

// Model is the TUI's bubbletea model: a stack of views, the top one on
// screen.
type Model struct {
	src      Source
	opts     Options
	keys     keyMap
	help     help.Model
	input    textinput.Model
	mode     inputMode
	confirm  *confirmation
	stack    []view
	nextID   int
	width    int
	height   int
	showHelp bool
	flash    string
	flashErr bool
	quitting bool
}

// New returns a Model on the appliance overview.
func New(src Source, opts Options) *Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	in := textinput.New()
	in.Cursor.SetMode(cursor.CursorStatic)
	in.CharLimit = 200
	m := &Model{src: src, opts: opts, keys: defaultKeys(), help: help.New(), input: in, width: 80, height: 24}
	first := newOverview()
	m.nextID++
	first.id = m.nextID
	m.stack = []view{first}
	return m
}

// Init loads the first view and starts the refresh ticks.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.load(m.top()), m.tick())
}

func (m *Model) tick() tea.Cmd {
	if m.opts.Refresh <= 0 {
		return nil
	}
	return tea.Tick(m.opts.Refresh, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func (m *Model) top() view { return m.stack[len(m.stack)-1] }

// push puts v on top and returns the command that loads it.
func (m *Model) push(v view) tea.Cmd {
	m.nextID++
	v.base().id = m.nextID
	m.stack = append(m.stack, v)
	m.flash = ""
	return m.load(v)
}

func (m *Model) pop() tea.Cmd {
	if len(m.stack) <= 1 {
		return nil
	}
	m.stack = m.stack[:len(m.stack)-1]
	m.flash = ""
	return m.load(m.top())
}

// load starts v's loader unless one is already running.
func (m *Model) load(v view) tea.Cmd {
	b := v.base()
	if b.loading {
		return nil
	}
	fetch := v.fetch(m.src)
	if fetch == nil {
		return nil
	}
	b.loading = true
	id, gen, timeout := b.id, b.gen, m.opts.Timeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		data, err := fetch(ctx)
		return loadedMsg{id: id, gen: gen, data: data, err: err}
	}
}

// reload forgets what a view's loader is doing (its answer will be stale)
// and starts it again.
func (m *Model) reload(v view) tea.Cmd {
	b := v.base()
	b.gen++
	b.loading = false
	return m.load(v)
}

func (m *Model) find(id int) view {
	for _, v := range m.stack {
		if v.base().id == id {
			return v
		}
	}
	return nil
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = max(msg.Width, 20), max(msg.Height, 6)
		return m, nil
	case tickMsg:
		return m, tea.Batch(m.load(m.top()), m.tick())
	case loadedMsg:
		v := m.find(msg.id)
		if v == nil {
			return m, nil
		}
		b := v.base()
		if msg.gen != b.gen {
			return m, nil
		}
		b.loading = false
		b.err = msg.err
		if msg.err == nil {
			b.loaded = true
			b.updated = m.opts.Now()
			return m, v.apply(m, msg.data)
		}
		return m, nil
	case openMsg:
		if m.top().base().id != msg.from { // the user moved on meanwhile
			return m, nil
		}
		if msg.why != "" {
			m.flash, m.flashErr = msg.why, false
			return m, nil
		}
		return m, m.push(msg.v)
	case actionMsg:
		m.flash, m.flashErr = msg.text, msg.err != nil
		if msg.err != nil {
			m.flash = msg.err.Error()
		}
		return m, m.reload(m.top())
	case tea.KeyMsg:
		// Keys typed faster than they are read arrive as one message of
		// several runes: take them one at a time, unless in an input.
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && m.mode == inputNone {
			var cmds []tea.Cmd
			for _, r := range msg.Runes {
				cmds = append(cmds, m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}}))
				if m.quitting {
					break
				}
			}
			return m, tea.Batch(cmds...)
		}
		return m, m.key(msg)
	}
	return m, nil
}

func (m *Model) key(msg tea.KeyMsg) tea.Cmd {
	if msg.String() == "ctrl+c" {
		m.quitting = true
		return tea.Quit
	}
	if m.mode != inputNone {
		return m.inputKey(msg)
	}
	if m.confirm == nil {
		m.flash = "" // a message stays until the next key
	}
	if m.confirm != nil {
		c := m.confirm
		m.confirm = nil
		if s := msg.String(); s != "y" && s != "Y" {
			m.flash, m.flashErr = "cancelled", false
			return nil
		}
		m.flash, m.flashErr = "working…", false
		timeout := m.opts.Timeout
		return func() tea.Msg {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			text, err := c.run(ctx)
			return actionMsg{text, err}
		}
	}
	if m.showHelp {
		m.showHelp = false
		if key.Matches(msg, m.keys.Quit) {
			m.quitting = true
			return tea.Quit
		}
		return nil
	}
	v := m.top()
	switch {
	case key.Matches(msg, m.keys.Quit):
		m.quitting = true
		return tea.Quit
	case key.Matches(msg, m.keys.Help):
		m.showHelp = true
		return nil
	case key.Matches(msg, m.keys.Back):
		if f, ok := v.(filterable); ok && f.query() != "" {
			f.setQuery("")
			return nil
		}
		return m.pop()
	case key.Matches(msg, m.keys.Filter):
		if f, ok := v.(filterable); ok {
			m.mode = inputFilter
			if _, isPane := v.(*textView); isPane {
				m.mode = inputSearch
			}
			m.input.Prompt = "/"
			m.input.SetValue(f.query())
			m.input.CursorEnd()
			return m.input.Focus()
		}
	}
	if cmd, ok := v.key(m, msg); ok {
		return cmd
	}
	if l := v.base().list; l != nil {
		switch {
		case key.Matches(msg, m.keys.Up):
			l.move(-1)
		case key.Matches(msg, m.keys.Down):
			l.move(1)
		case key.Matches(msg, m.keys.PageUp):
			l.move(-max(1, m.bodyHeight()-2))
		case key.Matches(msg, m.keys.PageDown):
			l.move(max(1, m.bodyHeight()-2))
		case key.Matches(msg, m.keys.Home):
			l.move(-len(l.rows))
		case key.Matches(msg, m.keys.End):
			l.move(len(l.rows))
		}
	}
	return nil
}

// filterable views take the / input: lists filter, panes search.
type filterable interface {
	query() string
	setQuery(string)
}

func (m *Model) inputKey(msg tea.KeyMsg) tea.Cmd {
	f, _ := m.top().(filterable)
	switch msg.String() {
	case "enter":
		m.mode = inputNone
		m.input.Blur()
		if tv, ok := m.top().(*textView); ok {
			tv.pane.nextMatch(1, true)
		}
		return nil
	case "esc":
		m.mode = inputNone
		m.input.Blur()
		if f != nil {
			f.setQuery("")
		}
		return nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	if f != nil {
		f.setQuery(m.input.Value())
	}
	return cmd
}

// askConfirm sets up a kill or restart that waits for y.
func (m *Model) askConfirm(prompt string, run func(ctx context.Context) (string, error)) tea.Cmd {
	m.confirm = &confirmation{prompt: prompt, run: run}
	return nil
}

func (m *Model) bodyHeight() int { return max(m.height-3, 1) }

// View implements tea.Model: a title line, the view, a status line and the
// keys, exactly the window's height.
func (m *Model) View() string {
	if m.quitting {
		return ""
	}
	w, h := m.width, m.bodyHeight()
	var body string
	if m.showHelp {
		body = m.helpView(w, h)
	} else {
		body = m.top().render(m, w, h)
	}
	body = fit(body, w, h)
	return m.titleLine() + "\n" + body + "\n" + m.statusLine() + "\n" + m.footer()
}

// fit makes s exactly h lines of at most w cells.
func fit(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i := range lines {
		lines[i] = clip(lines[i], w)
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

func (m *Model) titleLine() string {
	var crumbs []string
	for i, v := range m.stack {
		if i == 0 && len(m.stack) > 1 {
			continue // the overview is always at the bottom
		}
		crumbs = append(crumbs, v.title())
	}
	left := " aurorabox"
	if m.opts.Cluster != "" {
		left += " " + m.opts.Cluster
	}
	left += " › " + strings.Join(crumbs, " › ")
	right := ""
	b := m.top().base()
	switch {
	case b.loading && !b.loaded:
		right = "loading… "
	case !b.updated.IsZero():
		right = b.updated.Format("15:04:05") + " "
	}
	space := m.width - lipgloss.Width(right) - 1
	if lipgloss.Width(left) > space {
		// Keep the end of the breadcrumbs: where we are matters most.
		r := []rune(left)
		for len(r) > 0 && lipgloss.Width("…"+string(r)) > space {
			r = r[1:]
		}
		left = "…" + string(r)
	}
	return titleStyle.Render(left + strings.Repeat(" ", max(0, space-lipgloss.Width(left))+1) + right)
}

func (m *Model) statusLine() string {
	w := m.width
	switch {
	case m.mode != inputNone:
		m.input.Width = max(w-4, 1)
		return clip(m.input.View(), w)
	case m.confirm != nil:
		return warnStyle.Render(clip(m.confirm.prompt+" [y/N]", w))
	case m.flash != "":
		if m.flashErr {
			return errorStyle.Render(clip(m.flash, w))
		}
		return clip(m.flash, w)
	}
	v := m.top()
	if err := v.base().err; err != nil {
		msg := err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "timed out"
		}
		return errorStyle.Render(clip("error: "+oneLine(msg), w))
	}
	return dimStyle.Render(clip(v.status(m), w))
}

func (m *Model) footer() string {
	m.help.Width = 0
	if m.showHelp {
		close := key.NewBinding(key.WithKeys("esc"), key.WithHelp("any key", "close help"))
		return clip(m.help.ShortHelpView([]key.Binding{close, m.keys.Quit}), m.width)
	}
	var lead []key.Binding
	if len(m.stack) > 1 {
		lead = []key.Binding{m.keys.Back}
	}
	own := m.top().bindings(m)
	// Drop the view's last keys until the line fits: ? and q always show.
	for {
		bs := append(append(append([]key.Binding{}, lead...), own...), m.keys.Help, m.keys.Quit)
		s := m.help.ShortHelpView(bs)
		if lipgloss.Width(s) <= m.width || len(own) == 0 {
			return clip(s, m.width)
		}
		own = own[:len(own)-1]
	}
}

func (m *Model) helpView(w, h int) string {
	rows := [][2]string{
		{"↑ ↓  j k", "move (k kills in the instance and task views: use ↑ there)"},
		{"pgup pgdn  g G", "page up/down, top, bottom"},
		{"enter", "open: overview → jobs → instances → task → log"},
		{"esc", "back (or clear the filter)"},
		{"/", "filter a list; search a log or file (enter, then n/N)"},
		{"l", "logs of the selected task's process"},
		{"f", "the task's sandbox files"},
		{"k", "kill the selected instance (asks first)"},
		{"r", "restart the selected instance (asks first)"},
		{"s  tab", "log: stdout/stderr"},
		{"F", "log or file: follow the end on/off"},
		{"← →", "log or file: scroll sideways"},
		{"?", "this help"},
		{"q  ctrl+c", "quit"},
	}
	var b strings.Builder
	b.WriteString(headerStyle.Render("Keys") + "\n")
	for _, r := range rows {
		b.WriteString("  " + keyStyle.Render(pad(r[0], 16, false)) + " " + r[1] + "\n")
	}
	b.WriteString("\n" + dimStyle.Render(fmt.Sprintf("Reloads every %s; data from the scheduler, observer, master and status.", refreshText(m.opts.Refresh))))
	return fit(b.String(), w, h)
}

func refreshText(d time.Duration) string {
	if d <= 0 {
		return "(never)"
	}
	return d.String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
