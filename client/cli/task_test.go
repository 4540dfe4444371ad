package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/client"
)

// localTasks makes two live tasks on this machine with sandboxes laid out
// as the agent lays them out, under a fresh slave_root.
func localTasks(t *testing.T) (*fakeScheduler, string) {
	t.Helper()
	root := t.TempDir()
	f := &fakeScheduler{restarts: map[int]int{}, failRestarts: map[int]int{}}
	for i := range 2 {
		tk := task(i, "RUNNING")
		tk.AssignedTask.SlaveHost = "localhost"
		sb := filepath.Join(root, "slaves", "S0", "frameworks", "F0", "executors", "thermos-"+tk.AssignedTask.TaskID, "runs", "latest", "sandbox")
		if err := os.MkdirAll(filepath.Join(sb, ".logs", "hello", "0"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(sb, ".logs", "hello", "0", "stdout"), []byte("starting\nhello from "+string(rune('0'+i))+"\n"), 0o600)
		f.tasks = append(f.tasks, tk)
	}
	return f, root
}

func runLocal(t *testing.T, srvURL, root string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Poll: time.Millisecond, Clusters: func() (map[string]client.Cluster, error) {
		return map[string]client.Cluster{"devcluster": {Name: "devcluster", SchedulerURI: srvURL, SlaveRoot: root, SlaveRunDirectory: "latest"}}, nil
	}}
	return Run(context.Background(), env, false, args), out.String(), errb.String()
}

func TestTaskRunAndSSHLocally(t *testing.T) {
	f, root := localTasks(t)
	srv := httptest.NewServer(f)
	defer srv.Close()
	// task run: every live instance, output as "host:  line".
	code, out, stderr := runLocal(t, srv.URL, root, "task", "run", "devcluster/www-data/prod/hello", "tail -1 .logs/hello/0/stdout; echo port {{thermos.ports[http]}} instance {{mesos.instance}}")
	want := "localhost:  hello from 0\nlocalhost:  port 31000 instance 0\nlocalhost:  hello from 1\nlocalhost:  port 31001 instance 1\n"
	if code != 0 || out != want {
		t.Fatalf("task run: %d %q %s; want %q", code, out, stderr, want)
	}
	// task ssh --command: one instance; the command's exit status is the client's.
	code, out, _ = runLocal(t, srv.URL, root, "task", "ssh", "devcluster/www-data/prod/hello/1", "--command", "tail -1 .logs/hello/0/stdout")
	if code != 0 || out != "hello from 1\n" {
		t.Fatalf("task ssh: %d %q", code, out)
	}
	if code, _, _ = runLocal(t, srv.URL, root, "task", "ssh", "devcluster/www-data/prod/hello/1", "--command", "exit 3"); code != 3 {
		t.Fatalf("task ssh exit status: %d", code)
	}
	// A name is never run as code.
	code, _, _ = runLocal(t, srv.URL, root, "task", "scp", "devcluster/www-data/prod/hello/0:$(touch pwned)", t.TempDir())
	if _, err := os.Stat(filepath.Join(root, "pwned")); err == nil || code == 0 {
		t.Fatalf("scp ran a file name as a command (exit %d)", code)
	}
}

func TestTaskSCPLocally(t *testing.T) {
	f, root := localTasks(t)
	srv := httptest.NewServer(f)
	defer srv.Close()
	dst := t.TempDir()
	code, _, stderr := runLocal(t, srv.URL, root, "task", "scp", "devcluster/www-data/prod/hello/0:.logs/hello/0/stdout", dst)
	if b, _ := os.ReadFile(filepath.Join(dst, "stdout")); code != 0 || string(b) != "starting\nhello from 0\n" {
		t.Fatalf("scp from the sandbox: %d %q %s", code, b, stderr)
	}
	src := filepath.Join(dst, "upload.txt")
	os.WriteFile(src, []byte("payload"), 0o644)
	if code, _, stderr = runLocal(t, srv.URL, root, "task", "scp", src, "devcluster/www-data/prod/hello/1:"); code != 0 {
		t.Fatalf("scp to the sandbox: %d %s", code, stderr)
	}
	sb := filepath.Join(root, "slaves", "S0", "frameworks", "F0", "executors", "thermos-"+f.tasks[1].AssignedTask.TaskID, "runs", "latest", "sandbox")
	if b, _ := os.ReadFile(filepath.Join(sb, "upload.txt")); string(b) != "payload" {
		t.Fatalf("uploaded %q", b)
	}
	for _, tc := range []struct {
		name, stderr string
		args         []string
		code         int
	}{
		{"tilde", "cannot start with ~", []string{"devcluster/www-data/prod/hello/0:~/x", dst}, client.ExitInvalidParameter},
		{"both local", "one side must be local", []string{src, dst}, client.ExitInvalidParameter},
		{"missing file", "no-such-file", []string{"devcluster/www-data/prod/hello/0:no-such-file", dst}, client.ExitCommandFailure},
		{"not running", "is not running", []string{"devcluster/www-data/prod/hello/7:x", dst}, client.ExitInvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runLocal(t, srv.URL, root, append([]string{"task", "scp"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d %q; want %d %q", code, stderr, tc.code, tc.stderr)
			}
		})
	}
}
