/* Structured log lines to stderr. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/status.h"

static gw_log_level min_level = GW_LOG_INFO;
static gw_log_format out_format = GW_LOG_TEXT;

static const char *level_name(gw_log_level l) {
  static const char *const n[] = {"debug", "info", "warn", "error", "off"};
  return n[l];
}

void gw_log_setup(gw_log_level level, gw_log_format format) {
  min_level = level;
  out_format = format;
}

int gw_log_enabled(gw_log_level level) { return level >= min_level && level < GW_LOG_OFF; }

int gw_log_level_parse(const char *s, gw_log_level *out) {
  static const struct {
    const char *name;
    gw_log_level level;
  } t[] = {{"debug", GW_LOG_DEBUG},  {"info", GW_LOG_INFO},   {"warn", GW_LOG_WARN},
           {"warning", GW_LOG_WARN}, {"error", GW_LOG_ERROR}, {"off", GW_LOG_OFF}};
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    if (strcasecmp(s, t[i].name) == 0) {
      *out = t[i].level;
      return GW_OK;
    }
  return GW_ERR_INVALID;
}

int gw_log_format_parse(const char *s, gw_log_format *out) {
  if (strcasecmp(s, "text") == 0)
    *out = GW_LOG_TEXT;
  else if (strcasecmp(s, "json") == 0)
    *out = GW_LOG_JSON;
  else
    return GW_ERR_INVALID;
  return GW_OK;
}

static void emit(gw_log_level level, const char *component, const char *request_id,
                 const char *const *kv, const char *msg) {
  gw_buf b;
  gw_buf_init(&b, 64 * 1024);
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[64];
  snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
  if (out_format == GW_LOG_JSON) {
    gw_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts, level_name(level));
    gw_buf_append_json_string(&b, component, strlen(component));
    if (request_id) {
      gw_buf_appends(&b, ",\"request_id\":");
      gw_buf_append_json_string(&b, request_id, strlen(request_id));
    }
    gw_buf_appends(&b, ",\"msg\":");
    gw_buf_append_json_string(&b, msg, strlen(msg));
    for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
      gw_buf_appendc(&b, ',');
      gw_buf_append_json_string(&b, kv[i], strlen(kv[i]));
      gw_buf_appendc(&b, ':');
      gw_buf_append_json_string(&b, kv[i + 1], strlen(kv[i + 1]));
    }
    gw_buf_appends(&b, "}\n");
  } else {
    gw_buf_printf(&b, "%s %-5s [%s]", ts, level_name(level), component);
    if (request_id)
      gw_buf_printf(&b, " request_id=%s", request_id);
    gw_buf_printf(&b, " %s", msg);
    for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2)
      gw_buf_printf(&b, " %s=%s", kv[i], kv[i + 1]);
    gw_buf_appendc(&b, '\n');
  }
  if (b.data) {
    ssize_t w = write(STDERR_FILENO, b.data, b.len);
    (void)w;
  }
  gw_buf_release(&b);
}

void gw_log_kv(gw_log_level level, const char *component, const char *request_id,
               const char *const *kv, const char *msg) {
  if (!gw_log_enabled(level))
    return;
  emit(level, component, request_id, kv, msg);
}

void gw_log(gw_log_level level, const char *component, const char *request_id, const char *fmt,
            ...) {
  if (!gw_log_enabled(level))
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  emit(level, component, request_id, NULL, msg);
}
