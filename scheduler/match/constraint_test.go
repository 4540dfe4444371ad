package match

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseConstraints(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]string
		want []Constraint
	}{
		{"none", nil, []Constraint{}},
		{"limit", map[string]string{"host": "limit:1"}, []Constraint{{Name: "host", Limit: 1}}},
		{"limit with spaces", map[string]string{"rack": "limit: 2 "}, []Constraint{{Name: "rack", Limit: 2}}},
		{"single value", map[string]string{"rack": "r1"}, []Constraint{{Name: "rack", Values: []string{"r1"}}}},
		{"list sorted and distinct", map[string]string{"rack": "r2,r1,r2"}, []Constraint{{Name: "rack", Values: []string{"r1", "r2"}}}},
		{"negated", map[string]string{"zone": "!z1,z2"}, []Constraint{{Name: "zone", Negated: true, Values: []string{"z1", "z2"}}}},
		{"negated limit is a value", map[string]string{"x": "!limit:1"}, []Constraint{{Name: "x", Negated: true, Values: []string{"limit:1"}}}},
		{"dedicated", map[string]string{"dedicated": "www/db"}, []Constraint{{Name: "dedicated", Values: []string{"www/db"}}}},
		{"sorted by name", map[string]string{"rack": "r1", "host": "limit:1", "dedicated": "*/x"}, []Constraint{
			{Name: "dedicated", Values: []string{"*/x"}},
			{Name: "host", Limit: 1},
			{Name: "rack", Values: []string{"r1"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConstraints(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseConstraintsInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]string
		err  string
	}{
		{"limit zero", map[string]string{"host": "limit:0"}, `constraint "host": limit must be at least 1, got 0`},
		{"limit negative", map[string]string{"host": "limit:-1"}, `limit must be at least 1, got -1`},
		{"limit not a number", map[string]string{"host": "limit:x"}, `constraint "host": "limit:x" is not a valid limit value, must be integer`},
		{"limit empty", map[string]string{"host": "limit:"}, `"limit:" is not a valid limit value`},
		{"limit float", map[string]string{"host": "limit:1.5"}, `"limit:1.5" is not a valid limit value`},
		{"empty value", map[string]string{"rack": ""}, `constraint "rack": empty value`},
		{"empty name", map[string]string{"": "r1"}, `constraint "r1": empty attribute name`},
		{"bare negation", map[string]string{"rack": "!"}, `constraint "rack": empty value in ""`},
		{"empty item", map[string]string{"rack": "r1,,r2"}, `constraint "rack": empty value in "r1,,r2"`},
		{"trailing comma", map[string]string{"rack": "r1,"}, `empty value in "r1,"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConstraints(tt.in)
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %q does not contain %q", err, tt.err)
			}
		})
	}
}

func TestConstraintString(t *testing.T) {
	in := map[string]string{"host": "limit:1", "rack": "r1,r2", "zone": "!z1"}
	cs, err := ParseConstraints(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, c.String())
	}
	if want := "host=limit:1 rack=r1,r2 zone=!z1"; strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, " "), want)
	}
}

func TestValidateDedicated(t *testing.T) {
	tests := []struct {
		name string
		role string
		cs   []Constraint
		err  string
	}{
		{"no constraint", "www", nil, ""},
		{"other constraints", "www", []Constraint{{Name: "rack", Values: []string{"r1"}}}, ""},
		{"own role", "www", []Constraint{{Name: "dedicated", Values: []string{"www/db"}}}, ""},
		{"any role", "www", []Constraint{{Name: "dedicated", Values: []string{"*/db"}}}, ""},
		{"other role", "www", []Constraint{{Name: "dedicated", Values: []string{"ads/db"}}}, "only ads may use hosts dedicated for that role"},
		{"no slash is a role", "www", []Constraint{{Name: "dedicated", Values: []string{"db"}}}, "only db may use hosts dedicated for that role"},
		{"limit", "www", []Constraint{{Name: "dedicated", Limit: 1}}, "a dedicated constraint must be of value type"},
		{"two values", "www", []Constraint{{Name: "dedicated", Values: []string{"www/a", "www/b"}}}, "a dedicated constraint must have exactly one value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateDedicated(tt.role, tt.cs)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}
