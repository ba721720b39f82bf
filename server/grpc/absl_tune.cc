// gRPC core's locks are abseil's Mutex. Abseil checks every Lock and Unlock
// for lock-order cycles (a graph update per call) unless it was built with
// NDEBUG, and Debian 12 builds it without: 14.8K of the 108.7K instructions
// of a gRPC chat call went there (callgrind). Release builds of the gateway
// turn the check off, as a release build of abseil ships; Debug and
// sanitizer builds keep it.
#include <absl/synchronization/mutex.h>

#include "grpc/absl_tune.h"

extern "C" void gw_absl_tune(void) {
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
}
