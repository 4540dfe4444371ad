package taskports

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"strconv"
	"testing"
)

func opts(t *testing.T) Options { return Options{LockDir: t.TempDir() + "/locks"} }

// Two reservations, in one process or two, never share a port, even when
// no task has bound any yet.
func TestReservationsDoNotOverlap(t *testing.T) {
	o := opts(t)
	a, err := Reserve(1000, o)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	b, err := Reserve(150, o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	if a.Len() != 1000 || b.Len() != 150 {
		t.Fatalf("reserved %s and %s, want 1000 and 150 ports", a.Range, b.Range)
	}
	if a.Lo <= b.Hi && b.Lo <= a.Hi {
		t.Fatalf("reservations %s and %s overlap", a.Range, b.Range)
	}
	for _, r := range []Range{a.Range, b.Range} {
		eph := EphemeralRange()
		if r.Lo <= eph.Hi && eph.Lo <= r.Hi || r.Lo <= Fixed.Hi && Fixed.Lo <= r.Hi || r.Lo < 1024 {
			t.Errorf("%s overlaps the ephemeral range %s, the fixed range %s or the privileged ports", r, eph, Fixed)
		}
	}
	// Held ranges cannot be locked again; released ones can.
	if _, err := Lock(a.Range, o); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Lock of a held range: %v, want ErrExist", err)
	}
	a.Release()
	again, err := Lock(a.Range, o)
	if err != nil {
		t.Fatalf("Lock after Release: %v", err)
	}
	again.Release()
}

// A port something listens on is never part of a new reservation.
func TestReserveSkipsBoundPorts(t *testing.T) {
	first, err := Reserve(100, opts(t))
	if err != nil {
		t.Fatal(err)
	}
	first.Release()
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(first.Lo+42))
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", first.Lo+42, err)
	}
	defer ln.Close()
	r, err := Reserve(100, opts(t)) // another lock dir: only the probe can tell
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if r.Lo <= first.Lo+42 && first.Lo+42 <= r.Hi {
		t.Fatalf("reserved %s, which holds the bound port %d", r.Range, first.Lo+42)
	}
}

func TestCandidatesAndParse(t *testing.T) {
	c := candidates(10, Range{32768, 60999})
	if len(c) == 0 || c[0] != 10000 {
		t.Fatalf("candidates start %v", c[:min(3, len(c))])
	}
	for _, lo := range c {
		if hi := lo + 999; lo <= 32099 && 31000 <= hi || lo <= 60999 && 32768 <= hi || hi > 65535 {
			t.Fatalf("candidate %d-%d overlaps a reserved range", lo, hi)
		}
	}
	if r, err := ParseRange(" 20000-20999\n"); err != nil || r != (Range{20000, 20999}) || r.Resource() != "ports:[20000-20999]" {
		t.Fatalf("ParseRange: %v %v", r, err)
	}
	for _, bad := range []string{"", "1", "5-4", "0-10", "1-70000", "a-b"} {
		if _, err := ParseRange(bad); err == nil {
			t.Errorf("ParseRange(%q) accepted", bad)
		}
	}
	if _, err := Reserve(0, Options{}); err == nil {
		t.Error("Reserve(0) accepted")
	}
}

// A lock dir that others can write is refused.
func TestLockDirMustBePrivate(t *testing.T) {
	d := t.TempDir()
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Reserve(100, Options{LockDir: d + "/locks"}); err == nil {
		t.Fatal("reserved with a lock dir inside a world-writable dir")
	}
}
