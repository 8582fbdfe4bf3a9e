/*
 * vigil/gitsync.h - git sources: a repository (a local path, file:// or
 * https:// URL) fetched into a directory the caller owns, one branch, tag or
 * commit checked out, and the commit id reported; and the adaptive schedule
 * that decides when to fetch again.
 *
 * Layout of the work directory (created when missing, owned by one gitsync):
 *   <workdir>/repo.git          a bare repository that fetches go into
 *   <workdir>/checkouts/<id>    one directory per checked-out commit (40 hex)
 *   <workdir>/current           a symbolic link to checkouts/<id>, the
 *                               checkout in use
 * A commit is checked out into a temporary directory under checkouts/, which
 * is renamed to its final name when complete; "current" is then replaced with
 * rename(2). A fetch or a checkout that fails, or a process that dies half
 * way, never touches the directory "current" points to: the previous good
 * checkout stays in use. Checkouts other than the newest few are pruned.
 *
 * Credentials: for https:// URLs a token is read from an environment variable
 * (through the getenv callback) at each sync and sent as HTTP Basic
 * credentials (username, token); it is never logged nor kept in an error
 * message. A URL with credentials in it (user:pass@) is refused.
 *
 * Threads: a vigil_gitsync is used by one thread at a time; two gitsync
 * objects (with different work directories) may be used from two threads.
 * The same holds for a vigil_gitsync_schedule.
 */
#ifndef VIGIL_GITSYNC_H
#define VIGIL_GITSYNC_H

#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A git source with its work directory (opaque). @since 0.3.0 */
typedef struct vigil_gitsync vigil_gitsync;

/** Longest URL, ref, path or username a gitsync accepts, in bytes. @since 0.3.0 */
#define VIGIL_GITSYNC_MAX_STRING 4096

/** Default username of the HTTP Basic credentials. @since 0.3.0 */
#define VIGIL_GITSYNC_DEFAULT_USERNAME "x-access-token"

/**
 * Options of a gitsync. Initialise with VIGIL_GITSYNC_OPTIONS_INIT or
 * vigil_gitsync_options_init(); every string is copied by vigil_gitsync_new().
 * @since 0.3.0
 */
typedef struct vigil_gitsync_options {
    unsigned int version; /**< VIGIL_GITSYNC_OPTIONS_VERSION */
    /** The repository: a local path (absolute or relative to the working
     * directory), a file:// URL or an https:// URL. Required. Other schemes
     * (ssh, git, http) are refused with VIGIL_EUNSUPPORTED. */
    const char *url;
    /** What to check out: a branch name ("main"), a tag name ("v1.2"), a full
     * reference ("refs/heads/main") or a commit id (40 hex digits, reachable
     * from a branch or tag of the repository). A name is looked up as a
     * branch first, then as a tag. NULL: the remote's default branch. */
    const char *ref;
    /** The directory this gitsync owns (see the layout above). Required. */
    const char *workdir;
    /** Environment variable holding the token for https:// URLs; NULL: no
     * credentials. An unset variable is an authentication error when the
     * server asks for credentials. */
    const char *token_env;
    /** Username sent with the token; NULL: VIGIL_GITSYNC_DEFAULT_USERNAME. */
    const char *username;
    /** A PEM file of CA certificates trusted for https:// URLs, on top of
     * the ones libgit2 trusts; NULL: none. */
    const char *ca_file;
    /** Reads environment variables; NULL: getenv(3). */
    vigil_getenv_cb getenv;
    void *getenv_payload;
    /** Where log records go; NULL: the stderr defaults. Borrowed. */
    const vigil_logger *logger;
    /** Checkouts kept on disk, the one in use included; 0: 2. */
    unsigned int keep;
} vigil_gitsync_options;

/** Current version of vigil_gitsync_options. @since 0.3.0 */
#define VIGIL_GITSYNC_OPTIONS_VERSION 1
/** All zero but the version: the defaults. @since 0.3.0 */
#define VIGIL_GITSYNC_OPTIONS_INIT                                                             \
    {                                                                                          \
        VIGIL_GITSYNC_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 \
    }

/**
 * Fills @p opts as VIGIL_GITSYNC_OPTIONS_INIT does.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or VIGIL_EVERSION.
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_gitsync_options_init(vigil_gitsync_options *opts, unsigned int version);

/**
 * Creates a gitsync: checks the options, creates the work directory when it
 * (and its parents) are missing and picks up the checkout a previous process left in use
 * (vigil_gitsync_commit()). Nothing is fetched.
 * @param out receives the gitsync (the caller's; vigil_gitsync_free()).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument, missing url or workdir,
 *   credentials in the URL, a malformed ref), VIGIL_EUNSUPPORTED (a scheme
 *   other than file:// and https://), VIGIL_ELIMIT (a string longer than
 *   VIGIL_GITSYNC_MAX_STRING), VIGIL_EVERSION, VIGIL_EIO (the work directory
 *   cannot be created), VIGIL_ENOMEM.
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_gitsync_new(vigil_gitsync **out, const vigil_gitsync_options *opts);

/** Frees a gitsync (NULL is a no-op); the work directory stays. @since 0.3.0 */
VIGIL_EXTERN(void) vigil_gitsync_free(vigil_gitsync *gs);

/**
 * What vigil_gitsync_sync() did. Initialise with VIGIL_GITSYNC_RESULT_INIT.
 * @since 0.3.0
 */
typedef struct vigil_gitsync_result {
    unsigned int version; /**< VIGIL_GITSYNC_RESULT_VERSION */
    char commit[41];      /**< the commit in use, 40 lowercase hex digits */
    int changed;          /**< 1 when it differs from the one in use before */
    /** The checkout directory of @c commit, borrowed from the gitsync until
     * its next sync or free. */
    const char *path;
} vigil_gitsync_result;

/** Current version of vigil_gitsync_result. @since 0.3.0 */
#define VIGIL_GITSYNC_RESULT_VERSION 1
/** An empty result. @since 0.3.0 */
#define VIGIL_GITSYNC_RESULT_INIT                  \
    {                                              \
        VIGIL_GITSYNC_RESULT_VERSION, {0}, 0, NULL \
    }

/**
 * Clones or fetches the repository, resolves the ref to a commit and, when
 * that commit differs from the one in use, checks it out into a directory of
 * its own and switches "current" to it. On any error the checkout in use is
 * left as it was.
 * @param result receives the commit, whether it changed and its path; may
 *   be NULL.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL @p gs); VIGIL_EVERSION (@p result);
 *   VIGIL_ENOTFOUND (the repository or the ref does not exist);
 *   VIGIL_EAUTH (the server refused the credentials, or asked for some and
 *   there are none); VIGIL_ENETWORK (connection, TLS or HTTP failure);
 *   VIGIL_ECORRUPT (a corrupt object or repository); VIGIL_EIO (the work
 *   directory); VIGIL_ENOMEM; VIGIL_ERROR (another libgit2 failure). The
 *   message of vigil_error_last() starts with "gitsync: " and holds
 *   libgit2's own message.
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_gitsync_sync(vigil_gitsync *gs, vigil_gitsync_result *result);

/**
 * The commit in use (40 hex digits), or "" when nothing was checked out yet.
 * Borrowed until the next sync or free. @since 0.3.0
 */
VIGIL_EXTERN(const char *) vigil_gitsync_commit(const vigil_gitsync *gs);

/**
 * The directory of the checkout in use, or NULL when nothing was checked out
 * yet. Borrowed until the next sync or free. @since 0.3.0
 */
VIGIL_EXTERN(const char *) vigil_gitsync_path(const vigil_gitsync *gs);

/* ---- the adaptive schedule ---------------------------------------------------- */

/** When to fetch next (opaque). @since 0.3.0 */
typedef struct vigil_gitsync_schedule vigil_gitsync_schedule;

/**
 * Returns 64 random bits. Used for jitter only.
 * @since 0.3.0
 */
typedef uint64_t (*vigil_gitsync_random_cb)(void *payload);

/**
 * Options of a schedule. Initialise with VIGIL_GITSYNC_SCHEDULE_OPTIONS_INIT.
 * @since 0.3.0
 */
typedef struct vigil_gitsync_schedule_options {
    unsigned int version;    /**< VIGIL_GITSYNC_SCHEDULE_OPTIONS_VERSION */
    int64_t min_interval_ms; /**< the interval after a change; 0: 30 s */
    int64_t max_interval_ms; /**< the longest interval; 0: 5 min */
    /** The fraction of the interval a delay may move either way, 0 to 0.5;
     * negative: none; 0: 0.1. */
    double jitter;
    /** Monotonic clock in ms; NULL: CLOCK_MONOTONIC. */
    vigil_clock_cb clock;
    void *clock_payload;
    /** Random source for jitter; NULL: an internal generator seeded from the
     * system's random source. */
    vigil_gitsync_random_cb random;
    void *random_payload;
} vigil_gitsync_schedule_options;

/** Current version of vigil_gitsync_schedule_options. @since 0.3.0 */
#define VIGIL_GITSYNC_SCHEDULE_OPTIONS_VERSION 1
/** All zero but the version: the defaults. @since 0.3.0 */
#define VIGIL_GITSYNC_SCHEDULE_OPTIONS_INIT                                       \
    {                                                                             \
        VIGIL_GITSYNC_SCHEDULE_OPTIONS_VERSION, 0, 0, 0.0, NULL, NULL, NULL, NULL \
    }

/**
 * Fills @p opts as VIGIL_GITSYNC_SCHEDULE_OPTIONS_INIT does.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or VIGIL_EVERSION.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_gitsync_schedule_options_init(vigil_gitsync_schedule_options *opts, unsigned int version);

/**
 * Creates a schedule whose first deadline is now (sync at once).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument); VIGIL_ERANGE (a negative
 *   interval, max below min, jitter above 0.5); VIGIL_EVERSION; VIGIL_ENOMEM.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_gitsync_schedule_new(vigil_gitsync_schedule **out,
                           const vigil_gitsync_schedule_options *opts);

/** Frees a schedule (NULL is a no-op). @since 0.3.0 */
VIGIL_EXTERN(void) vigil_gitsync_schedule_free(vigil_gitsync_schedule *s);

/**
 * Records the outcome of a sync and sets the next deadline. The interval
 * goes back to min_interval after a change (@p changed non-zero) and doubles,
 * up to max_interval, after a sync that changed nothing or failed; the delay
 * is the interval moved by a random fraction in [-jitter, +jitter).
 * @return the delay in ms from now to the next deadline (0 for NULL @p s).
 * @since 0.3.0
 */
VIGIL_EXTERN(int64_t) vigil_gitsync_schedule_done(vigil_gitsync_schedule *s, int changed);

/**
 * Makes the next deadline now (a sync on demand, e.g. a webhook); the
 * interval is kept. @since 0.3.0
 */
VIGIL_EXTERN(void) vigil_gitsync_schedule_now(vigil_gitsync_schedule *s);

/**
 * The next deadline on the schedule's clock, in ms (0 for NULL @p s).
 * @since 0.3.0
 */
VIGIL_EXTERN(int64_t) vigil_gitsync_schedule_deadline(const vigil_gitsync_schedule *s);

/**
 * The current interval before jitter, in ms (0 for NULL @p s). @since 0.3.0
 */
VIGIL_EXTERN(int64_t) vigil_gitsync_schedule_interval(const vigil_gitsync_schedule *s);

#ifdef __cplusplus
}
#endif

#endif
