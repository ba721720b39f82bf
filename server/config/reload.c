/* Config file watching and reloading. */
#include "config/reload.h"

#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/status.h"

static void look(gw_file_watch *w, bool *exists, int64_t *mtime_ns, off_t *size, ino_t *ino) {
  struct stat st;
  *exists = stat(w->path, &st) == 0;
  *mtime_ns = *exists ? (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec : 0;
  *size = *exists ? st.st_size : 0;
  *ino = *exists ? st.st_ino : 0;
}

int gw_file_watch_init(gw_file_watch *w, const char *path) {
  memset(w, 0, sizeof(*w));
  if (!(w->path = gw_strdup(path)))
    return GW_ERR_NOMEM;
  look(w, &w->exists, &w->mtime_ns, &w->size, &w->ino);
  return GW_OK;
}

void gw_file_watch_release(gw_file_watch *w) {
  gw_free(w->path);
  memset(w, 0, sizeof(*w));
}

bool gw_file_watch_changed(gw_file_watch *w) {
  bool exists;
  int64_t mtime_ns;
  off_t size;
  ino_t ino;
  look(w, &exists, &mtime_ns, &size, &ino);
  if (exists == w->exists && mtime_ns == w->mtime_ns && size == w->size && ino == w->ino)
    return false;
  w->exists = exists;
  w->mtime_ns = mtime_ns;
  w->size = size;
  w->ino = ino;
  return exists; /* a file that vanished is not a new config: wait for it */
}

int gw_config_reload(gw_config **out, gw_buf *err) {
  gw_config *c = gw_calloc(1, sizeof(*c));
  if (!c)
    return GW_ERR_NOMEM;
  int rc = gw_config_load(c, NULL, NULL, NULL, err);
  if (rc != GW_OK) {
    gw_free(c);
    return rc;
  }
  *out = c;
  return GW_OK;
}
