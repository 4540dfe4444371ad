// Package storage is the scheduler's durable store: jobs, tasks, quotas,
// host maintenance modes and the framework id in one bbolt file. bbolt
// (pure Go, one file, B+tree with copy-on-write pages) commits each
// transaction with an fsync before Update returns, so the API acknowledges
// nothing that a kill -9 could lose, and a consistent copy of the whole
// store (a backup) is one read transaction away.
//
// The scheduler keeps its working set in memory and writes through: Load
// reads everything at start-up, and every change goes through Update.
package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta   = []byte("meta")
	bucketJobs   = []byte("jobs")
	bucketTasks  = []byte("tasks")
	bucketQuotas = []byte("quotas")
	// bucketMaintenance maps a hostname to its maintenance mode. It came
	// after schema 1's first buckets: Open adds it to an older store, and
	// Load reads a store (or backup) without it as having no maintenance.
	bucketMaintenance = []byte("maintenance")
	keyFramework      = []byte("framework_id")
	keySchema         = []byte("schema_version")
)

// schemaVersion is the layout of the buckets; a store from a newer
// version is refused rather than misread.
const schemaVersion = "1"

// Store is an open store.
type Store struct {
	db   *bolt.DB
	path string
}

// Open opens (creating if needed) the store at path. Another scheduler
// holding it makes Open fail after a second instead of waiting forever.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketJobs, bucketTasks, bucketQuotas, bucketMaintenance} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keySchema); {
		case v == nil:
			return meta.Put(keySchema, []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("schema version %s, this scheduler reads %s", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Snapshot is everything in the store.
type Snapshot struct {
	FrameworkID string
	Jobs        []api.JobConfiguration
	Tasks       []api.ScheduledTask
	Quotas      map[string]json.RawMessage
	// Maintenance is each host's maintenance mode (hosts in none are absent).
	Maintenance map[string]string
}

// Load reads the whole store.
func (s *Store) Load() (*Snapshot, error) {
	snap := &Snapshot{Quotas: map[string]json.RawMessage{}, Maintenance: map[string]string{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		snap.FrameworkID = string(tx.Bucket(bucketMeta).Get(keyFramework))
		if err := tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			var j api.JobConfiguration
			if err := json.Unmarshal(v, &j); err != nil {
				return fmt.Errorf("job %s: %w", k, err)
			}
			snap.Jobs = append(snap.Jobs, j)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTasks).ForEach(func(k, v []byte) error {
			var t api.ScheduledTask
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("task %s: %w", k, err)
			}
			snap.Tasks = append(snap.Tasks, t)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketQuotas).ForEach(func(k, v []byte) error {
			snap.Quotas[string(k)] = append(json.RawMessage(nil), v...)
			return nil
		}); err != nil {
			return err
		}
		b := tx.Bucket(bucketMaintenance)
		if b == nil {
			return nil // a store or backup from before maintenance was stored
		}
		return b.ForEach(func(k, v []byte) error {
			snap.Maintenance[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("storage: load: %w", err)
	}
	return snap, nil
}

// Writer changes the store within one Update.
type Writer struct{ tx *bolt.Tx }

// Update applies f's changes atomically and durably (fsynced when it
// returns nil). An error from f discards them all.
func (s *Store) Update(f func(w *Writer) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return f(&Writer{tx}) })
}

func put(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// SetFrameworkID records the Mesos framework id.
func (w *Writer) SetFrameworkID(id string) error {
	return w.tx.Bucket(bucketMeta).Put(keyFramework, []byte(id))
}

// SaveJob stores a job configuration, replacing any with the same key.
func (w *Writer) SaveJob(j api.JobConfiguration) error {
	return put(w.tx.Bucket(bucketJobs), j.Key.String(), j)
}

// DeleteJob removes a job configuration.
func (w *Writer) DeleteJob(k api.JobKey) error {
	return w.tx.Bucket(bucketJobs).Delete([]byte(k.String()))
}

// SaveTask stores a task, replacing any with the same id.
func (w *Writer) SaveTask(t api.ScheduledTask) error {
	if t.AssignedTask.TaskID == "" {
		return errors.New("storage: task without an id")
	}
	return put(w.tx.Bucket(bucketTasks), t.AssignedTask.TaskID, t)
}

// DeleteTask removes a task.
func (w *Writer) DeleteTask(id string) error {
	return w.tx.Bucket(bucketTasks).Delete([]byte(id))
}

// SetQuota stores a role's quota (any JSON value); nil removes it.
func (w *Writer) SetQuota(role string, quota json.RawMessage) error {
	if quota == nil {
		return w.tx.Bucket(bucketQuotas).Delete([]byte(role))
	}
	return w.tx.Bucket(bucketQuotas).Put([]byte(role), quota)
}

// SetMaintenance stores a host's maintenance mode; "" or "NONE" removes
// the host (no maintenance).
func (w *Writer) SetMaintenance(host, mode string) error {
	if host == "" {
		return errors.New("storage: maintenance for an empty hostname")
	}
	b, err := w.tx.CreateBucketIfNotExists(bucketMaintenance)
	if err != nil {
		return err
	}
	if mode == "" || mode == "NONE" {
		return b.Delete([]byte(host))
	}
	return b.Put([]byte(host), []byte(mode))
}

// backupPrefix starts every backup's file name.
const backupPrefix = "scheduler-backup-"

// Backup writes a consistent copy of the store into dir and returns its
// name (scheduler-backup-<UTC time>).
func (s *Store) Backup(dir string, now time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("storage: backup: %w", err)
	}
	name := backupPrefix + now.UTC().Format("2006-01-02-15-04-05.000")
	tmp := filepath.Join(dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("storage: backup: %w", err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("storage: backup: %w", err)
	}
	return name, nil
}

// ListBackups names the backups in dir, oldest first.
func ListBackups(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: list backups: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), backupPrefix) && !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Restore replaces the store at path with a backup. The scheduler must
// not have the store open. The backup is checked first: it must be a
// readable store of this schema.
func Restore(backup, path string) error {
	if _, err := os.Stat(backup); err != nil {
		return fmt.Errorf("storage: restore: %w", err)
	}
	db, err := bolt.Open(backup, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("storage: restore: backup unreadable: %w", err)
	}
	b := &Store{db: db, path: backup}
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || string(meta.Get(keySchema)) != schemaVersion {
			return errors.New("not a scheduler store of schema " + schemaVersion)
		}
		return nil
	})
	if err == nil {
		_, err = b.Load()
	}
	db.Close()
	if err != nil {
		return fmt.Errorf("storage: restore: backup unreadable: %w", err)
	}
	data, err := os.ReadFile(backup)
	if err != nil {
		return fmt.Errorf("storage: restore: %w", err)
	}
	tmp := path + ".restore"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("storage: restore: %w", err)
	}
	return os.Rename(tmp, path)
}
