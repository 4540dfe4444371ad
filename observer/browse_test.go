package observer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/sandboxfs/sandboxfstest"
	"github.com/aurorabox/aurorabox/observer/observerapi"
)

// listingJSON is /j/browse/<activeID>/<dir>, which must answer 200.
func listingJSON(t *testing.T, h http.Handler, dir string) observerapi.Listing {
	t.Helper()
	w := get(t, h, observerapi.BrowsePath(activeID, dir))
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("/j/browse %q: %d %q\n%s", dir, w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var l observerapi.Listing
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("/j/browse %q: %v", dir, err)
	}
	return l
}

var rowRE = regexp.MustCompile(`<tr data-name="([^"]*)">\n<td>(.*)</td>`)

// pageRow is an entry of the HTML /browse page: its name and where its
// name links to ("" for none).
type pageRow struct{ name, href string }

func listingHTML(t *testing.T, h http.Handler, dir string) ([]pageRow, string) {
	t.Helper()
	w := get(t, h, sandboxHref("browse", activeID, dir))
	if w.Code != 200 {
		t.Fatalf("/browse %q: %d\n%s", dir, w.Code, w.Body)
	}
	var out []pageRow
	for _, m := range rowRE.FindAllStringSubmatch(w.Body.String(), -1) {
		r := pageRow{name: html.UnescapeString(m[1])}
		if _, rest, ok := strings.Cut(m[2], `<a href="`); ok {
			r.href, _, _ = strings.Cut(rest, `"`)
			r.href = html.UnescapeString(r.href)
		}
		out = append(out, r)
	}
	return out, w.Body.String()
}

// TestBrowseJSONListsWhatThePageLists: for every directory of the sandbox
// (symlinks in and out, a FIFO, a socket and a device among them), the
// JSON listing has the entries of the HTML page, in its order, and says
// of each what the page links it as: a directory to browse, a file to
// read, or neither.
func TestBrowseJSONListsWhatThePageLists(t *testing.T) {
	f := newFixture(t)
	specials := filepath.Join(f.sandbox(activeID), "specials")
	if err := os.Mkdir(specials, 0o755); err != nil {
		t.Fatal(err)
	}
	sandboxfstest.Specials(t, specials)
	symlink(t, "../data", filepath.Join(specials, "data-link"))
	symlink(t, "fifo", filepath.Join(specials, "fifo-link"))
	symlink(t, "nowhere", filepath.Join(specials, "dangling"))
	writeFile(t, filepath.Join(f.sandbox(activeID), "odd names", `<b>&"quoted" ü`), "x")
	h := newTestObserver(t, f).Handler()

	for _, dir := range []string{"", "data", "escapes", "specials", ".logs", ".logs/hello", ".logs/hello/1", "odd names"} {
		l := listingJSON(t, h, dir)
		rows, _ := listingHTML(t, h, dir)
		if l.TaskID != activeID || l.Path != dir || l.Truncated {
			t.Errorf("%q: task %q path %q truncated %v", dir, l.TaskID, l.Path, l.Truncated)
		}
		if len(rows) == 0 || len(rows) != len(l.Entries) {
			t.Fatalf("%q: the page lists %d entries, the JSON %d", dir, len(rows), len(l.Entries))
		}
		for i, e := range l.Entries {
			want := pageRow{name: e.Name}
			switch {
			case e.IsDir():
				want.href = sandboxHref("browse", activeID, e.Path)
			case e.IsFile():
				want.href = sandboxHref("file", activeID, e.Path)
			}
			if rows[i] != want {
				t.Errorf("%q entry %d: the page has %+v, the JSON %+v", dir, i, rows[i], e)
			}
		}
	}
}

// TestBrowseJSONEntries: what each kind of entry says, and that its path
// reads the file (/filedata) or lists the directory (/j/browse) it names.
func TestBrowseJSONEntries(t *testing.T) {
	f := newFixture(t)
	specials := filepath.Join(f.sandbox(activeID), "specials")
	if err := os.Mkdir(specials, 0o755); err != nil {
		t.Fatal(err)
	}
	sandboxfstest.Specials(t, specials)
	h := newTestObserver(t, f).Handler()
	mtime := float64(t0.Unix())
	entries := func(dir string) map[string]observerapi.DirEntry {
		out := map[string]observerapi.DirEntry{}
		for _, e := range listingJSON(t, h, dir).Entries {
			out[e.Name] = e
		}
		return out
	}
	root := entries("")
	for name, want := range map[string]observerapi.DirEntry{
		"data":       {Name: "data", Path: "data", Kind: observerapi.KindDir, Mode: "drwxr-xr-x", Mtime: mtime},
		"notes-link": {Name: "notes-link", Path: "notes-link", Kind: observerapi.KindSymlink, Target: observerapi.KindFile, Size: 11, Mode: "Lrwxrwxrwx", Mtime: mtime},
		"up-link":    {Name: "up-link", Path: "up-link", Kind: observerapi.KindSymlink, Target: observerapi.KindOutside, Size: 30, Mode: "Lrwxrwxrwx", Mtime: mtime},
	} {
		if root[name] != want {
			t.Errorf("%s: %+v, want %+v", name, root[name], want)
		}
	}
	esc := entries("escapes")
	for name, want := range map[string][2]observerapi.Kind{
		"abs-link": {observerapi.KindSymlink, observerapi.KindOutside},
		"dir-link": {observerapi.KindSymlink, observerapi.KindOutside},
		"fifo":     {observerapi.KindOther},
	} {
		e := esc[name]
		if [2]observerapi.Kind{e.Kind, e.Target} != want || e.Path != "escapes/"+name || e.IsDir() || e.IsFile() {
			t.Errorf("escapes/%s: %+v, want kind and target %v", name, e, want)
		}
	}
	// A socket or a device (or where mknod is not allowed, a symlink to
	// /dev/null) is never offered to read.
	for name, e := range entries("specials") {
		if e.IsDir() || e.IsFile() || e.Path != "specials/"+name {
			t.Errorf("specials/%s: %+v is offered", name, e)
		}
	}

	// The paths serve: a file through a symlink, a nested file, a
	// directory.
	data := entries("data")
	for _, e := range []observerapi.DirEntry{root["notes-link"], data["notes.txt"]} {
		w := get(t, h, observerapi.FileDataPath(activeID, e.Path, 0, -1))
		var c observerapi.Chunk
		if err := json.Unmarshal(w.Body.Bytes(), &c); w.Code != 200 || err != nil || c.Data != "some notes\n" {
			t.Errorf("%s: %d %s", e.Path, w.Code, w.Body)
		}
	}
	if w := get(t, h, observerapi.BrowsePath(activeID, root["data"].Path)); w.Code != 200 || !strings.Contains(w.Body.String(), `"path": "data/page.html"`) {
		t.Errorf("browsing %s: %d %s", root["data"].Path, w.Code, w.Body)
	}
	// A symlink out is not followed, nor is a FIFO opened.
	for _, e := range []observerapi.DirEntry{root["up-link"], esc["dir-link"], esc["fifo"]} {
		for _, p := range []string{observerapi.BrowsePath(activeID, e.Path), observerapi.FileDataPath(activeID, e.Path, 0, -1)} {
			w := get(t, h, p)
			var je observerapi.Error
			if w.Code < 400 || w.Code > 499 || json.Unmarshal(w.Body.Bytes(), &je) != nil || je.Error == "" || strings.Contains(w.Body.String(), secret) {
				t.Errorf("%s: %d %s, want a 4xx with a JSON error", p, w.Code, w.Body)
			}
		}
	}
	// An unknown task: a JSON 404.
	if w := get(t, h, observerapi.BrowsePath("nope", "")); w.Code != 404 || !strings.Contains(w.Body.String(), `"error"`) {
		t.Errorf("unknown task: %d %s", w.Code, w.Body)
	}
}

// TestBrowseTruncated: a directory of more than MaxListing entries is
// listed up to MaxListing, on the page and in the JSON alike, which both
// say so.
func TestBrowseTruncated(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(f.sandbox(activeID), "many")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range observerapi.MaxListing + 1 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := newTestObserver(t, f).Handler()
	l := listingJSON(t, h, "many")
	rows, page := listingHTML(t, h, "many")
	if !l.Truncated || len(l.Entries) != observerapi.MaxListing || len(rows) != observerapi.MaxListing {
		t.Fatalf("truncated %v, %d entries in the JSON, %d on the page", l.Truncated, len(l.Entries), len(rows))
	}
	if !strings.Contains(page, fmt.Sprintf("Only the first %d entries", observerapi.MaxListing)) {
		t.Error("the page does not say it is truncated")
	}
	for i, e := range l.Entries {
		if rows[i].name != e.Name {
			t.Fatalf("entry %d: %q on the page, %q in the JSON", i, rows[i].name, e.Name)
		}
	}
}

// TestJSONAnswersAreTheContract: every JSON answer of the observer decodes
// into its observerapi type with no field left over, and encodes back to
// the same JSON, so a reader that uses those types sees all of it.
func TestJSONAnswersAreTheContract(t *testing.T) {
	f := newFixture(t)
	h := newTestObserver(t, f).Handler()
	for _, tc := range []struct {
		target string
		into   any
	}{
		{"/j/task_ids", &observerapi.TaskIDs{}},
		{"/j/task_ids/finished/0/5", &observerapi.TaskIDs{}},
		{"/j/task_id_count", &observerapi.TaskIDCount{}},
		{"/j/task/" + activeID, &map[string]observerapi.Task{}},
		{"/j/task?task_id=" + activeID + "," + finishedID, &map[string]observerapi.Task{}},
		{"/j/process/" + activeID, &map[string]observerapi.Run{}},
		{"/j/process/" + activeID + "/hello", &observerapi.Run{}},
		{"/j/process/" + activeID + "/hello/0", &observerapi.Run{}},
		{"/j/processes?task_id=" + activeID, &map[string]map[string]observerapi.Run{}},
		{"/logdata/" + activeID + "/hello/0/stderr?offset=0", &observerapi.Chunk{}},
		{"/filedata/" + activeID + "/data/page.html?offset=3&length=20", &observerapi.Chunk{}},
		{"/j/browse/" + activeID, &observerapi.Listing{}},
		{"/j/browse/" + activeID + "/escapes", &observerapi.Listing{}},
		{"/j/nope", &observerapi.Error{}},
		{"/j/task_ids/nope", &observerapi.Error{}},
		{"/filedata/" + activeID + "/escapes/fifo", &observerapi.Error{}},
		{"/logdata/" + activeID + "/hello/0/stderr?offset=x", &observerapi.Error{}},
	} {
		w := get(t, h, tc.target)
		dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(tc.into); err != nil {
			t.Errorf("%s: %v\n%s", tc.target, err, w.Body)
			continue
		}
		again, err := json.Marshal(tc.into)
		if err != nil {
			t.Fatal(err)
		}
		var got, want any
		json.Unmarshal(w.Body.Bytes(), &want)
		json.Unmarshal(again, &got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded and encoded again\n%s\nwant\n%s", tc.target, again, w.Body)
		}
	}
}
