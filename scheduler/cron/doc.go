// Package cron is the Aurora scheduler's cron arithmetic (reference §8.4):
// it parses cron_schedule strings with Aurora's rules, computes the next
// firing of a schedule in the scheduler's cron timezone, tells the cron loop
// which jobs are due, and decides what a firing does when tasks of the
// previous run are still active (the collision policy).
//
// Like packages state and update it does no I/O and reads no clock of its
// own: the Trigger takes the clock it is given, and everything else takes
// the time as an argument.
//
// # Syntax
//
// A schedule is exactly five fields separated by blanks (space, tab, CR, LF,
// VT, FF), with no blank before the first or after the last:
//
//	minute  hour  day-of-month  month  day-of-week
//	0-59    0-23  1-31          1-12   0-6 (0 is Sunday)
//
// Each field is a comma-separated list (empty items are ignored, as in
// Aurora, but a field needs at least one) of
//
//	N       a value                          30
//	*       every value of the field         *
//	A-B     A to B inclusive, A <= B         1-5, MON-FRI
//	*/S     every S-th value from the lowest */15 (0,15,30,45)
//	A-B/S   every S-th value from A to B      0-30/10 (0,10,20,30)
//
// Months may be written JAN-DEC and days of the week SUN-SAT, in any case,
// wherever a value is allowed (not as a step). Aurora's rules, all enforced
// by Parse:
//
//   - day-of-week is 0-6: 7 is not Sunday (unlike FreeBSD's crontab);
//   - a step S must be at least 1, and in A-B/S it must be smaller than B
//     (so 0-59/60, 1-5/5 and 0-0/1 are rejected, while */60 is accepted);
//   - a bare value with a step (5/15) is not accepted: write */15 or 5-59/15;
//   - ranges do not wrap around (MON-SUN, 22-2 and MAR-JAN are rejected);
//   - day-of-month and day-of-week may not both be restricted: at least one
//     of them must cover its whole range (*, 1-31, SUN-SAT, 0,1,2,3,4,5,6 all
//     count), so a day matches when both fields match it;
//   - no @-shortcuts (@daily, @hourly, @reboot ...), no seconds or year
//     field, no L, W, # or ? (Quartz's extensions).
//
// One deliberate difference: Aurora replaces month and day names by
// substring, so it accepts oddities such as "SUN5" (meaning 5) or "*/MON"
// (meaning */1); Parse accepts a name only as a whole value.
//
// A schedule that can never fire (0 0 31 2 *, February 31st) is accepted, as
// Aurora accepts it; its Next is the zero time.
//
// # Time zone and daylight saving time
//
// Schedules are read in the scheduler's cron timezone (-cron_timezone,
// GMT by default; see LoadLocation). A schedule fires at each wall-clock
// minute of that zone that matches it, in wall-clock order, which is what
// Quartz (Aurora's cron engine) does:
//
//   - Spring forward: a wall-clock time that does not exist that day is
//     skipped. In America/New_York on 2024-03-10 the clocks go from 01:59 EST
//     to 03:00 EDT, so "30 2 * * *" does not fire that day; it fires at 02:30
//     EST on the 9th and 02:30 EDT on the 11th. (In Europe/London the gap is
//     01:00-01:59, so 02:30 fires as usual there.)
//   - Fall back: a wall-clock time that happens twice fires once, at its
//     first occurrence. In America/New_York on 2024-11-03 01:00-01:59 happens
//     in EDT and again in EST: "30 1 * * *" fires at 01:30 EDT only, and
//     "*/15 * * * *" fires at 01:00, 01:15, 01:30 and 01:45 EDT, then 02:00
//     EST (not again during the repeated hour). "30 2 * * *" is unaffected
//     and fires once, at 02:30 EST.
//
// In GMT (the default) neither case arises.
//
// # Firing
//
// A Trigger holds the schedules of the cron jobs and reports which are due
// at the time its clock gives. It never drifts (each firing is computed from
// the schedule, not from when the loop woke up), fires a job at most once per
// Due call even if it slept over several of its slots (Quartz's misfire
// policy for cron triggers: fire once, now), and does not catch up slots
// missed while the scheduler was down (Aurora: no catch-up across failover).
// The caller persists Firing.At and hands it back to Schedule after a
// restart, so a slot already fired is not fired again, even if the new
// leader's clock is a little behind the old one's.
//
// Decide turns a firing and the number of the job's active tasks into an
// Action, following the job's collision policy.
package cron
