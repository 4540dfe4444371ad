package observer

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
	"github.com/aurorabox/aurorabox/observer/observerapi"
)

// errBadPath is a request path that we refuse without looking at the disk.
var errBadPath = fmt.Errorf("%w: path must be relative to the sandbox, without . or .. segments", sandboxfs.ErrBadPath)

// cleanSegments unescapes the raw (still percent-encoded) segments of a
// sandbox path and refuses empty segments (an absolute or doubled-slash
// path), `.`, `..`, NUL bytes and encoded slashes. A single trailing empty
// segment (a trailing slash) is dropped. The result joined with "/" is a
// local path (filepath.IsLocal), safe to hand to an os.Root.
func cleanSegments(raw []string) ([]string, error) {
	if n := len(raw); n > 0 && raw[n-1] == "" {
		raw = raw[:n-1]
	}
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		s, err := url.PathUnescape(r)
		if err != nil || s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") {
			return nil, errBadPath
		}
		out = append(out, s)
	}
	return out, nil
}

// relPath joins clean segments ("." for none).
func relPath(segs []string) string {
	if len(segs) == 0 {
		return "."
	}
	return strings.Join(segs, "/")
}

// readChunk reads at most max bytes of f (of size size) at offset. An offset
// of -1 is the end of the file, as is any offset past it (a truncated file);
// a length of -1 is the rest of the file. It returns the offset used and
// the bytes read.
func readChunk(f io.ReaderAt, size, offset, length, max int64) (int64, []byte, error) {
	if offset < 0 || offset > size {
		offset = size
	}
	if length < 0 {
		length = size - offset
	}
	length = min(length, max, size-offset)
	buf := make([]byte, length)
	n, err := f.ReadAt(buf, offset)
	if err != nil && err != io.EOF {
		return 0, nil, err
	}
	return offset, buf[:n], nil
}

// writeChunk writes an observerapi.Chunk, {"offset": ..., "length": ...,
// "data": ...}, with data escaped as a JSON string as it streams out, so
// that a chunk costs its read buffer and no more, even when every byte
// needs a \u escape. Bytes
// that are not UTF-8 become U+FFFD; length stays the number of bytes read,
// which is what a reader adds to offset.
func writeChunk(w io.Writer, offset int64, data []byte) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	fmt.Fprintf(bw, "{\"offset\": %d, \"length\": %d, \"data\": \"", offset, len(data))
	const hex = "0123456789abcdef"
	for i := 0; i < len(data); {
		b := data[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				bw.WriteByte('\\')
				bw.WriteByte(b)
			case b == '\n':
				bw.WriteString(`\n`)
			case b == '\t':
				bw.WriteString(`\t`)
			case b == '\r':
				bw.WriteString(`\r`)
			case b < 0x20 || b == '<' || b == '>' || b == '&' || b == 0x7f:
				bw.WriteString(`\u00`)
				bw.WriteByte(hex[b>>4])
				bw.WriteByte(hex[b&0xf])
			default:
				bw.WriteByte(b)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			bw.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			fmt.Fprintf(bw, `\u%04x`, r)
		default:
			bw.Write(data[i : i+size])
		}
		i += size
	}
	bw.WriteString("\"}\n")
	return bw.Flush()
}

// kindOf is what a file of mode m is, in a listing.
func kindOf(m fs.FileMode) observerapi.Kind {
	switch {
	case m.IsDir():
		return observerapi.KindDir
	case m.IsRegular():
		return observerapi.KindFile
	case m&fs.ModeSymlink != 0:
		return observerapi.KindSymlink
	}
	return observerapi.KindOther
}

// listDir lists a sandbox directory (rel; "." is the sandbox), directories
// first, at most observerapi.MaxListing entries: what both /browse and
// /j/browse show. The directory is opened as sandboxfs opens it; a symlink
// is resolved through root, so one that leads out of the sandbox (or
// nowhere) shows as such and is never followed.
func listDir(root *os.Root, rel string) ([]observerapi.DirEntry, bool, error) {
	f, _, err := sandboxfs.Open(root, rel, sandboxfs.Dir)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	des, err := f.ReadDir(observerapi.MaxListing + 1)
	if err != nil && err != io.EOF {
		return nil, false, err
	}
	truncated := len(des) > observerapi.MaxListing
	if truncated {
		des = des[:observerapi.MaxListing]
	}
	out := make([]observerapi.DirEntry, 0, len(des))
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			continue // removed since ReadDir
		}
		p := path.Join(rel, de.Name())
		e := observerapi.DirEntry{Name: de.Name(), Path: p, Kind: kindOf(fi.Mode()), Size: fi.Size(),
			Mode: fi.Mode().String(), Mtime: secs(fi.ModTime())}
		if e.Kind == observerapi.KindSymlink {
			e.Target = observerapi.KindOutside
			if target, err := root.Stat(p); err == nil {
				e.Target, e.Size = kindOf(target.Mode()), target.Size()
			}
		}
		if e.IsDir() {
			e.Size = 0 // the file system's, not the contents'
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].IsDir() != out[j].IsDir() {
			return out[i].IsDir()
		}
		return out[i].Name < out[j].Name
	})
	return out, truncated, nil
}
