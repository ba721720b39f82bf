/* Config reload: notices that the config file changed (its mtime, size or
 * inode, polled; editors that write a new file and rename it are seen too)
 * and reloads the configuration from the environment and the file, the
 * same way the gateway started. The caller swaps what it built in. */
#ifndef GW_CONFIG_RELOAD_H
#define GW_CONFIG_RELOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "core/buf.h"

typedef struct gw_file_watch {
  char *path;
  bool exists;
  int64_t mtime_ns;
  off_t size;
  ino_t ino;
} gw_file_watch;

/* Starts watching |path| (copied). GW_OK or GW_ERR_NOMEM. */
int gw_file_watch_init(gw_file_watch *w, const char *path);
void gw_file_watch_release(gw_file_watch *w);

/* True when the file differs from when last seen (and remembers it now). */
bool gw_file_watch_changed(gw_file_watch *w);

/* Loads a new configuration like the one at start (process environment,
 * .env, CONFIG_FILE). Returns a gw_malloc'd config in |*out| (release it
 * with gw_config_release + gw_free), or GW_ERR_INVALID with one line in
 * |err| naming the file and key, or GW_ERR_NOMEM. */
int gw_config_reload(gw_config **out, gw_buf *err);

#endif
