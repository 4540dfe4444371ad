package cli

import "testing"

// TestPyFloat: floats print as Python's str() prints them, so a huge
// value is 1e+308 rather than a 309-digit number.
func TestPyFloat(t *testing.T) {
	for f, want := range map[float64]string{2: "2.0", 0.5: "0.5", 1e308: "1e+308", 1e16: "1e+16", 1e15: "1000000000000000.0", 0.00001: "1e-05", 0: "0.0"} {
		if got := pyFloat(f); got != want {
			t.Errorf("pyFloat(%v) = %q, want %q", f, got, want)
		}
	}
}
