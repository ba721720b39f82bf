/* Abseil settings for gRPC core (absl_tune.cc). */
#ifndef GW_GRPC_ABSL_TUNE_H
#define GW_GRPC_ABSL_TUNE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Before grpc_init(): in a release build (NDEBUG), no lock-order cycle
 * detection on abseil's mutexes. */
void gw_absl_tune(void);

#ifdef __cplusplus
}
#endif

#endif
