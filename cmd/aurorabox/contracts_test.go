package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// contractOwners are the packages that own a wire contract (by directory
// from the module root): the only places its types may be declared.
var contractOwners = []string{
	"thermos/schema",             // the job schema in executorConfig.data
	"scheduler/api",              // the scheduler API, AssignedTask included
	"serverset",                  // the ServerSet member format
	"observer/observerapi",       // the observer's JSON API
	"appliance/mesos/agentproto", // the agent ↔ master protocol
}

// notContracts are structs outside the owners that the rule below would
// take for copies, and why they are not: "dir.Name" → reason.
var notContracts = map[string]string{
	"appliance/mesos/agent.pendingUpdate": "the agent's checkpoint of a status update its framework has not acknowledged: its own file format, not the agent protocol's ExecutorExited",
	"scheduler/update.Update":             "the update engine's job update, which only shares its name with the agent protocol's Update",
	"executor/planner.Process":            "the planner's resolved process (defaults applied, durations), which the runner's checkpoint header carries as its own JSON; executor.plannerTask converts the schema's",
	"executor/planner.Task":               "the planner's resolved task, as planner.Process",
}

// structDecl is a struct type found in a file: named, or anonymous (a
// variable's or a field's type).
type structDecl struct {
	pos  string
	dir  string   // from the module root
	name string   // "" for an anonymous struct
	keys []string // JSON keys, sorted
}

// jsonKeys are the JSON object keys a struct's json tags name; fields
// without a tag name, "-" fields and embedded fields are left out (a
// struct without tags is no wire type).
func jsonKeys(st *ast.StructType) []string {
	var keys []string
	for _, f := range st.Fields.List {
		tag := ""
		if f.Tag != nil {
			if s, err := strconv.Unquote(f.Tag.Value); err == nil {
				tag, _, _ = strings.Cut(reflect.StructTag(s).Get("json"), ",")
			}
		}
		if tag == "" || tag == "-" || len(f.Names) == 0 {
			continue
		}
		for range f.Names {
			keys = append(keys, tag)
		}
	}
	slices.Sort(keys)
	return keys
}

// structsIn lists the struct types of one file.
func structsIn(fset *token.FileSet, f *ast.File, dir string) []structDecl {
	var out []structDecl
	named := map[*ast.StructType]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok {
			if st, ok := ts.Type.(*ast.StructType); ok {
				named[st] = ts.Name.Name
			}
		}
		if st, ok := n.(*ast.StructType); ok {
			out = append(out, structDecl{pos: fset.Position(st.Pos()).String(), dir: dir, name: named[st], keys: jsonKeys(st)})
		}
		return true
	})
	return out
}

// duplicates reports the structs of others that re-declare a contract
// struct: the same name with a key in common, or (named or not) two or
// more keys that are all keys of one contract struct, at least one of them
// not a plain word (a compound key such as serviceEndpoint, max_failures
// or executorConfig names the contract; host, port, key and value do not).
func duplicates(contract, others []structDecl) []string {
	var out []string
	for _, o := range others {
		if _, ok := notContracts[o.dir+"."+o.name]; ok && o.name != "" {
			continue
		}
		for _, c := range contract {
			if len(c.keys) == 0 {
				continue
			}
			common := 0
			compound := false
			for _, k := range o.keys {
				if slices.Contains(c.keys, k) {
					common++
					compound = compound || strings.ContainsAny(k, "_ABCDEFGHIJKLMNOPQRSTUVWXYZ")
				}
			}
			sameName := o.name != "" && o.name == c.name && common > 0
			subset := len(o.keys) >= 1 && common == len(o.keys) && compound
			if sameName || subset {
				out = append(out, o.pos+": "+describe(o)+" re-declares "+describe(c)+" ("+c.pos+")")
				break
			}
		}
	}
	return out
}

func describe(d structDecl) string {
	n := d.name
	if n == "" {
		n = "struct"
	}
	return n + "{" + strings.Join(d.keys, ", ") + "}"
}

// moduleStructs parses every non-test Go file of the module and returns
// the structs of the contract owners and those of everything else.
func moduleStructs(t *testing.T) (contract, others []structDecl) {
	t.Helper()
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		dir := filepath.ToSlash(rel)
		if slices.Contains(contractOwners, dir) {
			contract = append(contract, structsIn(fset, f, dir)...)
		} else {
			others = append(others, structsIn(fset, f, dir)...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(contract) < 20 || len(others) < 20 {
		t.Fatalf("found %d contract and %d other structs; is the walk broken?", len(contract), len(others))
	}
	return contract, others
}

// TestNoWireContractDeclaredTwice fails if a struct outside a contract's
// owning package re-declares one of the contract's types (see duplicates).
func TestNoWireContractDeclaredTwice(t *testing.T) {
	contract, others := moduleStructs(t)
	for _, d := range duplicates(contract, others) {
		t.Error(d)
	}
}

// oldCopies are the copies of the contracts that the module held before
// each got one owner (abridged), each marked "// copy", and structs that
// only look alike, marked "// fine".
const oldCopies = `package old

type AssignedTask struct { // copy: executor/assigned's
	TaskID        string         ` + "`json:\"taskId\"`" + `
	AssignedPorts map[string]int ` + "`json:\"assignedPorts\"`" + `
}

type TaskConfig struct { // copy: executor/assigned's
	IsService bool    ` + "`json:\"isService\"`" + `
	NumCPUs   float64 ` + "`json:\"numCpus\"`" + `
}

type Job struct { // copy: executor/assigned's and client/config's
	Name string ` + "`json:\"name\"`" + `
	Role string ` + "`json:\"role\"`" + `
}

type Announcer struct { // copy: executor/assigned's
	PrimaryPort *string ` + "`json:\"primary_port\"`" + `
}

type Member struct { // copy: executor/announcer's
	ServiceEndpoint endpoint ` + "`json:\"serviceEndpoint\"`" + `
	Status          string   ` + "`json:\"status\"`" + `
}

func leader() {
	var m struct { // copy: client's
		ServiceEndpoint     endpoint            ` + "`json:\"serviceEndpoint\"`" + `
		AdditionalEndpoints map[string]endpoint ` + "`json:\"additionalEndpoints\"`" + `
	}
	var e struct { // copy: scheduler/election's
		ServiceEndpoint struct { // fine: host and port name no contract
			Host string ` + "`json:\"host\"`" + `
			Port int    ` + "`json:\"port\"`" + `
		} ` + "`json:\"serviceEndpoint\"`" + `
	}
	_, _ = m, e
}

type obsTask struct { // copy: tui's
	TaskID              string   ` + "`json:\"task_id\"`" + `
	ResourceConsumption obsUsage ` + "`json:\"resource_consumption\"`" + `
}

type obsRun struct { // copy: tui's
	ProcessRun int      ` + "`json:\"process_run\"`" + `
	StartTime  *float64 ` + "`json:\"start_time\"`" + `
}

type Chunk struct { // copy: tui's
	Offset int64  ` + "`json:\"offset\"`" + `
	Data   string ` + "`json:\"data\"`" + `
}

type FileEntry struct { // fine: plain keys of another listing
	Name string ` + "`json:\"name\"`" + `
	Size int64  ` + "`json:\"size\"`" + `
}

type Listener struct { // fine: no JSON
	Port int
}

type Process struct { // fine: a process of another kind
	PID int ` + "`json:\"pid\"`" + `
}

type Slave struct { // fine: plain keys only
	Hostname string ` + "`json:\"hostname\"`" + `
	Port     int    ` + "`json:\"port\"`" + `
}
`

// TestDuplicatesFindsTheOldCopies checks the rule against the copies the
// module had: each is found, and the look-alikes are not.
func TestDuplicatesFindsTheOldCopies(t *testing.T) {
	contract, _ := moduleStructs(t)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "old.go", oldCopies, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	found := map[int]bool{}
	for _, d := range duplicates(contract, structsIn(fset, f, "old")) {
		line, err := strconv.Atoi(strings.Split(d, ":")[1])
		if err != nil {
			t.Fatalf("%s: no line", d)
		}
		found[line] = true
	}
	want := 0
	for i, l := range strings.Split(oldCopies, "\n") {
		line := i + 1
		switch {
		case strings.Contains(l, "// copy"):
			want++
			if !found[line] {
				t.Errorf("old.go:%d: not found: %s", line, strings.TrimSpace(l))
			}
		case strings.Contains(l, "// fine") && found[line]:
			t.Errorf("old.go:%d: taken for a copy: %s", line, strings.TrimSpace(l))
		}
	}
	if want < 7 {
		t.Fatalf("only %d copies marked", want)
	}
}
