package storage

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	bolt "go.etcd.io/bbolt"
)

func task(id string, instance int) api.ScheduledTask {
	return api.ScheduledTask{Status: "PENDING", AssignedTask: api.AssignedTask{TaskID: id, InstanceID: instance,
		Task: api.TaskConfig{Job: api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}}}}
}

func TestRoundTripBackupRestore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "scheduler.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	job := api.JobConfiguration{Key: api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}, InstanceCount: 2}
	err = s.Update(func(w *Writer) error {
		if err := w.SetFrameworkID("fw-1"); err != nil {
			return err
		}
		if err := w.SaveJob(job); err != nil {
			return err
		}
		if err := w.SetQuota("www-data", json.RawMessage(`{"numCpus":4}`)); err != nil {
			return err
		}
		for i := 0; i < 2; i++ {
			if err := w.SaveTask(task("t"+strconv.Itoa(i), i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A failed update changes nothing.
	err = s.Update(func(w *Writer) error {
		w.DeleteTask("t0")
		return w.SaveTask(api.ScheduledTask{})
	})
	if err == nil {
		t.Fatal("a task without an id was stored")
	}
	name, err := s.Backup(filepath.Join(dir, "backups"), time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if name != "scheduler-backup-2026-11-25-10-00-00.000" {
		t.Errorf("backup name %s", name)
	}
	s.Update(func(w *Writer) error { return w.DeleteJob(job.Key) })
	s.Close()

	s, _ = Open(path)
	snap, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if snap.FrameworkID != "fw-1" || len(snap.Jobs) != 0 || len(snap.Tasks) != 2 || string(snap.Quotas["www-data"]) != `{"numCpus":4}` {
		t.Fatalf("after reopen: %+v", snap)
	}
	s.Close()
	list, _ := ListBackups(filepath.Join(dir, "backups"))
	if len(list) != 1 || list[0] != name {
		t.Fatalf("backups %v", list)
	}
	if err := Restore(filepath.Join(dir, "backups", name), path); err != nil {
		t.Fatal(err)
	}
	s, _ = Open(path)
	defer s.Close()
	snap, _ = s.Load()
	if len(snap.Jobs) != 1 || snap.Jobs[0].Key != job.Key {
		t.Fatalf("restored jobs %+v", snap.Jobs)
	}
	if err := Restore(filepath.Join(dir, "nope"), path); err == nil {
		t.Fatal("restored from a missing backup")
	}
}

// Maintenance modes survive a reopen; NONE removes a host; a store made
// before the maintenance bucket existed loads as having no maintenance and
// gets the bucket on its next Open.
func TestMaintenanceModes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "scheduler.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(w *Writer) error {
		for h, m := range map[string]string{"a": "DRAINING", "b": "SCHEDULED", "c": "DRAINED"} {
			if err := w.SetMaintenance(h, m); err != nil {
				return err
			}
		}
		return w.SetMaintenance("b", "NONE")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(w *Writer) error { return w.SetMaintenance("", "DRAINED") }); err == nil {
		t.Fatal("maintenance stored for an empty hostname")
	}
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Maintenance) != 2 || snap.Maintenance["a"] != "DRAINING" || snap.Maintenance["c"] != "DRAINED" {
		t.Fatalf("maintenance after reopen: %v", snap.Maintenance)
	}
	// An older store: drop the bucket, as if it had never been there.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketMaintenance) }); err != nil {
		t.Fatal(err)
	}
	if snap, err = s.Load(); err != nil || len(snap.Maintenance) != 0 {
		t.Fatalf("store without a maintenance bucket: %v, %v", snap, err)
	}
	name, err := s.Backup(filepath.Join(dir, "backups"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := Restore(filepath.Join(dir, "backups", name), path); err != nil {
		t.Fatalf("restore of a backup without maintenance: %v", err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(func(w *Writer) error { return w.SetMaintenance("a", "DRAINED") }); err != nil {
		t.Fatal(err)
	}
	if snap, err = s.Load(); err != nil || snap.Maintenance["a"] != "DRAINED" {
		t.Fatalf("maintenance after restoring an old backup: %v, %v", snap, err)
	}
}

func TestSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// bbolt's flock is per open file description, so a second process is
	// what a second scheduler would be.
	if os.Getenv("STORAGE_SECOND_OPEN") != "" {
		if _, err := Open(os.Getenv("STORAGE_SECOND_OPEN")); err == nil {
			os.Exit(3)
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "TestSecondOpenFails")
	cmd.Env = append(os.Environ(), "STORAGE_SECOND_OPEN="+path)
	if err := cmd.Run(); err != nil {
		t.Fatalf("second open of a store in use: %v", err)
	}
}

// TestKill9KeepsAcknowledgedWrites writes tasks from a child process, one
// Update each, reporting each acknowledged id on stdout; the child is
// SIGKILLed mid-stream and every acknowledged task must be there.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	if p := os.Getenv("STORAGE_WRITER"); p != "" {
		s, err := Open(p)
		if err != nil {
			os.Exit(2)
		}
		for i := 0; ; i++ {
			id := "task-" + strconv.Itoa(i)
			if err := s.Update(func(w *Writer) error { return w.SaveTask(task(id, i)) }); err != nil {
				os.Exit(2)
			}
			os.Stdout.WriteString(id + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "s.db")
	cmd := exec.Command(os.Args[0], "-test.run", "TestKill9KeepsAcknowledgedWrites")
	cmd.Env = append(os.Environ(), "STORAGE_WRITER="+path)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	buf := make([]byte, 1<<16)
	deadline := time.Now().Add(10 * time.Second)
	var pending string
	for len(acked) < 200 && time.Now().Before(deadline) {
		n, err := out.Read(buf)
		pending += string(buf[:n])
		for {
			i := indexNL(pending)
			if i < 0 {
				break
			}
			acked = append(acked, pending[:i])
			pending = pending[i+1:]
		}
		if err != nil {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(acked) < 200 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	snap, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, tk := range snap.Tasks {
		have[tk.AssignedTask.TaskID] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("acknowledged %s lost after kill -9 (%d acknowledged, %d stored)", id, len(acked), len(snap.Tasks))
		}
	}
}

func indexNL(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return i
		}
	}
	return -1
}

func updateRecord(id string, status string) UpdateRecord {
	k := api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}
	return UpdateRecord{
		Update: api.JobUpdate{Summary: api.JobUpdateSummary{Key: api.JobUpdateKey{Job: k, ID: id}, User: "alice",
			State: api.JobUpdateState{Status: status, CreatedTimestampMs: 1, LastModifiedTimestampMs: 2}}},
		State: json.RawMessage(`{"status":"` + status + `"}`),
	}
}

// Updates and their events survive a reopen, events in order (also past
// nine, where a plain number would sort wrong); deleting an update takes
// its events along.
func TestUpdates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scheduler.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(w *Writer) error {
		for _, id := range []string{"u1", "u2"} {
			if err := w.SaveUpdate(updateRecord(id, "ROLLING_FORWARD")); err != nil {
				return err
			}
			for i := 0; i < 12; i++ {
				if err := w.AddInstanceEvent(id, i, api.JobInstanceUpdateEvent{InstanceID: i, TimestampMs: int64(i), Action: "INSTANCE_UPDATING"}); err != nil {
					return err
				}
			}
			if err := w.AddUpdateEvent(id, 0, api.JobUpdateEvent{Status: "ROLLING_FORWARD", TimestampMs: 1, User: "alice"}); err != nil {
				return err
			}
		}
		if err := w.AddUpdateEvent("u1", 1, api.JobUpdateEvent{Status: "ROLLED_FORWARD", TimestampMs: 2}); err != nil {
			return err
		}
		return w.SaveUpdate(updateRecord("u1", "ROLLED_FORWARD"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(w *Writer) error { return w.SaveUpdate(updateRecord("a/b", "ERROR")) }); err == nil {
		t.Fatal("an update id with a slash was stored")
	}
	s.Close()
	s, _ = Open(path)
	defer s.Close()
	snap, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]StoredUpdate{}
	for _, u := range snap.Updates {
		byID[u.Update.Summary.Key.ID] = u
	}
	u1 := byID["u1"]
	if len(byID) != 2 || u1.Update.Summary.State.Status != "ROLLED_FORWARD" || string(u1.State) != `{"status":"ROLLED_FORWARD"}` {
		t.Fatalf("updates after reopen: %+v", snap.Updates)
	}
	if len(u1.Events) != 2 || u1.Events[1].Status != "ROLLED_FORWARD" || len(u1.InstanceEvents) != 12 {
		t.Fatalf("u1's events: %+v %+v", u1.Events, u1.InstanceEvents)
	}
	for i, e := range u1.InstanceEvents {
		if e.InstanceID != i {
			t.Fatalf("instance events out of order: %+v", u1.InstanceEvents)
		}
	}
	if err := s.Update(func(w *Writer) error { return w.DeleteUpdate("u1") }); err != nil {
		t.Fatal(err)
	}
	snap, _ = s.Load()
	if len(snap.Updates) != 1 || snap.Updates[0].Update.Summary.Key.ID != "u2" || len(snap.Updates[0].InstanceEvents) != 12 {
		t.Fatalf("after deleting u1: %+v", snap.Updates)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketInstanceEvents).Stats().KeyN; n != 12 {
			t.Errorf("%d instance events left, want u2's 12", n)
		}
		return nil
	})
}

// A schema 1 store (before updates) and a backup of one are read and
// upgraded; a store of an unknown schema is refused.
func TestSchemaUpgrade(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "scheduler.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(func(w *Writer) error { return w.SaveTask(task("t0", 0)) })
	// Make it a schema 1 store.
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketUpdates, bucketUpdateEvents, bucketInstanceEvents} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if snap, err := s.Load(); err != nil || len(snap.Tasks) != 1 || len(snap.Updates) != 0 {
		t.Fatalf("schema 1 store: %+v, %v", snap, err)
	}
	name, err := s.Backup(filepath.Join(dir, "backups"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := Restore(filepath.Join(dir, "backups", name), path); err != nil {
		t.Fatalf("restore of a schema 1 backup: %v", err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(w *Writer) error { return w.SaveUpdate(updateRecord("u1", "ROLLING_FORWARD")) }); err != nil {
		t.Fatal(err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(bucketMeta).Get(keySchema)); v != schemaVersion {
			t.Errorf("schema %s after Open, want %s", v, schemaVersion)
		}
		return nil
	})
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("99")) })
	s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("a store of schema 99 was opened")
	}
}

// TestCronFiringsAndDrainRequests stores a cron job's last firing and a
// drain request, reads them back after a reopen, and forgets them.
func TestCronFiringsAndDrainRequests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scheduler.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	req := json.RawMessage(`{"timeoutSecs":60}`)
	if err := s.Update(func(w *Writer) error {
		if err := w.SetCronFired("www-data/prod/nightly", at); err != nil {
			return err
		}
		return w.SetDrainRequest("host-a", req)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(w *Writer) error { return w.SetCronFired("", at) }); err == nil {
		t.Error("a firing of an empty key was stored")
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.CronFired["www-data/prod/nightly"]; !got.Equal(at) || len(snap.CronFired) != 1 {
		t.Fatalf("cron firings %v", snap.CronFired)
	}
	if got := string(snap.DrainRequests["host-a"]); got != string(req) || len(snap.DrainRequests) != 1 {
		t.Fatalf("drain requests %v", snap.DrainRequests)
	}
	if err := s.Update(func(w *Writer) error {
		if err := w.SetCronFired("www-data/prod/nightly", time.Time{}); err != nil {
			return err
		}
		return w.SetDrainRequest("host-a", nil)
	}); err != nil {
		t.Fatal(err)
	}
	if snap, err = s.Load(); err != nil || len(snap.CronFired)+len(snap.DrainRequests) != 0 {
		t.Fatalf("after forgetting: %v %v, %v", snap.CronFired, snap.DrainRequests, err)
	}
	s.Close()
}
