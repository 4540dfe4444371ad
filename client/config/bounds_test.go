package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/limits"
)

// TestValueGrowthFailsAtItsLine: a config that doubles a string or a list
// stops with an error naming the file, the line and the limit, as soon as a
// value passes it. (The loops stop at 128 MiB and 4M elements, so that on
// code without the bound they end, without an error, instead of taking
// the machine's memory.)
func TestValueGrowthFailsAtItsLine(t *testing.T) {
	strLimit, listLimit := fmt.Sprintf("at most %d bytes", maxValueBytes), fmt.Sprintf("at most %d", maxValueElems)
	for _, tc := range []struct {
		name, init, grow, want string
	}{
		{"string +", `s = "0123456789abcdef"`, "s = s + s", strLimit},
		{"string +=", `s = "0123456789abcdef"`, "s += s", strLimit},
		{"string *", `s = "0123456789abcdef"`, "s = s * 2", strLimit},
		{"string *=", `s = "0123456789abcdef"`, "s *= 2", strLimit},
		{"string 2 *", `s = "0123456789abcdef"`, "s = 2 * s", strLimit},
		{"string %", `s = "0123456789abcdef"`, `s = "%s%s" % (s, s)`, strLimit},
		{"string in a function", `s = "0123456789abcdef"`, "s = (lambda x: x + x)(s)", strLimit},
		{"list +", "s = [1]", "s = s + s", listLimit},
		{"list +=", "s = [1]", "s += s", listLimit},
		{"list *", "s = [1]", "s = s * 2", listLimit},
		{"list in a comprehension", "s = [1]", "s = [s + s for _ in [1]][0]", listLimit},
		{"tuple +", "s = (1,)", "s = s + s", listLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf("%s\nfor i in range(23):\n  %s\n", tc.init, tc.grow)
			_, err := loadSrc(t, "grow.aurora", src, Options{})
			if err == nil || !strings.Contains(err.Error(), "grow.aurora:3:") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want grow.aurora:3: ... %s", err, tc.want)
			}
		})
	}
	// A repetition is refused before it is made. (At most 256 MiB without
	// the bound.)
	for _, src := range []string{`s = "x" * (1 << 25)`, "s = [0] * (1 << 24)", "s = list(range(1 << 24))"} {
		if _, err := loadSrc(t, "gulp.aurora", src+"\n", Options{}); err == nil || !strings.Contains(err.Error(), "gulp.aurora:1:") {
			t.Errorf("%s: err = %v; want an error at gulp.aurora:1", src, err)
		}
	}
	// list += still extends the list in place, and values under the limit
	// are fine.
	f, err := loadSrc(t, "ok.aurora", `a = [1]
b = a
b += [2]
s = "x" * 1000
s += "y"
n = 3
n += 4
n *= 2
t = "%d-%s" % (n, s[-1])
if a != [1, 2] or len(s) != 1001 or n != 14 or t != "14-y":
  fail("wrong: %s %d %d %s" % (a, len(s), n, t))
`+okJob, Options{})
	if err != nil || len(f.Jobs) != 1 {
		t.Fatalf("bounded operators changed the language: %v", err)
	}
}

// TestMemoryWatchStopsOtherGrowth: growth that no operator check sees
// (list.extend) is stopped by the heap watch, at the line it reached.
func TestMemoryWatchStopsOtherGrowth(t *testing.T) {
	old := evalMemoryLimit
	evalMemoryLimit = 16 << 20
	defer func() { evalMemoryLimit = old }()
	// 1000 elements doubled 14 times is 16M elements (256 MiB): the loop
	// ends there even if the watch fails.
	_, err := loadSrc(t, "extend.aurora", "l = [0] * 1000\nfor i in range(14):\n  l.extend(l)\n  l.extend([])\n", Options{})
	if err == nil || !strings.Contains(err.Error(), "extend.aurora:") || !strings.Contains(err.Error(), "more than 16 MiB of memory") {
		t.Fatalf("err = %v; want extend.aurora:N: ... more than 16 MiB of memory", err)
	}
}

// TestOversizeJobRefusedBeforeSending: a job whose task config is larger
// than the scheduler would take (the same limits constants) is refused
// when it is turned into the API's JobConfiguration.
func TestOversizeJobRefusedBeforeSending(t *testing.T) {
	src := fmt.Sprintf(`blob = "x" * %d
jobs = [Job(cluster = 'c', role = 'r', environment = 'e', name = 'big',
  task = SimpleTask('big', 'echo ' + blob))]
`, limits.TaskLaunchBytes)
	f, err := loadSrc(t, "big.aurora", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j, err := f.Select("c", "r", "e", "big")
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.JobConfiguration()
	if err == nil || !strings.Contains(err.Error(), "r/e/big") || !strings.Contains(err.Error(), fmt.Sprint(limits.TaskLaunchBytes)) {
		t.Fatalf("err = %v; want the job refused, naming the %d-byte limit", err, limits.TaskLaunchBytes)
	}
}

// TestConfigFileSizeBounded: a config file over limits.ConfigFileBytes is
// refused before it is read whole.
func TestConfigFileSizeBounded(t *testing.T) {
	_, err := loadSrc(t, "huge.aurora", "#"+strings.Repeat("x", limits.ConfigFileBytes)+"\n", Options{})
	if err == nil || !strings.Contains(err.Error(), "huge.aurora") || !strings.Contains(err.Error(), fmt.Sprint(limits.ConfigFileBytes)) {
		t.Fatalf("err = %v; want huge.aurora refused, naming the %d-byte limit", err, limits.ConfigFileBytes)
	}
}
