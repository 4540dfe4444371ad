package tui

import (
	"context"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/observer/observerapi"
)

func TestReadMore(t *testing.T) {
	f := newFake()
	f.maxChunk = 1000                                   // the observer caps chunks; readMore asks again
	data := strings.Repeat("0123456789abcdef\n", 10000) // 170000 bytes
	var asked int
	read := func(_ context.Context, off, n int64) (observerapi.Chunk, error) {
		asked++
		return f.chunk(data, off, n), nil
	}
	ctx := context.Background()

	// A log starts tailBytes before the end, mid-line.
	d, err := readMore(ctx, read, -1, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !d.reset || !d.dropPartial || d.next != int64(len(data)) || int64(len(d.data)) != tailBytes {
		t.Errorf("tail: reset %v partial %v next %d, %d bytes", d.reset, d.dropPartial, d.next, len(d.data))
	}
	var p pane = newPane(true)
	p.add(d)
	if p.lines[0] != "0123456789abcdef" || len(p.lines) != tailBytes/17 {
		t.Errorf("first line %q, %d lines", p.lines[0], len(p.lines))
	}

	// Nothing new: one request.
	asked = 0
	d, _ = readMore(ctx, read, p.next, true, p.held())
	if asked != 1 || d.data != "" || d.reset {
		t.Errorf("no news: %d requests, %+v", asked, d)
	}
	// New data appends.
	data += "new line\n"
	d, _ = readMore(ctx, read, p.next, true, p.held())
	p.add(d)
	if p.lines[len(p.lines)-1] != "new line" || d.reset {
		t.Errorf("appended: %q", p.lines[len(p.lines)-1])
	}
	// A truncated (rotated) log starts over.
	data = "fresh\n"
	d, _ = readMore(ctx, read, p.next, true, p.held())
	p.add(d)
	if !d.reset || strings.Join(p.lines, "|") != "fresh" {
		t.Errorf("after truncation: %+v %q", d, p.lines)
	}

	// A file shows its head, at most fileBytes, then stops.
	data = strings.Repeat("x", fileBytes+5000)
	f.maxChunk = 1 << 20
	d, _ = readMore(ctx, read, -1, false, 0)
	if !d.full || len(d.data) != fileBytes || d.dropPartial {
		t.Errorf("head: full %v, %d bytes", d.full, len(d.data))
	}
	p = newPane(false)
	p.add(d)
	v := &textView{pane: p}
	if v.fetch(f) != nil {
		t.Error("a full file view loads again")
	}
}

func TestCleanLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                     "plain",
		"\x1b[1;31mbold red\x1b[0m": "bold red",
		"a\tb":                      "a       b",
		"12345678\tc":               "12345678        c",
		"cr\r\x07bell":              "crbell",
		"\x1b]0;title\x07after":     "after",
	} {
		if got := cleanLine(in); got != want {
			t.Errorf("cleanLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeepsTheEndOfAHugeLog(t *testing.T) {
	p := newPane(true)
	line := strings.Repeat("y", 99) + "\n"
	for i := 0; i < 3*keepBytes/len(line); i++ {
		p.add(chunkData{data: line})
	}
	if p.held() > keepBytes || p.lines[0] != line[:99] || len(p.lines) != keepBytes/len(line) {
		t.Errorf("kept %d bytes, %d lines", p.held(), len(p.lines))
	}
}
