package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.json goldens")

// directives reads the test directives at the top of a golden config:
//
//	# select: cluster/role/env/name
//	# bind: key=value       (repeatable)
//	# env: KEY=value        (repeatable)
func directives(t *testing.T, path string) (sel []string, opts Options) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	opts = Options{Bindings: map[string]string{}, User: "vagrant",
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			break
		}
		k, v, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, "#")), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "select":
			sel = strings.Split(v, "/")
		case "bind":
			a, b, _ := strings.Cut(v, "=")
			opts.Bindings[a] = b
		case "env":
			a, b, _ := strings.Cut(v, "=")
			env[a] = b
		}
	}
	if len(sel) != 4 {
		t.Fatalf("%s: no '# select: cluster/role/env/name' directive", path)
	}
	return sel, opts
}

// render is the golden form: the JobConfiguration with
// executorConfig.data decoded, the update_config (not part of it) and
// the client's warnings.
func render(t *testing.T, j *Job) []byte {
	t.Helper()
	jc, err := j.JobConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(jc)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	tc := m["taskConfig"].(map[string]any)
	ec := tc["executorConfig"].(map[string]any)
	var data any
	if err := json.Unmarshal([]byte(ec["data"].(string)), &data); err != nil {
		t.Fatalf("executorConfig.data is not JSON: %v", err)
	}
	ec["data"] = data
	out := map[string]any{"jobConfiguration": m, "updateConfig": j.UpdateConfig}
	if w := j.Warnings(); len(w) > 0 {
		out["warnings"] = w
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.aurora")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Errorf("only %d golden configs; want at least 25", len(files))
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".aurora")
		t.Run(name, func(t *testing.T) {
			sel, opts := directives(t, path)
			f, err := LoadFile(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			j, err := f.Select(sel[0], sel[1], sel[2], sel[3])
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got := render(t, j)
			golden := strings.TrimSuffix(path, ".aurora") + ".json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden; got:\n%s", golden, got)
			}
		})
	}
}
