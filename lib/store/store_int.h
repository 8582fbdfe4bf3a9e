/*
 * Private to lib/store/: defaults shared by the front-end and the SQLite
 * backend. Never installed; includes no SQLite header.
 */
#ifndef VIGIL_STORE_INT_H
#define VIGIL_STORE_INT_H

#include <stdint.h>

#define VIGIL__STORE_DEFAULT_BUSY_MS 5000
#define VIGIL__STORE_DEFAULT_CACHE   1000000
#define VIGIL__STORE_DEFAULT_CHUNK   10000
/* Checkpoints of the SQLite backend (vigil_store_options, version 2). */
#define VIGIL__STORE_DEFAULT_CKPT_PAGES 4096
#define VIGIL__STORE_DEFAULT_CKPT_MS    1000
#define VIGIL__STORE_DEFAULT_WAL_MAX    65536

struct vigil_store_stats;
/* The SQLite backend's figures (sqlite_log.c); the caller holds the store's
 * mutex and has checked the handle is the SQLite backend's. */
void vigil__sq_stats(void *handle, struct vigil_store_stats *out);
/* vigil__store_fold_idle() and vigil__store_tend() on the SQLite backend's
 * handle (sqlite_log.c), the store's mutex held. */
void vigil__sq_fold_idle(void *handle, int on);
int vigil__sq_tend(void *handle, int64_t *next_ms);

/* The built-in PostgreSQL type under its second scheme, "postgres" (pg.c). */
const vigil_store_type *vigil__store_postgres_alias(void);

/* Checks a postgresql:// URL as vigil_store_open() would, without connecting:
 * its form, vigil's and libpq's options, no password in it (pg.c). Returns
 * VIGIL_OK, or VIGIL_EINVAL / VIGIL_ENOMEM with the error set. */
int vigil__pg_url_check(const char *url);

#endif
