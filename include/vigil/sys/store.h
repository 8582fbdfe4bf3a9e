/*
 * vigil/sys/store.h - the store backend interface, for authors of backends
 * (the built-in SQLite backend uses it too). Include it on purpose; programs
 * that only use a store need <vigil/store.h>.
 *
 * A backend is a vtable registered on a vigil_store_registry under a URL
 * scheme. vigil_store_open() finds it by the scheme of the URL and calls its
 * open(); every later vigil_store_* call validates its arguments (NULL
 * pointers, versions, lengths, UTF-8, required fields, the limits in
 * store.h) and then calls the matching function with the backend's handle.
 * So a backend receives only well-formed input and never needs to re-check
 * it, and the calls for one handle are serialised by the store: a backend is
 * never entered concurrently for the same handle (different handles may be
 * used from different threads at once).
 *
 * Each function returns VIGIL_OK or a negative vigil_status and records a
 * message with vigil_error_set() (when a backend returns a code
 * without recording it, the store records "<scheme>: <operation> failed").
 * Callbacks (cb) must be called as described in store.h, and a
 * non-zero return from them must be returned unchanged.
 *
 * Versioning: the vtable only grows at the end, and its first four fields
 * (version, name, payload, payload_free) are those of every plug-in kind
 * (docs/plugins.md). A type sets @c version to the VIGIL_STORE_TYPE_VERSION
 * it was compiled against; the registry refuses any other version with
 * VIGIL_EVERSION, but for version 2, which it still reads: a version-2
 * type is the struct up to write_group; its lease and tail calls fail with
 * VIGIL_EUNSUPPORTED. Version 2 (0.2.0) is the first of this layout;
 * version 3 (0.4.0) appended lease_acquire, lease_release, lease_get and
 * tail.
 */
#ifndef VIGIL_SYS_STORE_H
#define VIGIL_SYS_STORE_H

#include "vigil/store.h"
#include "vigil/sys/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of vigil_store_type this header describes (3 since 0.4.0).
 * @since 0.2.0 */
#define VIGIL_STORE_TYPE_VERSION 3

/**
 * A store type (a backend). Every member is mandatory unless marked optional;
 * a NULL optional member makes the matching store call fail with
 * VIGIL_EUNSUPPORTED. vigil_store_register() copies the struct and the name.
 * @since 0.2.0 (vigil_store_backend in 0.1)
 */
struct vigil_store_type {
    unsigned int version; /**< VIGIL_STORE_TYPE_VERSION */
    /** The URL scheme it serves, e.g. "postgresql": [a-z][a-z0-9+.-]*, at
     * most 32 bytes. */
    const char *name;
    /** Handed to open(); owned by the registry once registered. */
    void *payload;
    /** Optional. Frees @c payload when the registry is freed, or at once when
     * registration fails. */
    vigil_free_cb payload_free;

    /**
     * Opens a handle. @p url is the whole URL, @p rest what follows
     * "<scheme>:" (e.g. "///var/lib/vigil.db?mode=ro" or ":memory:").
     * @p opts is never NULL (defaults filled in). @p payload is the type's
     * @c payload. On success *out is the handle, released later by close().
     */
    int (*open)(void **out, const char *url, const char *rest, const vigil_store_options *opts,
                void *payload);
    /** Releases a handle; never fails. */
    void (*close)(void *handle);

    /* samples */
    /** @p result is never NULL, zeroed but for its version
     * (VIGIL_STORE_WRITE_RESULT_VERSION, checked by the front). */
    int (*write)(void *handle, const vigil_batch *batch, vigil_store_write_result *result);
    int (*query)(void *handle, const vigil_store_query *query, vigil_store_point_cb cb,
                 void *payload);
    int (*series_list)(void *handle, const vigil_store_query *query, vigil_store_series_cb cb,
                       void *payload);
    int (*latest)(void *handle, const vigil_store_query *query, vigil_store_point_cb cb,
                  void *payload);

    /* action ledger */
    int (*action_put)(void *handle, const vigil_store_action *action, int *created);
    int (*action_update)(void *handle, const vigil_store_action *update);
    /** Calls cb once with the action (VIGIL_ENOTFOUND when absent). */
    int (*action_get)(void *handle, const char *id, vigil_store_action_cb cb, void *payload);
    int (*action_list)(void *handle, const vigil_store_filter *filter, vigil_store_action_cb cb,
                       void *payload);

    /* decisions */
    int (*decision_append)(void *handle, const vigil_store_decision *decision, int64_t *id_out);
    int (*decision_list)(void *handle, const vigil_store_filter *filter, vigil_store_decision_cb cb,
                         void *payload);

    /* audit */
    int (*audit_append)(void *handle, const vigil_store_audit *row);
    int (*audit_list)(void *handle, const vigil_store_filter *filter, vigil_store_audit_cb cb,
                      void *payload);
    int (*audit_last)(void *handle, vigil_store_audit_cb cb, void *payload);

    /* silences */
    int (*silence_put)(void *handle, const vigil_store_silence *silence);
    int (*silence_delete)(void *handle, const char *id);
    int (*silence_list)(void *handle, int64_t active_at_ms, vigil_store_silence_cb cb,
                        void *payload);

    /* policy state */
    int (*state_put)(void *handle, const char *key, const void *value, size_t len);
    /** Calls cb once with the entry (VIGIL_ENOTFOUND when absent). */
    int (*state_get)(void *handle, const char *key, vigil_store_state_cb cb, void *payload);
    int (*state_delete)(void *handle, const char *key);
    /** @p prefix is never NULL ("" lists all). */
    int (*state_list)(void *handle, const char *prefix, vigil_store_state_cb cb, void *payload);

    /* desired state and drift */
    int (*resource_replace)(void *handle, vigil_store_resource_set set, const char *source,
                            const vigil_store_resource *records, size_t n);
    int (*resource_put)(void *handle, vigil_store_resource_set set,
                        const vigil_store_resource *record);
    int (*resource_delete)(void *handle, vigil_store_resource_set set, const char *key);
    int (*resource_list)(void *handle, vigil_store_resource_set set, const char *key,
                         vigil_store_resource_cb cb, void *payload);

    /**
     * Retention: at most opts->max_chunks transactions (0: until done) of at
     * most opts->chunk_rows deleted rows each; counts them in result->chunks
     * and sets result->done when nothing older than @p cutoff_ms is left.
     * vigil_store_retain() calls it with max_chunks 1, repeatedly, releasing
     * the store's mutex in between, so a backend may keep a cursor in its
     * handle to continue where the previous call for the same cutoff
     * stopped. A call that commits nothing must set done. @p opts is never
     * NULL and has its defaults filled in; @p result is never NULL, zeroed
     * but for its version (VIGIL_STORE_RETENTION_RESULT_VERSION: the front
     * checked the caller's and hands the backend this library's layout).
     */
    int (*retain)(void *handle, int64_t cutoff_ms, const vigil_store_retention_options *opts,
                  vigil_store_retention_result *result);

    /**
     * Optional: vigil_store_write_group(), in one transaction. The counts of
     * @p parts add up to the batch's count; @p results is never NULL (an
     * array of @p nparts, zeroed but for each version,
     * VIGIL_STORE_WRITE_RESULT_VERSION) and must be left so on failure (the
     * front sets the versions again in any case).
     */
    int (*write_group)(void *handle, const vigil_batch *merged, const vigil_store_batch_part *parts,
                       size_t nparts, vigil_store_write_result *results);

    /* version 3 (0.4.0) */

    /**
     * Optional: vigil_store_lease_acquire(), atomically against every other
     * process and host using the same database (store.h says what it
     * does). @p out is never NULL, zeroed but for its version
     * (VIGIL_STORE_LEASE_VERSION: this library's layout); fill holder,
     * epoch, expires_ms, now_ms and held. @p ttl_ms is in range.
     */
    int (*lease_acquire)(void *handle, const char *name, const char *holder, int64_t ttl_ms,
                         vigil_store_lease *out);
    /** Optional: vigil_store_lease_release(). */
    int (*lease_release)(void *handle, const char *name, const char *holder);
    /** Optional: vigil_store_lease_get() (VIGIL_ENOTFOUND when never taken);
     * @p out as for lease_acquire. */
    int (*lease_get)(void *handle, const char *name, vigil_store_lease *out);
    /**
     * Optional: vigil_store_tail(). @p cursor is never NULL ("" means now)
     * and is at most VIGIL_STORE_TAIL_CURSOR_MAX bytes of printable ASCII,
     * but may not be one this backend made (VIGIL_EINVAL). @p max_samples
     * is 1..VIGIL_STORE_TAIL_MAX; @p next_cursor is at least
     * VIGIL_STORE_TAIL_CURSOR_MAX + 1 bytes, and must be written only on
     * VIGIL_OK (the front copies it to the caller's then).
     */
    int (*tail)(void *handle, const char *cursor, size_t max_samples, vigil_store_point_cb cb,
                void *payload, char *next_cursor, size_t next_cursor_len);
};

/**
 * Registers @p type under its name (the URL scheme it serves). The struct and
 * the name are copied; the payload belongs to the registry from this call
 * on: payload_free (when set) runs when the registry is freed, or before this
 * function returns when registration fails, whatever the reason.
 * A type of version 2 (0.2.0) is read as the struct up to write_group.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL registry or type, a missing mandatory
 *         function); VIGIL_EVERSION (a version other than
 *         VIGIL_STORE_TYPE_VERSION and 2); VIGIL_ENAME (bad scheme); VIGIL_EEXISTS
 *         (the scheme is registered, or built in: "sqlite", and from 0.4.0
 *         "postgresql" and "postgres"); VIGIL_ENOMEM.
 * Not thread-safe against other calls on the same registry.
 * @since 0.2.0
 */
VIGIL_EXTERN(int)
vigil_store_register(vigil_store_registry *registry, const vigil_store_type *type);

/**
 * Returns the built-in SQLite type (static, never NULL), e.g. to register a
 * copy of it under another scheme, or to wrap it.
 * @since 0.2.0 (vigil_store_sqlite_backend() in 0.1)
 */
VIGIL_EXTERN(const vigil_store_type *) vigil_store_sqlite_type(void);

/**
 * Returns the built-in PostgreSQL type (static, never NULL), served under
 * the schemes "postgresql" and "postgres" (the name of this struct is
 * "postgresql"). Its URLs are libpq's (docs/store.md):
 * postgresql://[USER@]HOST[:PORT]/DATABASE[?OPTIONS], with vigil's options
 * pool=N (connections, 1..64, default 2), schema=NAME (tables in that
 * schema, created when missing), password_env=VAR and password_file=PATH
 * besides libpq's own (sslmode, connect_timeout, ...). A password in the
 * URL is refused (VIGIL_EINVAL). It has no stats (vigil_store_stats_get()
 * answers VIGIL_EUNSUPPORTED).
 * @since 0.4.0
 */
VIGIL_EXTERN(const vigil_store_type *) vigil_store_postgresql_type(void);

#ifdef __cplusplus
}
#endif

#endif
