package scheduler

import (
	"time"

	"github.com/aurorabox/aurorabox/scheduler/state"
)

// Timing profiles are the defaults of the settings that Aurora's
// operators tune per deployment (`aurorabox scheduler --timing-profile`,
// `aurorabox up --timing-profile`): DevProfile, the appliance's default,
// has no multi-second waits before scheduling, throttles flapping tasks 1 s
// doubling to 30 s and adds a small executor overhead; AuroraProfile has
// Aurora 0.11's production defaults. Each returns a Config with only the
// profiled settings filled in; New takes DevProfile's for those a Config
// leaves zero, and the command's flags take the selected profile's as
// their defaults, so that each value is written here only.

// DevProfile is the dev timing profile.
func DevProfile() Config {
	t := state.DevConfig()
	return Config{
		Timings:                        &t,
		PreemptionDelay:                DevPreemptionDelay,
		PreemptionSlotSearchInterval:   DevPreemptionSlotSearchInterval,
		OfferHold:                      time.Minute,
		ReconcileExplicitInterval:      5 * time.Minute,
		ReconcileImplicitInterval:      5 * time.Minute,
		ReconcileExplicitBatchSize:     defaultReconcileBatch,
		UnavailabilityThreshold:        DevUnavailabilityThreshold,
		HistoryPruneThreshold:          DefaultHistoryPruneThreshold,
		HistoryMinRetention:            DefaultHistoryMinRetention,
		HistoryMaxPerJob:               DefaultHistoryMaxPerJob,
		MaxScheduleAttemptsPerSec:      DevMaxScheduleAttemptsPerSec,
		SchedulingMaxBatchSize:         DevSchedulingMaxBatchSize,
		MaxTasksPerScheduleAttempt:     DevMaxTasksPerScheduleAttempt,
		SlaMinRequiredInstances:        DevSlaMinRequiredInstances,
		Overhead:                       DevExecutorOverhead,
		OfferHoldJitter:                0,
		OfferFilterDuration:            0,
		ReconcileInitialDelay:          0,
		ReconcileScheduleSpread:        0,
		ReconcileExplicitBatchInterval: 0,
	}
}

// AuroraProfile is the aurora timing profile: Aurora 0.11's defaults.
func AuroraProfile() Config {
	t := state.AuroraConfig()
	return Config{
		Timings:                        &t,
		PreemptionDelay:                AuroraPreemptionDelay,
		PreemptionSlotSearchInterval:   AuroraPreemptionSlotSearchInterval,
		OfferHold:                      5 * time.Minute,
		OfferHoldJitter:                time.Minute,
		OfferFilterDuration:            5 * time.Second,
		ReconcileInitialDelay:          time.Minute,
		ReconcileExplicitInterval:      time.Hour,
		ReconcileImplicitInterval:      time.Hour,
		ReconcileScheduleSpread:        30 * time.Minute,
		ReconcileExplicitBatchInterval: 5 * time.Second,
		ReconcileExplicitBatchSize:     defaultReconcileBatch,
		UnavailabilityThreshold:        AuroraUnavailabilityThreshold,
		HistoryPruneThreshold:          DefaultHistoryPruneThreshold,
		HistoryMinRetention:            DefaultHistoryMinRetention,
		HistoryMaxPerJob:               DefaultHistoryMaxPerJob,
		MaxScheduleAttemptsPerSec:      AuroraMaxScheduleAttemptsPerSec,
		SchedulingMaxBatchSize:         AuroraSchedulingMaxBatchSize,
		MaxTasksPerScheduleAttempt:     AuroraMaxTasksPerScheduleAttempt,
		SlaMinRequiredInstances:        AuroraSlaMinRequiredInstances,
		Overhead:                       AuroraExecutorOverhead,
		// Aurora 0.11 was not partition aware.
		DisablePartitionAware: true,
	}
}
