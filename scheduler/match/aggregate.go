package match

// AttributeAggregate counts a job's active tasks per host attribute name and
// value, for limit constraints (Aurora's AttributeAggregate). A task on a host
// with attributes host=h1 and rack=r1 counts once for (host, h1) and once for
// (rack, r1). The zero value and nil are empty aggregates; Add needs a
// non-nil one.
type AttributeAggregate struct {
	counts map[attributeValue]int
}

type attributeValue struct {
	name, value string
}

// NewAttributeAggregate counts the given active tasks of one job.
func NewAttributeAggregate(placed []Placed) *AttributeAggregate {
	a := &AttributeAggregate{}
	for _, p := range placed {
		a.add(hostAttributes(p.Hostname, p.Attributes))
	}
	return a
}

// Add counts one more task of the job on a host with the given attributes (the
// implied "host" attribute included).
func (a *AttributeAggregate) Add(hostname string, attributes map[string][]string) {
	a.add(hostAttributes(hostname, attributes))
}

// add counts a task on a host whose attributes are already normalized.
func (a *AttributeAggregate) add(attributes map[string][]string) {
	if a.counts == nil {
		a.counts = make(map[attributeValue]int)
	}
	for name, values := range attributes {
		for _, v := range values {
			a.counts[attributeValue{name, v}]++
		}
	}
}

// Count returns the number of the job's tasks on hosts whose attribute name
// has the value.
func (a *AttributeAggregate) Count(name, value string) int {
	if a == nil {
		return 0
	}
	return a.counts[attributeValue{name, value}]
}
