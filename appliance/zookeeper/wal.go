package zookeeper

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
	"github.com/aurorabox/aurorabox/appliance/zookeeper/ztree"
	"github.com/aurorabox/aurorabox/atomicfile"
)

// On-disk layout, in DataDir:
//
//	log.<zxid, 16 hex digits>       transaction log starting at that zxid
//	snapshot.<zxid, 16 hex digits>  the tree and sessions as of that zxid
//
// A log is a sequence of records, each a 4-byte big-endian payload length,
// a 4-byte CRC-32C of the payload, and the payload (an encoded txn). Logs
// are preallocated, so a zero length marks the end. A record that is cut
// short or fails its CRC ends the log: it was being written when the
// process died and was never acknowledged.
//
// A snapshot is the magic "AZKSNAP1", the zxid, the sessions, the tree
// (ztree.Tree.Encode), and a trailing CRC-32C of everything before it. It
// is written to a temporary file, fsynced and renamed, so it is either
// whole or absent.

const (
	logPrefix    = "log."
	snapPrefix   = "snapshot."
	snapMagic    = "AZKSNAP1"
	preallocSize = 64 << 20
	keepSnaps    = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func fileName(prefix string, zxid int64) string {
	return fmt.Sprintf("%s%016x", prefix, zxid)
}

// listFiles returns the zxids of prefix files in dir, ascending.
func listFiles(dir, prefix string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || len(name) != len(prefix)+16 {
			continue
		}
		z, err := strconv.ParseUint(name[len(prefix):], 16, 64)
		if err != nil {
			continue
		}
		out = append(out, int64(z))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// wal is the open transaction log being appended to.
type wal struct {
	dir    string
	f      *os.File
	off    int64 // end of the last record written
	alloc  int64 // preallocated size of f
	buf    []byte
	logger *slog.Logger
}

// openLog creates (or reopens, truncating at off) the log file starting at
// zxid.
func openLog(dir string, zxid, off int64, logger *slog.Logger) (*wal, error) {
	path := filepath.Join(dir, fileName(logPrefix, zxid))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open txn log: %w", err)
	}
	// Drop whatever follows the last good record (a torn write), so a
	// shorter record written over it cannot be followed by stale bytes.
	if err := f.Truncate(off); err != nil {
		f.Close()
		return nil, fmt.Errorf("truncate txn log %s: %w", path, err)
	}
	w := &wal{dir: dir, f: f, off: off, alloc: off, logger: logger}
	if err := w.preallocate(off + preallocSize); err != nil {
		f.Close()
		return nil, err
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

func (w *wal) preallocate(size int64) error {
	if size <= w.alloc {
		return nil
	}
	if err := unix.Fallocate(int(w.f.Fd()), 0, w.alloc, size-w.alloc); err != nil {
		// Some filesystems (tmpfs on old kernels) cannot; a plain append
		// log works, only fdatasync is dearer.
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("preallocate txn log: %w", err)
		}
		return nil
	}
	w.alloc = size
	return nil
}

// append encodes t into the pending buffer.
func (w *wal) append(t *txn) {
	start := len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0, 0, 0, 0, 0)
	e := jute.Encoder{B: w.buf}
	t.encode(&e)
	w.buf = e.B
	payload := w.buf[start+8:]
	binary.BigEndian.PutUint32(w.buf[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(w.buf[start+4:], crc32.Checksum(payload, castagnoli))
}

// pending reports whether there are records to sync.
func (w *wal) pending() bool { return len(w.buf) > 0 }

// sync writes the pending records and makes them durable.
func (w *wal) sync() error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.off+int64(len(w.buf)) > w.alloc {
		if err := w.preallocate(w.off + int64(len(w.buf)) + preallocSize); err != nil {
			return err
		}
	}
	if _, err := w.f.WriteAt(w.buf, w.off); err != nil {
		return fmt.Errorf("write txn log: %w", err)
	}
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		return fmt.Errorf("fsync txn log: %w", err)
	}
	w.off += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// close trims the preallocated tail, so that only the newest log has one,
// and closes the file.
func (w *wal) close() error {
	if err := w.f.Truncate(w.off); err != nil {
		w.f.Close()
		return fmt.Errorf("trim txn log: %w", err)
	}
	return w.f.Close()
}

// readLog calls fn for each valid record of the log file at path and
// returns the offset just past the last one. It streams, and stops at the
// zeroed, preallocated tail without reading it.
func readLog(path string, fn func(txn) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	var off int64
	var hdr [8]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return off, nil
		}
		n := int64(binary.BigEndian.Uint32(hdr[:]))
		sum := binary.BigEndian.Uint32(hdr[4:])
		if n == 0 || n > 64<<20 {
			return off, nil
		}
		if int64(cap(payload)) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return off, nil
		}
		if crc32.Checksum(payload, castagnoli) != sum {
			return off, nil
		}
		t, err := decodeTxn(jute.NewDecoder(payload))
		if err != nil {
			return off, fmt.Errorf("%s at offset %d: %w", path, off, err)
		}
		if err := fn(t); err != nil {
			return off, err
		}
		off += 8 + n
	}
}

// snapshotBytes encodes a snapshot of tree and sessions at zxid.
func snapshotBytes(zxid int64, tree *ztree.Tree, sessions map[int64]*session) []byte {
	e := jute.Encoder{B: []byte(snapMagic)}
	e.Int64(zxid)
	ids := make([]int64, 0, len(sessions))
	for id := range sessions {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	e.Int32(int32(len(ids)))
	for _, id := range ids {
		s := sessions[id]
		e.Int64(s.id)
		e.Int32(s.timeout)
		e.Buffer(s.passwd)
	}
	tree.Encode(&e)
	return binary.BigEndian.AppendUint32(e.B, crc32.Checksum(e.B, castagnoli))
}

// writeSnapshot stores b as the snapshot for zxid, atomically.
func writeSnapshot(dir string, zxid int64, b []byte) error {
	return atomicfile.Write(filepath.Join(dir, fileName(snapPrefix, zxid)), b, 0o600)
}

// readSnapshot loads the snapshot file at path.
func readSnapshot(path string) (int64, *ztree.Tree, map[int64]*session, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, nil, err
	}
	if len(b) < len(snapMagic)+12 || !bytes.HasPrefix(b, []byte(snapMagic)) {
		return 0, nil, nil, fmt.Errorf("%s: not a snapshot", path)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, nil, nil, fmt.Errorf("%s: checksum mismatch", path)
	}
	d := jute.NewDecoder(body[len(snapMagic):])
	zxid := d.Int64()
	n := d.Int32()
	if n < 0 || int(n) > d.Remaining() {
		return 0, nil, nil, fmt.Errorf("%s: bad session count", path)
	}
	sessions := map[int64]*session{}
	for i := int32(0); i < n; i++ {
		s := &session{id: d.Int64(), timeout: d.Int32(), passwd: d.Buffer()}
		sessions[s.id] = s
	}
	tree, err := ztree.Decode(d)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return zxid, tree, sessions, nil
}

// recovered is the state rebuilt from the data dir.
type recovered struct {
	zxid     int64
	tree     *ztree.Tree
	sessions map[int64]*session
	wal      *wal
	txns     int // replayed from logs
}

// recoverState loads the newest readable snapshot and replays the logs
// after it, then opens the log for appending.
func recoverState(dir string, logger *slog.Logger) (*recovered, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("zookeeper data dir: %w", err)
	}
	// Leftovers of a snapshot interrupted mid-write.
	tmps, _ := filepath.Glob(filepath.Join(dir, "."+snapPrefix+"*.tmp"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
	r := &recovered{tree: ztree.New(), sessions: map[int64]*session{}}
	snaps, err := listFiles(dir, snapPrefix)
	if err != nil {
		return nil, err
	}
	for i := len(snaps) - 1; i >= 0; i-- {
		zxid, tree, sessions, err := readSnapshot(filepath.Join(dir, fileName(snapPrefix, snaps[i])))
		if err != nil {
			logger.Warn("skipping unreadable snapshot", "err", err)
			continue
		}
		r.zxid, r.tree, r.sessions = zxid, tree, sessions
		break
	}
	logs, err := listFiles(dir, logPrefix)
	if err != nil {
		return nil, err
	}
	// Start with the newest log that begins at or before the snapshot.
	first := 0
	for i, z := range logs {
		if z <= r.zxid+1 {
			first = i
		}
	}
	lastLog, lastOff := int64(-1), int64(0)
	for i := first; i < len(logs); i++ {
		path := filepath.Join(dir, fileName(logPrefix, logs[i]))
		off, err := readLog(path, func(t txn) error {
			if t.Zxid <= r.zxid {
				return nil
			}
			if t.Zxid != r.zxid+1 {
				return fmt.Errorf("%s: zxid %#x follows %#x: log has a gap", path, t.Zxid, r.zxid)
			}
			if err := t.apply(r.tree, r.sessions); err != nil {
				return fmt.Errorf("%s: replaying zxid %#x: %w", path, t.Zxid, err)
			}
			r.zxid = t.Zxid
			r.txns++
			return nil
		})
		if err != nil {
			return nil, err
		}
		lastLog, lastOff = logs[i], off
		if i < len(logs)-1 {
			if st, err := os.Stat(path); err == nil && off < st.Size() && !zeroTail(path, off) {
				// A torn record can only be at the very end of the log.
				logger.Warn("txn log ends early; ignoring later logs", "file", path, "offset", off)
				for _, z := range logs[i+1:] {
					_ = os.Rename(filepath.Join(dir, fileName(logPrefix, z)), filepath.Join(dir, fileName(logPrefix, z)+".corrupt"))
				}
				break
			}
		}
	}
	if lastLog < 0 || lastOff == 0 && lastLog != r.zxid+1 {
		lastLog, lastOff = r.zxid+1, 0
	}
	w, err := openLog(dir, lastLog, lastOff, logger)
	if err != nil {
		return nil, err
	}
	r.wal = w
	return r, nil
}

func zeroTail(path string, off int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return false
	}
	for {
		n, err := f.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return false
			}
		}
		if err != nil {
			return true
		}
	}
}

// purge removes snapshots beyond the newest keepSnaps and the logs that
// only hold transactions older than the oldest snapshot kept.
func purge(dir string) error {
	snaps, err := listFiles(dir, snapPrefix)
	if err != nil || len(snaps) <= keepSnaps {
		return err
	}
	oldest := snaps[len(snaps)-keepSnaps]
	for _, z := range snaps[:len(snaps)-keepSnaps] {
		_ = os.Remove(filepath.Join(dir, fileName(snapPrefix, z)))
	}
	logs, err := listFiles(dir, logPrefix)
	if err != nil {
		return err
	}
	// Log i covers [logs[i], logs[i+1]); it is needed if that range
	// reaches past the oldest snapshot kept.
	for i := 0; i+1 < len(logs); i++ {
		if logs[i+1] <= oldest+1 {
			_ = os.Remove(filepath.Join(dir, fileName(logPrefix, logs[i])))
		}
	}
	return nil
}
