package config

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestExamples loads every job in examples/jobs as `aurora job create` (or
// cron schedule) would: each file holds one valid job, whose key is the one
// its header's command names. hello_world_updated.aurora is the same job
// as hello_world.aurora with another executor config, so that the README's
// rolling update changes something.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/jobs/*.aurora")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	cmdKey := regexp.MustCompile(`(?m)^#\s+aurora \S+ \S+ (\S+) examples/jobs/(\S+\.aurora)`)
	data := map[string][]byte{}
	for _, path := range files {
		src, _ := os.ReadFile(path)
		m := cmdKey.FindSubmatch(src)
		if m == nil || string(m[2]) != filepath.Base(path) {
			t.Fatalf("%s: the header does not show the command that runs it", path)
		}
		f, err := LoadFile(path, Options{})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(f.Jobs) != 1 || f.Jobs[0].Key() != string(m[1]) {
			t.Fatalf("%s: jobs %v, want one %s", path, f.Jobs, m[1])
		}
		if err := f.Jobs[0].Validate(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if _, err := f.Jobs[0].JobConfiguration(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if data[filepath.Base(path)], err = f.Jobs[0].ExecutorData(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	a, b := data["hello_world.aurora"], data["hello_world_updated.aurora"]
	if a == nil || b == nil || bytes.Equal(a, b) {
		t.Fatal("hello_world_updated.aurora does not change hello_world.aurora's task")
	}
}
