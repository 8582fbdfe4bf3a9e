/*
 * vigil/audit.h - the remediator's append-only, hash-chained audit log and
 * its verification.
 *
 * Every request, guard decision, execution start and result is appended as
 * one row (seq, ts, kind, action_id, data) to the audit rows of a
 * vigil_store. Rows are chained with HMAC-SHA256: the mac of row N covers
 * its seq, ts, kind, action_id, data and the mac of row N-1 (each field
 * length-prefixed, so no two different rows serialise the same bytes). The
 * key never leaves the process: whoever edits, deletes or reorders a row
 * without the key cannot recompute the chain, and vigil_audit_verify()
 * reports the first broken seq. A deleted tail leaves a valid, shorter
 * chain: it is revealed by a checkpoint -- the (seq, mac) of
 * vigil_audit_head() that the remediator returns with every result and the
 * hub keeps -- through vigil_audit_verify_checkpoint().
 *
 * Durability. An appended row counts as recorded once vigil_audit_append()
 * returns VIGIL_OK, so the store MUST be opened with
 * synchronous = VIGIL_STORE_SYNC_FULL (vigil_store_options.synchronous, or
 * "&synchronous=full" in the URL): with NORMAL, a power loss may drop the
 * newest rows, which would then look like a truncated tail. The store does
 * not report its synchronous mode, so this cannot be checked here; it is the
 * caller's duty. Retention never deletes audit rows.
 *
 * Keys. At least VIGIL_AUDIT_KEY_MIN bytes, used as raw bytes.
 * vigil_audit_key_load() reads one from the environment or from a private
 * key file it creates. Keys are never logged; the copy held by a vigil_audit
 * is wiped when it is freed.
 *
 * Threads. vigil_audit_append(), _head(), _verify(), _verify_checkpoint()
 * and _list_json() may be called from several threads at once on one
 * vigil_audit: appends are serialised by a mutex it owns, so sequence
 * numbers are contiguous. Use one vigil_audit per chain (per database); a
 * second writer on the same database is tolerated (an append that finds its
 * seq taken re-reads the head and retries) but not recommended.
 *
 * Output structs (vigil_audit_report) are versioned like options: the caller sets
 * @c version (the *_INIT macro does) before the call; the library refuses a
 * version 0 or newer than its own with VIGIL_EVERSION, as it does for options
 * and requests (docs/architecture.md), and otherwise fills the struct. A
 * struct the library hands to a callback has its version set by the library.
 */
#ifndef VIGIL_AUDIT_H
#define VIGIL_AUDIT_H

#include "vigil/buf.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/store.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @name Limits @since 0.1.0 */
/**@{*/
#define VIGIL_AUDIT_KEY_MIN       16   /**< bytes in a key, at least */
#define VIGIL_AUDIT_KEY_MAX       4096 /**< bytes in a key, at most */
#define VIGIL_AUDIT_KEY_FILE_SIZE 32   /**< random bytes in a key file created by the library */
#define VIGIL_AUDIT_KIND_MAX      64   /**< bytes in a row's kind */
#define VIGIL_AUDIT_ACTION_ID_MAX 128  /**< bytes in a row's action id */
#define VIGIL_AUDIT_DATA_MAX      (256 << 10) /**< bytes in a row's data (JSON text) */
#define VIGIL_AUDIT_DATA_DEPTH    32          /**< nesting of a row's data, at most */
#define VIGIL_AUDIT_LIST_DEFAULT  100         /**< rows listed when the limit is 0 */
#define VIGIL_AUDIT_LIST_MAX      1000        /**< rows listed at most */
#define VIGIL_AUDIT_LIST_BYTES    (8 << 20)   /**< list output stops growing past this */
/**@}*/

/** Size of a hex mac buffer: 64 hex digits and a NUL. @since 0.1.0 */
#define VIGIL_AUDIT_MAC_HEX 65

/** Options of vigil_audit_open(). @since 0.1.0 */
typedef struct vigil_audit_options {
    unsigned int version; /**< VIGIL_AUDIT_OPTIONS_VERSION */
    /** The store that keeps the rows: borrowed, required, must outlive the
     * vigil_audit and be opened with synchronous FULL (see the top of this
     * header). It may be shared with other users (the action ledger). */
    vigil_store *store;
    const void *key; /**< HMAC key, copied; required */
    size_t key_len;  /**< VIGIL_AUDIT_KEY_MIN .. VIGIL_AUDIT_KEY_MAX bytes */
    /** Wall clock in ms since the epoch, the rows' ts. NULL: real time. */
    vigil_clock_cb clock;
    void *clock_payload;
    vigil_logger logger; /**< where the audit logs ("audit" component) */
} vigil_audit_options;

#define VIGIL_AUDIT_OPTIONS_VERSION 1
#define VIGIL_AUDIT_OPTIONS_INIT                                                  \
    {                                                                             \
        VIGIL_AUDIT_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, VIGIL_LOGGER_INIT \
    }

/**
 * Fills @p opts with the defaults of @p version (VIGIL_AUDIT_OPTIONS_VERSION).
 * @return VIGIL_OK, VIGIL_EINVAL for NULL, or VIGIL_EVERSION for an unknown
 *         version.
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_audit_options_init(vigil_audit_options *opts, unsigned int version);

/**
 * Opens the audit chain kept in @c opts->store and reads its head (the seq
 * and mac of the newest row), from which appends continue. Opening does not
 * verify the chain: call vigil_audit_verify() for that.
 * @param out receives the chain, the caller's; free with vigil_audit_free().
 * @param opts required (the store and the key have no default).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument, no store, no key, bad
 *         version); VIGIL_ELIMIT (key shorter than VIGIL_AUDIT_KEY_MIN or
 *         longer than VIGIL_AUDIT_KEY_MAX); VIGIL_ECORRUPT (the newest row
 *         has a malformed mac); the store's codes (VIGIL_EBUSY, VIGIL_EIO,
 *         ...); VIGIL_ENOMEM; VIGIL_ERROR (mbedTLS or mutex failure).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_audit_open(vigil_audit **out, const vigil_audit_options *opts);

/**
 * Frees a chain and wipes its copy of the key. The store is not closed.
 * No other call on @p audit may be running. NULL is a no-op.
 * @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_audit_free(vigil_audit *audit);

/**
 * Appends one row: seq = head + 1, ts = the clock, and its mac chained to the
 * head's. The row is committed (durably, given synchronous FULL) when this
 * returns VIGIL_OK, and it becomes the new head.
 * @param kind what happened: "request", "guard", "execute", "result",
 *        "approval", "auth", ...: 1 to VIGIL_AUDIT_KIND_MAX bytes of
 *        [a-z0-9_.-], starting with a letter.
 * @param action_id the action request concerned, NULL for none; else 1 to
 *        VIGIL_AUDIT_ACTION_ID_MAX bytes of valid UTF-8.
 * @param data_json the row's content: the text of a JSON object (strictly
 *        valid: UTF-8, no \u0000), at most VIGIL_AUDIT_DATA_MAX bytes and
 *        VIGIL_AUDIT_DATA_DEPTH levels deep,
 *        stored byte for byte; NULL means "{}". Keep captured output short
 *        enough to fit.
 * @param seq_out receives the row's seq; may be NULL.
 * @param mac_out receives the row's mac as 64 lowercase hex digits; may be NULL.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL audit or kind); VIGIL_EVALUE (bad
 *         kind characters, empty action id); VIGIL_ELIMIT (a field too long);
 *         VIGIL_EENCODING (invalid UTF-8 in action_id or data_json);
 *         VIGIL_EJSON (data_json is not JSON); VIGIL_ETYPE (data_json is not
 *         an object); the store's codes (VIGIL_EREADONLY, VIGIL_EFULL,
 *         VIGIL_EBUSY, VIGIL_EIO; VIGIL_EEXISTS when another writer keeps
 *         taking the seq); VIGIL_ENOMEM; VIGIL_ERROR (mbedTLS failed). After
 *         a failure nothing was appended by this call and the chain stays
 *         usable.
 * Thread-safe (serialised). @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_audit_append(vigil_audit *audit, const char *kind, const char *action_id,
                   const char *data_json, int64_t *seq_out, char mac_out[VIGIL_AUDIT_MAC_HEX]);

/**
 * The head of the chain as this vigil_audit knows it: the seq and mac of the
 * newest row, the checkpoint to hand to the hub.
 * @param seq receives the seq, 0 when the chain is empty; may be NULL.
 * @param mac receives the mac (64 hex digits), "" when empty; may be NULL.
 * @return VIGIL_OK, or VIGIL_EINVAL (NULL audit).
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_audit_head(vigil_audit *audit, int64_t *seq, char mac[VIGIL_AUDIT_MAC_HEX]);

/**
 * The outcome of a verification, an output struct: the caller sets
 * @c version. @since 0.1.0 (@c version since 0.2.0)
 */
typedef struct vigil_audit_report {
    unsigned int version; /**< set by the caller: VIGIL_AUDIT_REPORT_VERSION */
    int ok;               /**< non-zero: the chain (and checkpoint) verified */
    int64_t entries;      /**< rows that verified (before the break, when broken) */
    int64_t broken_at;    /**< the first broken seq; 0 when ok */
    /** Why, when broken: "mac mismatch" (edited row or wrong key),
     * "sequence gap: expected N, found M" (deleted row), "prev_mac does not
     * match row N" (reordered or spliced rows), "chain ends at N before
     * checkpoint M" (deleted tail), "checkpoint mac differs at row M"
     * (rewritten chain), "malformed row" (a NULL field). "" when ok. */
    char reason[256];
} vigil_audit_report;

/** @since 0.2.0 */
#define VIGIL_AUDIT_REPORT_VERSION 1
/** All zero but the version. @since 0.2.0 */
#define VIGIL_AUDIT_REPORT_INIT              \
    {                                        \
        VIGIL_AUDIT_REPORT_VERSION, 0, 0, 0, \
        {                                    \
            0                                \
        }                                    \
    }

/**
 * Walks the whole chain in seq order, a page of rows at a time (memory stays
 * bounded whatever its length), recomputing every mac, and reports the first
 * broken seq. The head this vigil_audit last appended or read at open serves
 * as a checkpoint too (as in vigil_audit_verify_checkpoint()), so a tail
 * deleted while the process runs is reported; after a restart only an
 * outside checkpoint reveals it. Rows appended while it runs may or may not
 * be included. The walk does not hold the append mutex.
 * @param out receives the report.
 * @return VIGIL_OK whenever the walk completed, also when the chain is
 *         broken: read out->ok; VIGIL_EINVAL (NULL argument);
 *         VIGIL_EVERSION (unknown out->version); the store's
 *         codes (VIGIL_EBUSY, VIGIL_EIO, ...); VIGIL_ENOMEM; VIGIL_ERROR.
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_audit_verify(vigil_audit *audit, vigil_audit_report *out);

/**
 * As vigil_audit_verify(), and also checks a checkpoint (@p seq, @p mac)
 * taken earlier from vigil_audit_head() (the hub's actions ledger keeps
 * them): row @p seq must exist and carry exactly @p mac. A chain that is
 * intact but ends before @p seq is reported broken at the first missing seq
 * with "chain ends at N before checkpoint M" (a deleted tail); a row @p seq
 * with another mac with "checkpoint mac differs at row M" (a tail deleted
 * and re-appended, or a chain rewritten). A break found by the walk is
 * reported first.
 * @param seq >= 1.
 * @param mac 64 hex digits (either case).
 * @return as vigil_audit_verify(); VIGIL_EINVAL also for seq < 1 or a
 *         malformed @p mac.
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_audit_verify_checkpoint(vigil_audit *audit, int64_t seq, const char *mac,
                              vigil_audit_report *out);

/**
 * Writes a report as the JSON of GET /v1/audit/verify into @p out (cleared
 * first): {"ok":true,"entries":N} or
 * {"ok":false,"entries":N,"broken_at":S,"reason":"..."}.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument); VIGIL_ENOMEM.
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_audit_report_json(const vigil_audit_report *r, vigil_buf *out);

/**
 * Writes rows with ts >= @p since_ms, oldest seq first, as the JSON of
 * GET /v1/audit into @p out (cleared first):
 * {"entries":[{"seq":1,"ts":…,"kind":"…","action_id":"…"|null,"data":{…},"mac":"…"}]}.
 * Rows are written as stored, not verified; a "data" that is not a valid
 * JSON object (an edited row) is written as a JSON string. Output stops
 * after @p limit rows or once it passes VIGIL_AUDIT_LIST_BYTES (at least
 * one row is written).
 * @param since_ms 0: from the first row.
 * @param limit 0: VIGIL_AUDIT_LIST_DEFAULT; capped at VIGIL_AUDIT_LIST_MAX.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument); the store's codes;
 *         VIGIL_ENOMEM.
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_audit_list_json(vigil_audit *audit, int64_t since_ms, size_t limit, vigil_buf *out);

/**
 * Loads an audit key into @p key_out (its previous content is wiped and
 * replaced; wipe it yourself, e.g. with explicit_bzero(), before
 * vigil_buf_dispose()). Nothing about the key is ever logged.
 * 1. When @p env_name is not NULL and that environment variable is set, its
 *    value, as bytes, is the key; it must be VIGIL_AUDIT_KEY_MIN to
 *    VIGIL_AUDIT_KEY_MAX bytes long.
 * 2. Otherwise @p key_file holds the key, byte for byte (no newline is
 *    stripped). A missing file is created atomically (written to a private
 *    temporary file, then linked into place, never replacing an existing
 *    one) with VIGIL_AUDIT_KEY_FILE_SIZE bytes from getrandom(2), mode 0600.
 *    An existing file must be a regular file owned by the effective user,
 *    not accessible by group or others, and hold VIGIL_AUDIT_KEY_MIN to
 *    VIGIL_AUDIT_KEY_MAX bytes. Its directory must exist.
 * @param env_name may be NULL (file only).
 * @param key_file may be NULL (environment only).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL key_out, or both sources NULL);
 *         VIGIL_EENV (the variable is not set and no key file is given);
 *         VIGIL_ELIMIT (a key too short or too long);
 *         VIGIL_EPERM (key file group/other-accessible or owned by another
 *         user); VIGIL_EIO (cannot read or create the file, not a regular
 *         file, getrandom failed); VIGIL_ENOMEM.
 * Thread-safe (reads the environment with getenv(3)). @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_audit_key_load(vigil_buf *key_out, const char *env_name, const char *key_file);

#ifdef __cplusplus
}
#endif

#endif
