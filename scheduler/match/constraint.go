package match

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DedicatedAttribute is the agent attribute that reserves an agent for the
// jobs carrying a matching constraint.
const DedicatedAttribute = "dedicated"

// Constraint is one scheduling constraint on an agent attribute: Aurora's
// Constraint with its TaskConstraint, which is either a limit or a value
// constraint. Limit > 0 makes it a limit constraint (and Negated and Values
// are ignored); otherwise it is a value constraint.
type Constraint struct {
	// Name is the attribute name.
	Name string
	// Limit is the most active tasks of the job allowed per distinct value
	// of the attribute.
	Limit int
	// Negated inverts a value constraint: the host must have none of Values.
	Negated bool
	// Values are the accepted attribute values, sorted and distinct.
	Values []string
}

// IsLimit reports whether c is a limit constraint.
func (c Constraint) IsLimit() bool { return c.Limit > 0 }

// String returns the constraint in the .aurora map syntax, "name=value".
func (c Constraint) String() string {
	return c.Name + "=" + c.value()
}

func (c Constraint) value() string {
	if c.IsLimit() {
		return "limit:" + strconv.Itoa(c.Limit)
	}
	v := strings.Join(c.Values, ",")
	if c.Negated {
		v = "!" + v
	}
	return v
}

// ParseConstraints converts the constraints map of a .aurora job (attribute
// name to constraint) as the Aurora client does (constraints_to_thrift): a
// value starting with "limit:" is a limit constraint whose count must be a
// positive integer; otherwise the value is a comma separated list of attribute
// values, negated by a leading "!". Constraints come back sorted by name.
//
// Beyond the client, it rejects what can never be satisfied or is probably a
// typo: an empty name or value, an empty item in a list ("a,,b", "!"), and
// limits below 1.
func ParseConstraints(m map[string]string) ([]Constraint, error) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]Constraint, 0, len(names))
	for _, name := range names {
		c, err := parseConstraint(name, m[name])
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseConstraint(name, value string) (Constraint, error) {
	if name == "" {
		return Constraint{}, fmt.Errorf("constraint %q: empty attribute name", value)
	}
	if value == "" {
		return Constraint{}, fmt.Errorf("constraint %q: empty value", name)
	}
	if n, ok := strings.CutPrefix(value, "limit:"); ok {
		limit, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil {
			return Constraint{}, fmt.Errorf("constraint %q: %q is not a valid limit value, must be integer", name, value)
		}
		if limit < 1 {
			return Constraint{}, fmt.Errorf("constraint %q: limit must be at least 1, got %d", name, limit)
		}
		return Constraint{Name: name, Limit: limit}, nil
	}
	c := Constraint{Name: name}
	value, c.Negated = strings.CutPrefix(value, "!")
	for v := range strings.SplitSeq(value, ",") {
		if v == "" {
			return Constraint{}, fmt.Errorf("constraint %q: empty value in %q", name, value)
		}
		c.Values = append(c.Values, v)
	}
	slices.Sort(c.Values)
	c.Values = slices.Compact(c.Values)
	return c, nil
}

// ValidateDedicated checks a job's dedicated constraint as Aurora's
// ConfigurationManager does when a job is created or updated: it must be a
// value constraint with exactly one value "ROLE/NAME" whose ROLE is the job's
// role or "*". Jobs without a dedicated constraint are valid. The messages are
// Aurora's, without the capital and the full stop.
func ValidateDedicated(role string, constraints []Constraint) error {
	for _, c := range constraints {
		if c.Name != DedicatedAttribute {
			continue
		}
		if c.IsLimit() {
			return errors.New("a dedicated constraint must be of value type")
		}
		if len(c.Values) != 1 {
			return errors.New("a dedicated constraint must have exactly one value")
		}
		dedicatedRole, _, _ := strings.Cut(c.Values[0], "/")
		if dedicatedRole != "*" && dedicatedRole != role {
			return fmt.Errorf("only %s may use hosts dedicated for that role", dedicatedRole)
		}
	}
	return nil
}
