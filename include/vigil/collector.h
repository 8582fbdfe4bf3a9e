/*
 * vigil/collector.h - collectors: the registry of collector types, collector
 * instances created from configuration, their schedule and backoff, and the
 * built-in collectors.
 *
 * A collector instance (vigil_collector) is created from one entry of an
 * agent's `collectors:` list (a YAML map). The instance owns the keys every
 * collector shares; the collector type (see <vigil/sys/collector.h>) owns the
 * rest:
 *
 *   type      required; the registered type name ("cpu", "http", ...)
 *   name      optional; the instance name. Types use it as their label tag
 *             (process=<name>, check=<name>, file=<name>); without it they
 *             choose a label themselves (documented per type below).
 *   interval  optional duration (>= 10ms); default: the options' default_interval_ms
 *   tags      optional map of extra tags added to every sample of the instance.
 *             A tag the collector sets itself (cpu, mount, process, ...) wins over
 *             a configured tag with the same key.
 *
 * Any other key must be one the type lists, or creation fails with
 * VIGIL_EUNKNOWNKEY and a located message ("agent.yaml:9:5: collectors[2].urll:
 * unknown key").
 *
 * Who does what:
 *   - the collector type reads /proc, runs its check, and appends samples;
 *   - the instance (this header) applies `tags`, turns a failing collection into
 *     one error sample, and computes when the instance is due next, with an
 *     exponential, capped backoff while it keeps failing;
 *   - the agent decides when to call, adds host=<agent id> and its global tags
 *     (without overriding tags already present), polls the event descriptors,
 *     batches and ships.
 *
 * Error samples. When a collection fails, vigil_collector_collect() still
 * returns VIGIL_OK and appends one sample
 *   vigil_collector_error{collector="<instance name>",type="<type>"}
 * with value NaN and `error` set to the failure's message (its configured tags
 * are applied too). Consecutive failures back off: the next collection is due
 * after interval * 2^failures, capped at max(backoff_max_ms, interval); the
 * first success resets the schedule to the interval.
 *
 * Rates. Counters are turned into rates between two readings; the first
 * reading of a rate-based collector (flag VIGIL_COLLECTOR_RATES) adds no rate
 * samples at all rather than zeros. A program that collects once (an agent's
 * --once) takes two readings a short time apart.
 *
 * Built-in collectors and their metrics (registered by
 * vigil_collector_registry_add_builtins()). Unless stated, gauges; "/s"
 * metrics are rates between the last two readings and skipped on the first.
 *
 *   cpu      keys: per_cpu (bool, default true)                 [rates]
 *            cpu_usage{cpu}            busy ratio 0..1 (1 - idle - iowait);
 *                                      cpu="total" for all CPUs, "0", "1", ... per core
 *            cpu_iowait_ratio{cpu}     ratio 0..1 of time waiting for I/O
 *            cpu_steal_ratio{cpu}      ratio 0..1 stolen by the hypervisor
 *            cpu_user_ratio{cpu}, cpu_system_ratio{cpu}
 *   memory   no keys; from /proc/meminfo
 *            memory_total_bytes, memory_available_bytes, memory_used_bytes
 *            (total - available), memory_used_ratio (0..1),
 *            swap_total_bytes, swap_free_bytes, swap_used_ratio (only when swap exists)
 *   load     no keys; from /proc/loadavg
 *            load1, load5, load15, load_runnable (tasks running or runnable),
 *            load_tasks (all tasks)
 *   disk     keys: mounts (list of mount points; default every real mount),
 *            exclude_fstypes (list, added to the built-in pseudo file systems)
 *            Real mounts come from /proc/self/mountinfo; pseudo file systems
 *            (proc, sysfs, tmpfs, devtmpfs, cgroup, squashfs, ...) and file
 *            systems with no blocks are excluded, and a device mounted twice
 *            (bind mounts) is reported once, at its first mount point.
 *            disk_used_ratio{mount,device,fstype}, disk_free_bytes{...} (available
 *            to unprivileged users), disk_total_bytes{...}, disk_inodes_used_ratio{...}
 *            (when the fs has inodes);                           [rates, per device
 *            of a reported mount, from /proc/diskstats]
 *            disk_read_bytes_per_second{device,mount},
 *            disk_write_bytes_per_second{device,mount},
 *            disk_reads_per_second{device,mount}, disk_writes_per_second{device,mount}
 *            A configured mount point that is not a mounted real file system
 *            yields disk_used_ratio{mount} with `error` set.
 *   net      keys: interfaces (list; default all), exclude_interfaces (list)  [rates]
 *            net_rx_bytes_per_second{iface}, net_tx_bytes_per_second{iface},
 *            net_rx_packets_per_second{iface}, net_tx_packets_per_second{iface},
 *            net_rx_errors_per_second{iface}, net_tx_errors_per_second{iface},
 *            net_rx_drops_per_second{iface}, net_tx_drops_per_second{iface}
 *   process  keys: exactly one of pidfile (path), comm (exact process name as in
 *            /proc/PID/comm, at most 15 bytes), cmdline (POSIX extended regex
 *            matched against the command line, arguments joined by spaces);
 *            watch (bool, default true: event-driven exit detection).
 *            Label: process=<name>, else the comm, the pidfile path or the regex.
 *            A zombie counts as not running; a pidfile naming a missing pid, a
 *            missing pidfile or one without a number is "not running"; a pidfile
 *            that exists but cannot be read fails the collection. A pidfile holds
 *            "PID" or "PID STARTTIME" (the process action writes the latter); with a
 *            start time (field 22 of /proc/PID/stat) a reused pid is not running.
 *            process_up{process}       1 when at least one process matches, else 0
 *            process_count{process}    matching processes
 *            process_restarts_total{process}  times the main pid (the pidfile's
 *                                      pid, else the oldest match) changed since
 *                                      the collector started
 *            only while running: process_rss_bytes{process} (sum),
 *            process_open_fds{process} (sum; skipped when /proc/PID/fd is not
 *            readable), process_threads{process} (sum),
 *            process_uptime_seconds{process} (oldest match),
 *            process_cpu_ratio{process} (CPU time per elapsed time, summed over
 *            matches; 1.0 = one core busy; a rate, skipped on the first reading)
 *            Event-driven: each matched pid (up to 256 per collector) is watched
 *            with pidfd_open(2) in an epoll set (vigil_collector_poll_fd()), and
 *            new matches are picked up at each collection; when one exits the fd becomes
 *            readable and vigil_collector_on_event() appends process_up,
 *            process_count and process_restarts_total at once. With pidfile,
 *            its directory is watched with inotify too: a pidfile rewritten to
 *            name a new running pid is reported at once, and one naming a new
 *            pid already gone (it started and died between two looks) as
 *            process_up 1 then process_up 0, 1 ms apart. Where pidfd_open
 *            is unavailable (ENOSYS, EPERM) or watch is false, poll_fd is -1 and
 *            exits are seen at the next collection.
 *   http     keys: url (required, http:// or https:// only), timeout (duration,
 *            default 10s), expect_status (integer 100..599; default: any 2xx or
 *            3xx), expect_body (substring the body must contain), follow_redirects
 *            (bool, default true; only to http or https), max_redirects (integer
 *            0..50, default 5), tls_verify (bool, default true), ca_file (path,
 *            relative to base_dir),
 *            max_body (size, default 1MiB; the body beyond it is not read)
 *            Label: check=<name>, else the url.
 *            http_up{check}            1 when the response met the expectations, else 0
 *            http_status_code{check}   when a response arrived
 *            http_latency_ms{check}    total time of the request, when a response arrived
 *            http_cert_days_left{check} https only: days until the server
 *                                      certificate expires (may be negative)
 *   tcp      keys: host (required), port (required, 1..65535), timeout
 *            (duration, default 5s; bounds the connect, not the name lookup by
 *            getaddrinfo(3): prefer addresses). Label: check=<name>, else "host:port".
 *            tcp_up{check}             1 when a connection was established, else 0
 *            tcp_connect_latency_ms{check}  only when up
 *   file     keys: path (required; relative to the options' base_dir), sha256
 *            (expected digest, 64 hex digits), max_hash_size (size, default
 *            64MiB; a larger file yields file_sha256_ok with `error` set).
 *            Label: file=<name>, else the path as configured.
 *            file_exists{file}         1 or 0
 *            only when it exists: file_size_bytes{file}, file_age_seconds{file}
 *            (now - mtime), file_mode{file} (permission bits as a number, 0644 = 420)
 *            with sha256 set: file_sha256_ok{file} 1 when the digest matches,
 *            0 when not or when the file is missing
 *   exec     keys: argv (required list: an absolute program path, then its
 *            arguments; run directly, never through a shell), timeout (duration,
 *            default 10s; then the whole process group is killed), max_output
 *            (size, default 64KiB of stdout kept; the rest is drained and
 *            dropped), max_metrics (integer, default 1000), env (map of extra
 *            environment variables; the environment is otherwise only
 *            PATH=/usr/sbin:/usr/bin:/sbin:/bin and LC_ALL=C).
 *            The program must be an existing regular executable file that
 *            neither group nor others may write, owned by root or by the user
 *            Vigil runs as (checked at load and again before every run), and
 *            when the options' exec_allow is set it must be listed there.
 *            Label: check=<name>, else the program path.
 *            Its stdout is read as Prometheus text exposition lines
 *            (`name{k="v"} value [timestamp]`; # comments skipped) or
 *            `name value` lines; each becomes a sample with its labels as tags
 *            (at most 32; no check tag is added to them; a timestamp is ignored).
 *            Lines that do not parse are counted, never fatal.
 *            exec_up{check}            1 when the program exited with status 0
 *            exec_exit_code{check}     its exit status (128+N when killed by signal N)
 *            exec_duration_ms{check}
 *            exec_parse_errors{check}  lines that did not parse (or were beyond max_metrics)
 *            A program that cannot start, or runs past its timeout, fails the
 *            collection (an error sample, VIGIL_ECHILD or VIGIL_ETIMEOUT).
 *
 * Threads: a registry may be read (lookup, vigil_collector_new) from many
 * threads once registration is over. A vigil_collector is used from one thread
 * at a time; distinct instances may run on distinct threads concurrently.
 * vigil_collector_collect() may block up to the type's own timeout (http, tcp,
 * exec); the others read /proc and return within milliseconds.
 */
#ifndef VIGIL_COLLECTOR_H
#define VIGIL_COLLECTOR_H

#include "vigil/batch.h"
#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/log.h"
#include "vigil/metric.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A collector type: the vtable in <vigil/sys/collector.h>. @since 0.1.0 */
typedef struct vigil_collector_type vigil_collector_type;

/** The name of the sample a failing collection adds. @since 0.1.0 */
#define VIGIL_COLLECTOR_ERROR_METRIC "vigil_collector_error"

/** Smallest interval accepted from configuration, in ms. @since 0.1.0 */
#define VIGIL_COLLECTOR_MIN_INTERVAL_MS 10

/**
 * Creates an empty registry.
 * @param out receives the registry, the caller's; free with vigil_collector_registry_free().
 * @return VIGIL_OK, VIGIL_EINVAL (NULL out) or VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_collector_registry_new(vigil_collector_registry **out);

/**
 * Frees a registry, calling the payload destructor of every registered type.
 * Every collector created from it must have been freed first. NULL is a no-op.
 * @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_collector_registry_free(vigil_collector_registry *registry);

/**
 * Registers the built-in types cpu, memory, load, disk, net, process, http,
 * tcp, file and exec.
 * vigil_collector_register() refuses these names; this is the one way to
 * put them in a registry.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL registry); VIGIL_EEXISTS when the
 *         built-ins are registered already (the ones before stay);
 *         VIGIL_ENOMEM.
 * Not thread-safe against other calls on the same registry.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_collector_registry_add_builtins(vigil_collector_registry *registry);

/**
 * Looks up a type by name.
 * @return the type (borrowed; valid while the registry lives) or NULL.
 * @since 0.1.0
 */
VIGIL_EXTERN(const vigil_collector_type *)
vigil_collector_registry_lookup(const vigil_collector_registry *registry, const char *name);

/**
 * Number of types vigil_collector_registry_lookup() resolves: the registered
 * ones (a registry the library chains to an embedder's, as the agent's is,
 * also counts the embedder's types that its own do not shadow).
 * @since 0.1.0
 */
VIGIL_EXTERN(size_t) vigil_collector_registry_count(const vigil_collector_registry *registry);

/**
 * The name of the type at @p index in registration order (a chained
 * registry's own types first, then those of the registry it falls back to
 * that lookup resolves there), or NULL when out of range (borrowed).
 * @since 0.1.0
 */
VIGIL_EXTERN(const char *)
vigil_collector_registry_name_at(const vigil_collector_registry *registry, size_t index);

/** Options of a collector instance. NULL means all defaults. @since 0.1.0 */
typedef struct vigil_collector_options {
    unsigned int version;        /**< VIGIL_COLLECTOR_OPTIONS_VERSION */
    vigil_logger logger;         /**< where the instance and its type log */
    const char *proc_root;       /**< procfs mount; NULL: "/proc" (tests point it elsewhere) */
    const char *sys_root;        /**< sysfs mount; NULL: "/sys" */
    const char *base_dir;        /**< relative paths in the config resolve here; NULL: cwd */
    int64_t default_interval_ms; /**< when `interval` is absent; 0: 10000 */
    int64_t backoff_max_ms; /**< cap of the failure backoff; 0: 300000 (never below interval) */
    /** NULL-terminated list of programs the exec type may run: absolute paths,
     *  or directories ending in '/' that allow every program directly inside
     *  them. NULL: any absolute path. Copied. */
    const char *const *exec_allow;
} vigil_collector_options;

#define VIGIL_COLLECTOR_OPTIONS_VERSION 1
#define VIGIL_COLLECTOR_OPTIONS_INIT                                                     \
    {                                                                                    \
        VIGIL_COLLECTOR_OPTIONS_VERSION, VIGIL_LOGGER_INIT, NULL, NULL, NULL, 0, 0, NULL \
    }

/**
 * Fills @p opts with defaults. @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or
 * VIGIL_EVERSION (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_collector_options_init(vigil_collector_options *opts, unsigned int version);

/**
 * Creates a collector instance from one configuration map (an entry of
 * `collectors:`): checks the shared keys (type, name, interval, tags), refuses
 * keys the type does not list, then calls the type's create.
 * @param out receives the instance, the caller's; free with vigil_collector_free().
 * @param registry where `type` is looked up; it must outlive the instance.
 * @param config the map; borrowed only during the call.
 * @param opts NULL for defaults; copied.
 * @return VIGIL_OK; VIGIL_EMISSING (no type, or a required key of the type),
 *         VIGIL_ENOTFOUND (unknown type), VIGIL_EUNKNOWNKEY, VIGIL_ETYPE,
 *         VIGIL_EVALUE, VIGIL_ERANGE, VIGIL_ENAME (bad tag key), VIGIL_EUNSUPPORTED
 *         (e.g. a URL scheme), VIGIL_EPERM (a program not in exec_allow),
 *         VIGIL_EINVAL, VIGIL_ENOMEM; the message is located in the file.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_collector_new(vigil_collector **out, const vigil_collector_registry *registry,
                    const vigil_config_node *config, const vigil_collector_options *opts);

/** Destroys an instance (and its type state, closing its descriptors). NULL is a no-op. @since
 * 0.1.0 */
VIGIL_EXTERN(void) vigil_collector_free(vigil_collector *collector);

/**
 * Runs one collection now and appends its samples to @p out, each with the
 * instance's tags and the timestamp @p now_ms. A failing collection appends
 * one error sample instead (see the top of this header) and still returns
 * VIGIL_OK; vigil_collector_last_status() tells them apart.
 * @param now_ms wall-clock ms: the samples' timestamp and the schedule's clock
 *        (pass the same clock every time).
 * @param next_due_ms if not NULL, receives when the next collection is due:
 *        now_ms + interval after a success, later while failures back off.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument), VIGIL_ELIMIT (the batch is
 *         full: the samples that fitted stay), VIGIL_ENOMEM (also when the type
 *         ran out of memory: that is no collector failure, so no error sample
 *         is added and the next collection is due after the interval).
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_collector_collect(vigil_collector *collector, vigil_batch *out, int64_t now_ms,
                        int64_t *next_due_ms);

/**
 * When the next collection is due (same clock as now_ms): 0 before the first
 * collection, meaning "now". @since 0.1.0
 */
VIGIL_EXTERN(int64_t) vigil_collector_next_due(const vigil_collector *collector);

/**
 * A descriptor to poll for readability (POLLIN) for an event-driven collector,
 * or -1 when the instance has none. It stays the same for the instance's
 * lifetime and is owned by it: never close it. When it is readable, call
 * vigil_collector_on_event() promptly and ship its samples at once.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_collector_poll_fd(const vigil_collector *collector);

/**
 * Handles the events waiting on vigil_collector_poll_fd() and appends their
 * samples to @p out (with the instance's tags), e.g. process_up=0 for a watched
 * process that exited. Never blocks. Calling it with nothing pending appends
 * nothing. A failure appends an error sample and returns VIGIL_OK; it does not
 * change the schedule.
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ELIMIT, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_collector_on_event(vigil_collector *collector, vigil_batch *out, int64_t now_ms);

/** The instance name: `name` from the config, else the type name (borrowed). @since 0.1.0 */
VIGIL_EXTERN(const char *) vigil_collector_name(const vigil_collector *collector);

/** The type name (borrowed). @since 0.1.0 */
VIGIL_EXTERN(const char *) vigil_collector_type_name(const vigil_collector *collector);

/** The configured interval in ms. @since 0.1.0 */
VIGIL_EXTERN(int64_t) vigil_collector_interval(const vigil_collector *collector);

/** The type's VIGIL_COLLECTOR_* flags (see <vigil/sys/collector.h>). @since 0.1.0 */
VIGIL_EXTERN(unsigned int) vigil_collector_flags(const vigil_collector *collector);

/**
 * The status of the type's last collect or on_event: VIGIL_OK, or the
 * negative code of the failure that became an error sample. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_collector_last_status(const vigil_collector *collector);

/** Consecutive failed collections (0 after a success). @since 0.1.0 */
VIGIL_EXTERN(unsigned int) vigil_collector_failures(const vigil_collector *collector);

#ifdef __cplusplus
}
#endif

#endif
