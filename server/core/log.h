/* Structured logs: one line per event, JSON or text (LOG_FORMAT), written to
 * stderr with one write(2) so lines from several threads never interleave.
 * A call's lines carry its request id. Never pass a secret to these. */
#ifndef GW_CORE_LOG_H
#define GW_CORE_LOG_H

typedef enum { GW_LOG_DEBUG = 0, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR, GW_LOG_OFF } gw_log_level;
typedef enum { GW_LOG_TEXT = 0, GW_LOG_JSON } gw_log_format;

void gw_log_setup(gw_log_level level, gw_log_format format);
/* Parses "debug|info|warn|warning|error|off" / "text|json"; GW_OK or GW_ERR_INVALID. */
int gw_log_level_parse(const char *s, gw_log_level *out);
int gw_log_format_parse(const char *s, gw_log_format *out);
int gw_log_enabled(gw_log_level level);

/* Logs |fmt| at |level| for |component| ("grpc", "config", ...). |request_id|
 * may be NULL. Extra structured fields: pairs of key and already formatted
 * value strings, NULL-terminated, after the message arguments are used up, via
 * gw_log_kv. */
void gw_log(gw_log_level level, const char *component, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Like gw_log with structured fields: |kv| is a NULL-terminated array of
 * alternating keys and values. */
void gw_log_kv(gw_log_level level, const char *component, const char *request_id,
               const char *const *kv, const char *msg);

#define GW_LOGD(comp, rid, ...)                                                                    \
  do {                                                                                             \
    if (gw_log_enabled(GW_LOG_DEBUG))                                                              \
      gw_log(GW_LOG_DEBUG, comp, rid, __VA_ARGS__);                                                \
  } while (0)
#define GW_LOGI(comp, rid, ...) gw_log(GW_LOG_INFO, comp, rid, __VA_ARGS__)
#define GW_LOGW(comp, rid, ...) gw_log(GW_LOG_WARN, comp, rid, __VA_ARGS__)
#define GW_LOGE(comp, rid, ...) gw_log(GW_LOG_ERROR, comp, rid, __VA_ARGS__)

#endif
