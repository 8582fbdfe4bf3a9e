/*
 * vigil/types.h - the opaque handles of libvigil and the callback types that
 * several modules share (clock, environment, payload destructor, log).
 *
 * Every handle is created and released by functions of the header named for
 * it (vigil_hub by vigil/hub.h, ...); only pointers to them are ever used.
 * Include <vigil/vigil.h> rather than this header directly.
 */
#ifndef VIGIL_TYPES_H
#define VIGIL_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @name Opaque handles @since 0.1.0 (moved here in 0.2.0) */
/**@{*/
/** The registry of configured actions and their types (vigil/action.h). */
typedef struct vigil_action_registry vigil_action_registry;
/** The agent: collectors, batching, shipping, spool (vigil/agent.h). */
typedef struct vigil_agent vigil_agent;
/** The transport-neutral HTTP API of a hub or remediator (vigil/api.h). */
typedef struct vigil_api vigil_api;
/** One response of a vigil_api (vigil/api.h). */
typedef struct vigil_api_response vigil_api_response;
/** The HMAC-chained audit log (vigil/audit.h). */
typedef struct vigil_audit vigil_audit;
/** A growable batch of metrics that owns its strings (vigil/batch.h). */
typedef struct vigil_batch vigil_batch;
/** The client that ships batches to a hub (vigil/client.h). */
typedef struct vigil_client vigil_client;
/** One configured collector (vigil/collector.h). */
typedef struct vigil_collector vigil_collector;
/** The registry of collector types (vigil/collector.h). */
typedef struct vigil_collector_registry vigil_collector_registry;
/** A loaded configuration document (vigil/config.h). */
typedef struct vigil_config vigil_config;
/** One node of a loaded configuration, with its location (vigil/config.h). */
typedef struct vigil_config_node vigil_config_node;
/** The policy engine (vigil/engine.h). */
typedef struct vigil_engine vigil_engine;
/** The HTTP server hosting a vigil_api (vigil/httpd.h). */
typedef struct vigil_httpd vigil_httpd;
/** The hub: ingest, store, windows, engine, dispatch (vigil/hub.h). */
typedef struct vigil_hub vigil_hub;
/** A loaded collector.yaml (vigil/hub.h). */
typedef struct vigil_hub_config vigil_hub_config;
/** The registry of code policy types (vigil/policy.h, vigil/sys/policy.h). @since 0.2.0 */
typedef struct vigil_policy_registry vigil_policy_registry;
/** The remediator: guards, ledger, workers, audit (vigil/remediator.h). */
typedef struct vigil_remediator vigil_remediator;
/** A loaded remediator.yaml (vigil/remediator.h). */
typedef struct vigil_remediator_config vigil_remediator_config;
/** An open store (vigil/store.h). */
typedef struct vigil_store vigil_store;
/** The registry of store types (vigil/store.h, vigil/sys/store.h). */
typedef struct vigil_store_registry vigil_store_registry;
/** The in-memory history of one series (vigil/window.h). */
typedef struct vigil_window vigil_window;
/** Windows keyed by series (vigil/window.h). */
typedef struct vigil_window_set vigil_window_set;
/**@}*/

/**
 * A wall clock: returns the time in milliseconds since the Unix epoch.
 * Options of objects that keep time take one (NULL: the real clock) so that
 * tests can inject time. Called from whichever thread of the object needs
 * the time; it must be thread-safe. Every options struct names the pair
 * `clock` and `clock_payload`.
 * @since 0.2.0
 */
typedef int64_t (*vigil_clock_cb)(void *payload);

/**
 * Reads an environment variable: returns its value (borrowed; the library
 * copies it at once) or NULL when it is not set. Options of objects that
 * read the environment take one (NULL: getenv(3)). Called from the threads
 * that configure or run the object; it must be thread-safe when the object
 * is used from several threads. Every options struct names the pair
 * `getenv` and `getenv_payload`.
 * @since 0.2.0
 */
typedef const char *(*vigil_getenv_cb)(void *payload, const char *name);

/**
 * Releases a payload handed to the library. Called exactly once, from the
 * thread that frees the object holding the payload.
 * @since 0.2.0
 */
typedef void (*vigil_free_cb)(void *payload);

/** One log record (defined in vigil/log.h). @since 0.1.0 */
typedef struct vigil_log_record vigil_log_record;

/**
 * A log callback. It is called from whichever thread logs and must be
 * thread-safe; it must not call back into the object that logs.
 * @since 0.1.0
 */
typedef void (*vigil_log_cb)(const vigil_log_record *record, void *payload);

#ifdef __cplusplus
}
#endif

#endif
