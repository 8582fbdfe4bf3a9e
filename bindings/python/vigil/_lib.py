"""Loading libvigil and describing its C API to ctypes.

Everything here mirrors the public headers (include/vigil/*.h and
include/vigil/sys/*.h) only. Struct classes carry the C type name in
``_c_name_`` so that the test suite can compare every field offset with the
compiler's (tests/test_layout.py).
"""

import ctypes
import ctypes.util
import os
import subprocess
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_double,
    c_int,
    c_int64,
    c_size_t,
    c_uint,
    c_uint64,
    c_void_p,
)

#: The library major version this binding speaks. While libvigil is 0.x a
#: minor release may change the ABI, so the minor must be at least
#: ``MIN_MINOR`` as well (0.2.0 introduced the plug-in contract used here).
SUPPORTED_MAJOR = 0
MIN_MINOR = 2

_PKG_CONFIG_TIMEOUT_S = 10


def _candidates():
    """Where to look for libvigil, in order: $VIGIL_LIBRARY, the libdir that
    pkg-config reports for ``vigil``, then the system loader."""
    env = os.environ.get("VIGIL_LIBRARY")
    if env:
        # An explicit choice is the only candidate: falling back silently
        # would hide a typo.
        return [("VIGIL_LIBRARY", env)], True
    found = []
    try:
        out = subprocess.run(
            ["pkg-config", "--variable=libdir", "vigil"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=_PKG_CONFIG_TIMEOUT_S,
            check=False,
        )
        libdir = out.stdout.decode("utf-8", "replace").strip()
        if out.returncode == 0 and libdir:
            for name in ("libvigil.so.0", "libvigil.so"):
                path = os.path.join(libdir, name)
                if os.path.exists(path):
                    found.append(("pkg-config", path))
                    break
    except (OSError, subprocess.SubprocessError):
        pass
    found.append(("system loader", "libvigil.so.0"))
    util = ctypes.util.find_library("vigil")
    if util:
        found.append(("system loader", util))
    return found, False


def _load():
    cands, explicit = _candidates()
    tried = []
    for how, path in cands:
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s): %s" % (path, how, e))
    if explicit:
        raise ImportError(
            "vigil: cannot load libvigil from VIGIL_LIBRARY=%s: %s" % (cands[0][1], tried[0])
        )
    raise ImportError(
        "vigil: cannot find libvigil; set VIGIL_LIBRARY to the path of libvigil.so.0, "
        "or make `pkg-config --variable=libdir vigil` name its directory. Tried: "
        + "; ".join(tried)
    )


def check_version(major, minor, patch, path="libvigil"):
    """Raises ImportError when the library's version is not one this binding
    speaks."""
    if major != SUPPORTED_MAJOR or minor < MIN_MINOR:
        raise ImportError(
            "vigil: %s is version %d.%d.%d, this binding needs %d.x with x >= %d"
            % (path, major, minor, patch, SUPPORTED_MAJOR, MIN_MINOR)
        )


lib, path = _load()

# ---- basic types -------------------------------------------------------------

vigil_free_cb = CFUNCTYPE(None, c_void_p)
vigil_clock_cb = CFUNCTYPE(c_int64, c_void_p)
vigil_getenv_cb = CFUNCTYPE(c_void_p, c_void_p, c_char_p)


class vigil_error(Structure):
    _c_name_ = "vigil_error"
    _fields_ = [
        ("code", c_int),
        ("message", c_char_p),
        ("file", c_char_p),
        ("line", c_uint),
        ("column", c_uint),
    ]


class vigil_buf(Structure):
    _c_name_ = "vigil_buf"
    _fields_ = [("ptr", c_void_p), ("size", c_size_t), ("asize", c_size_t)]

    def text(self):
        if not self.ptr:
            return ""
        return ctypes.string_at(self.ptr, self.size).decode("utf-8", "replace")


class vigil_log_record(Structure):
    _c_name_ = "vigil_log_record"
    _fields_ = [
        ("level", c_int),
        ("ts_ms", c_int64),
        ("component", c_char_p),
        ("message", c_char_p),
        ("fields", c_char_p),
    ]


vigil_log_cb = CFUNCTYPE(None, POINTER(vigil_log_record), c_void_p)


class vigil_logger(Structure):
    _c_name_ = "vigil_logger"
    _fields_ = [("cb", vigil_log_cb), ("payload", c_void_p), ("min_level", c_int)]


class vigil_tag(Structure):
    _c_name_ = "vigil_tag"
    _fields_ = [("key", c_char_p), ("value", c_char_p)]


class vigil_metric(Structure):
    _c_name_ = "vigil_metric"
    _fields_ = [
        ("name", c_char_p),
        ("value", c_double),
        ("ts_ms", c_int64),
        ("tags", POINTER(vigil_tag)),
        ("ntags", c_size_t),
        ("error", c_char_p),
    ]


class vigil_config_options(Structure):
    _c_name_ = "vigil_config_options"
    _fields_ = [
        ("version", c_uint),
        ("max_file_size", c_size_t),
        ("max_depth", c_uint),
        ("max_nodes", c_size_t),
        ("no_env", c_int),
        ("getenv", vigil_getenv_cb),
        ("getenv_payload", c_void_p),
        ("store_types", c_void_p),
        ("policy_types", c_void_p),
        ("action_types", c_void_p),
    ]


class vigil_window_options(Structure):
    _c_name_ = "vigil_window_options"
    _fields_ = [("version", c_uint), ("max_age_ms", c_int64), ("max_samples", c_size_t)]


class vigil_window_set_options(Structure):
    _c_name_ = "vigil_window_set_options"
    _fields_ = [
        ("version", c_uint),
        ("window", vigil_window_options),
        ("max_series", c_size_t),
    ]


# ---- store -------------------------------------------------------------------


class vigil_store_write_result(Structure):
    _c_name_ = "vigil_store_write_result"
    _fields_ = [
        ("version", c_uint),
        ("written", c_size_t),
        ("duplicate", c_int),
        ("new_series", c_size_t),
    ]


class vigil_store_matcher(Structure):
    _c_name_ = "vigil_store_matcher"
    _fields_ = [("key", c_char_p), ("op", c_int), ("value", c_char_p)]


class vigil_store_query(Structure):
    _c_name_ = "vigil_store_query"
    _fields_ = [
        ("version", c_uint),
        ("name", c_char_p),
        ("name_op", c_int),
        ("matchers", POINTER(vigil_store_matcher)),
        ("nmatchers", c_size_t),
        ("from_ms", c_int64),
        ("to_ms", c_int64),
        ("step_ms", c_int64),
        ("aggregate", c_int),
        ("limit", c_size_t),
    ]


class vigil_store_series(Structure):
    _c_name_ = "vigil_store_series"
    _fields_ = [
        ("id", c_int64),
        ("key", c_char_p),
        ("name", c_char_p),
        ("tags", POINTER(vigil_tag)),
        ("ntags", c_size_t),
    ]


class vigil_store_point(Structure):
    _c_name_ = "vigil_store_point"
    _fields_ = [("ts_ms", c_int64), ("value", c_double), ("error", c_char_p)]


vigil_store_point_cb = CFUNCTYPE(
    c_int, POINTER(vigil_store_series), POINTER(vigil_store_point), c_void_p
)
vigil_store_series_cb = CFUNCTYPE(c_int, POINTER(vigil_store_series), c_void_p)


class vigil_store_action(Structure):
    _c_name_ = "vigil_store_action"
    _fields_ = [
        ("id", c_char_p),
        ("requested_ms", c_int64),
        ("action", c_char_p),
        ("target", c_char_p),
        ("params_json", c_char_p),
        ("reason", c_char_p),
        ("policy", c_char_p),
        ("series", c_char_p),
        ("dry_run", c_int),
        ("status", c_char_p),
        ("result_reason", c_char_p),
        ("output", c_char_p),
        ("duration_ms", c_int64),
        ("updated_ms", c_int64),
        ("audit_seq", c_int64),
        ("audit_hash", c_char_p),
    ]


class vigil_store_filter(Structure):
    _c_name_ = "vigil_store_filter"
    _fields_ = [
        ("version", c_uint),
        ("since_ms", c_int64),
        ("after_id", c_int64),
        ("limit", c_size_t),
        ("status", c_char_p),
        ("target", c_char_p),
        ("policy", c_char_p),
    ]


class vigil_store_decision(Structure):
    _c_name_ = "vigil_store_decision"
    _fields_ = [
        ("id", c_int64),
        ("ts_ms", c_int64),
        ("policy", c_char_p),
        ("series", c_char_p),
        ("target", c_char_p),
        ("action", c_char_p),
        ("action_id", c_char_p),
        ("decision", c_char_p),
        ("reason", c_char_p),
    ]


vigil_store_action_cb = CFUNCTYPE(c_int, POINTER(vigil_store_action), c_void_p)
vigil_store_decision_cb = CFUNCTYPE(c_int, POINTER(vigil_store_decision), c_void_p)

# ---- actions -----------------------------------------------------------------


class vigil_action_param(Structure):
    _c_name_ = "vigil_action_param"
    _fields_ = [("key", c_char_p), ("value", c_char_p)]


class vigil_action_request(Structure):
    _c_name_ = "vigil_action_request"
    _fields_ = [
        ("version", c_uint),
        ("id", c_char_p),
        ("action", c_char_p),
        ("target", c_char_p),
        ("params", POINTER(vigil_action_param)),
        ("nparams", c_size_t),
        ("reason", c_char_p),
        ("policy", c_char_p),
        ("dry_run", c_int),
    ]


class vigil_action_result(Structure):
    _c_name_ = "vigil_action_result"
    _fields_ = [
        ("version", c_uint),
        ("id", c_char_p),
        ("status", c_int),
        ("reason", c_char_p),
        ("output", c_char_p),
        ("output_len", c_size_t),
        ("output_truncated", c_int),
        ("exit_code", c_int),
        ("term_signal", c_int),
        ("duration_ms", c_int64),
        ("retry_after_ms", c_int64),
    ]


vigil_action_cancel_cb = CFUNCTYPE(c_int, c_void_p)
vigil_action_done_cb = CFUNCTYPE(None, POINTER(vigil_action_result), c_void_p)
vigil_remediator_result_cb = CFUNCTYPE(
    None, POINTER(vigil_action_result), c_int64, c_char_p, c_void_p
)


class vigil_action_context(Structure):
    _c_name_ = "vigil_action_context"
    _fields_ = [
        ("version", c_uint),
        ("action_name", c_char_p),
        ("logger", POINTER(vigil_logger)),
        ("base_dir", c_char_p),
        ("host", c_char_p),
        ("timeout_ms", c_int64),
        ("getenv", vigil_getenv_cb),
        ("getenv_payload", c_void_p),
        ("clock", vigil_clock_cb),
        ("clock_payload", c_void_p),
        ("type_payload", c_void_p),
        ("state_dir", c_char_p),
    ]


class vigil_action_exec(Structure):
    _c_name_ = "vigil_action_exec"
    _fields_ = [
        ("version", c_uint),
        ("deadline_ms", c_int64),
        ("timeout_ms", c_int64),
        ("cancel", vigil_action_cancel_cb),
        ("cancel_payload", c_void_p),
    ]


action_create_cb = CFUNCTYPE(
    c_int, POINTER(c_void_p), c_void_p, POINTER(vigil_action_context)
)
action_validate_cb = CFUNCTYPE(c_int, c_void_p, POINTER(vigil_action_request))
action_execute_cb = CFUNCTYPE(
    c_int,
    c_void_p,
    POINTER(vigil_action_request),
    POINTER(vigil_action_exec),
    POINTER(vigil_action_result),
)
action_destroy_cb = CFUNCTYPE(None, c_void_p)
action_describe_cb = CFUNCTYPE(c_int, c_void_p, POINTER(vigil_action_request), c_void_p)
action_reap_cb = CFUNCTYPE(None, c_void_p)


class vigil_action_type(Structure):
    _c_name_ = "vigil_action_type"
    _fields_ = [
        ("version", c_uint),
        ("name", c_char_p),
        ("payload", c_void_p),
        ("payload_free", vigil_free_cb),
        ("keys", POINTER(c_char_p)),
        ("create", action_create_cb),
        ("validate", action_validate_cb),
        ("execute", action_execute_cb),
        ("destroy", action_destroy_cb),
        ("describe", action_describe_cb),
        ("reap", action_reap_cb),
    ]


class vigil_action_dispatcher(Structure):
    _c_name_ = "vigil_action_dispatcher"
    _fields_ = [("version", c_uint), ("self", c_void_p), ("submit", c_void_p)]


# ---- policies and the engine -------------------------------------------------


class vigil_policy_verdict(Structure):
    _c_name_ = "vigil_policy_verdict"
    _fields_ = [
        ("version", c_uint),
        ("active", c_int),
        ("value", c_double),
        ("request", vigil_action_request),
    ]


policy_create_cb = CFUNCTYPE(c_int, POINTER(c_void_p), c_void_p, c_void_p)
policy_evaluate_cb = CFUNCTYPE(
    c_int, c_void_p, POINTER(vigil_metric), c_void_p, POINTER(vigil_policy_verdict)
)
policy_destroy_cb = CFUNCTYPE(None, c_void_p)


class vigil_policy_type(Structure):
    _c_name_ = "vigil_policy_type"
    _fields_ = [
        ("version", c_uint),
        ("name", c_char_p),
        ("payload", c_void_p),
        ("payload_free", vigil_free_cb),
        ("keys", POINTER(c_char_p)),
        ("create", policy_create_cb),
        ("evaluate", policy_evaluate_cb),
        ("destroy", policy_destroy_cb),
    ]


class vigil_engine_request(Structure):
    _c_name_ = "vigil_engine_request"
    _fields_ = [
        ("version", c_uint),
        ("request", POINTER(vigil_action_request)),
        ("series", c_char_p),
    ]


engine_aggregate_cb = CFUNCTYPE(
    c_int, c_void_p, c_char_p, c_int, c_int64, c_int64, POINTER(c_double)
)
engine_request_cb = CFUNCTYPE(None, c_void_p, POINTER(vigil_engine_request))
engine_decision_cb = CFUNCTYPE(None, c_void_p, POINTER(vigil_store_decision))


class vigil_engine_options(Structure):
    _c_name_ = "vigil_engine_options"
    _fields_ = [
        ("version", c_uint),
        ("store", c_void_p),
        ("aggregate", engine_aggregate_cb),
        ("aggregate_payload", c_void_p),
        ("clock", vigil_clock_cb),
        ("clock_payload", c_void_p),
        ("on_request", engine_request_cb),
        ("request_payload", c_void_p),
        ("on_decision", engine_decision_cb),
        ("decision_payload", c_void_p),
        ("act_within_ms", c_int64),
        ("logger", vigil_logger),
        ("windows", vigil_window_set_options),
        ("policy_types", c_void_p),
        ("series_idle_ms", c_int64),
        ("series_per_agent", c_size_t),
    ]


class vigil_engine_stats(Structure):
    _c_name_ = "vigil_engine_stats"
    _fields_ = [
        ("version", c_uint),
        ("policies", c_size_t),
        ("metrics", c_uint64),
        ("evaluations", c_uint64),
        ("stale", c_uint64),
        ("policy_errors", c_uint64),
        ("template_errors", c_uint64),
        ("eval_errors", c_uint64),
        ("decisions", c_uint64),
        ("requests", c_uint64),
        ("series_evicted", c_uint64),
        ("series_refused", c_uint64),
    ]


# ---- collectors and the agent ------------------------------------------------


class vigil_collector_context(Structure):
    _c_name_ = "vigil_collector_context"
    _fields_ = [
        ("version", c_uint),
        ("logger", POINTER(vigil_logger)),
        ("proc_root", c_char_p),
        ("sys_root", c_char_p),
        ("base_dir", c_char_p),
        ("name", c_char_p),
        ("interval_ms", c_int64),
        ("type_payload", c_void_p),
        ("exec_allow", POINTER(c_char_p)),
    ]


collector_create_cb = CFUNCTYPE(
    c_int, POINTER(c_void_p), c_void_p, POINTER(vigil_collector_context)
)
collector_collect_cb = CFUNCTYPE(c_int, c_void_p, c_void_p, c_int64)
collector_poll_fd_cb = CFUNCTYPE(c_int, c_void_p)
collector_destroy_cb = CFUNCTYPE(None, c_void_p)


class vigil_collector_type(Structure):
    _c_name_ = "vigil_collector_type"
    _fields_ = [
        ("version", c_uint),
        ("name", c_char_p),
        ("payload", c_void_p),
        ("payload_free", vigil_free_cb),
        ("flags", c_uint),
        ("keys", POINTER(c_char_p)),
        ("create", collector_create_cb),
        ("collect", collector_collect_cb),
        ("poll_fd", collector_poll_fd_cb),
        ("on_event", collector_collect_cb),
        ("destroy", collector_destroy_cb),
    ]


class vigil_agent_options(Structure):
    _c_name_ = "vigil_agent_options"
    _fields_ = [
        ("version", c_uint),
        ("logger", vigil_logger),
        ("agent_id", c_char_p),
        ("tags", POINTER(vigil_tag)),
        ("ntags", c_size_t),
        ("hub_urls", POINTER(c_char_p)),
        ("nhub_urls", c_size_t),
        ("token_env", c_char_p),
        ("ca_file", c_char_p),
        ("cert_file", c_char_p),
        ("key_file", c_char_p),
        ("tls_insecure", c_int),
        ("connect_timeout_ms", c_int64),
        ("request_timeout_ms", c_int64),
        ("retries", c_int),
        ("backoff_ms", c_int64),
        ("backoff_max_ms", c_int64),
        ("retry_after_max_ms", c_int64),
        ("interval_ms", c_int64),
        ("heartbeat_ms", c_int64),
        ("batch_max_metrics", c_size_t),
        ("batch_max_delay_ms", c_int64),
        ("spool_path", c_char_p),
        ("spool_max_size", c_uint64),
        ("spool_no_fsync", c_int),
        ("shutdown_timeout_ms", c_int64),
        ("collector_backoff_max_ms", c_int64),
        ("exec_allow", POINTER(c_char_p)),
        ("proc_root", c_char_p),
        ("sys_root", c_char_p),
        ("base_dir", c_char_p),
        ("collector_types", c_void_p),
        ("offline", c_int),
    ]


# ---- hub, remediator, audit, http --------------------------------------------


class vigil_hub_options(Structure):
    _c_name_ = "vigil_hub_options"
    _fields_ = [
        ("version", c_uint),
        ("store_url", c_char_p),
        ("retention_ms", c_int64),
        ("retention_interval_ms", c_int64),
        ("queue_max", c_size_t),
        ("group_max_samples", c_size_t),
        ("max_future_ms", c_int64),
        ("max_batch_metrics", c_size_t),
        ("windows", vigil_window_set_options),
        ("events_interval_ms", c_int64),
        ("events_queue_max", c_size_t),
        ("events_max_subscribers", c_size_t),
        ("logger", vigil_logger),
        ("store_types", c_void_p),
        ("policies", c_void_p),
        ("policies_dir", c_char_p),
        ("silences", c_void_p),
        ("clock", vigil_clock_cb),
        ("clock_payload", c_void_p),
        ("policy_interval_ms", c_int64),
        ("act_within_ms", c_int64),
        ("policy_types", c_void_p),
        ("remediator_url", c_char_p),
        ("remediator_secret_env", c_char_p),
        ("remediator_secret", c_void_p),
        ("remediator_secret_len", c_size_t),
        ("remediator_timeout_ms", c_int64),
        ("remediator_attempts", c_uint),
        ("remediator_backoff_ms", c_int64),
        ("remediator_backoff_max_ms", c_int64),
        ("remediator_workers", c_size_t),
        ("remediator_queue_max", c_size_t),
        ("remediator_ca_file", c_char_p),
        ("remediator_cert", c_char_p),
        ("remediator_key", c_char_p),
        ("series_idle_ms", c_int64),
        ("series_per_agent", c_size_t),
        ("drift_cooldown_ms", c_int64),
        ("remediators", c_void_p),
        ("nremediators", c_size_t),
        ("ui_dir", c_char_p),
        ("ui_max_file", c_uint64),
        ("redis_url", c_char_p),
        ("redis_stream", c_char_p),
        ("redis_maxlen", c_size_t),
        ("redis_queue_max", c_size_t),
        ("redis_password_env", c_char_p),
        ("redis_subscribe", c_int),
        ("redis_hub_id", c_char_p),
    ]


class vigil_hub_ingest_result(Structure):
    _c_name_ = "vigil_hub_ingest_result"
    _fields_ = [("version", c_uint), ("accepted", c_size_t), ("duplicate", c_int)]


class vigil_hub_stats(Structure):
    _c_name_ = "vigil_hub_stats"
    _fields_ = [
        ("version", c_uint),
        ("samples", c_uint64),
        ("batches", c_uint64),
        ("duplicates", c_uint64),
        ("commits", c_uint64),
        ("rejected", c_uint64),
        ("series", c_size_t),
        ("windows", c_size_t),
        ("queue_depth", c_size_t),
        ("subscribers", c_size_t),
    ]


class vigil_remediator_options(Structure):
    _c_name_ = "vigil_remediator_options"
    _fields_ = [
        ("version", c_uint),
        ("store_url", c_char_p),
        ("audit_key", c_void_p),
        ("audit_key_len", c_size_t),
        ("audit_key_env", c_char_p),
        ("actions", c_void_p),
        ("action_types", c_void_p),
        ("store_types", c_void_p),
        ("base_dir", c_char_p),
        ("dry_run", c_int),
        ("cooldown_ms", c_int64),
        ("max_attempts", c_uint),
        ("window_ms", c_int64),
        ("reset_after_ms", c_int64),
        ("rate_per_s", c_double),
        ("rate_burst", c_double),
        ("max_concurrent", c_uint),
        ("workers", c_size_t),
        ("queue_max", c_size_t),
        ("tick_interval_ms", c_int64),
        ("clock", vigil_clock_cb),
        ("clock_payload", c_void_p),
        ("secret_env", c_char_p),
        ("secret", c_void_p),
        ("secret_len", c_size_t),
        ("max_skew_s", c_int64),
        ("late_result", vigil_remediator_result_cb),
        ("late_result_payload", c_void_p),
        ("hub_url", c_char_p),
        ("hub_token_env", c_char_p),
        ("hub_attempts", c_uint),
        ("hub_backoff_ms", c_int64),
        ("hub_timeout_ms", c_int64),
        ("recent_max", c_size_t),
        ("logger", vigil_logger),
        ("state_dir", c_char_p),
        ("hub_ca_file", c_char_p),
        ("hub_cert", c_char_p),
        ("hub_key", c_char_p),
    ]


class vigil_audit_options(Structure):
    _c_name_ = "vigil_audit_options"
    _fields_ = [
        ("version", c_uint),
        ("store", c_void_p),
        ("key", c_void_p),
        ("key_len", c_size_t),
        ("clock", vigil_clock_cb),
        ("clock_payload", c_void_p),
        ("logger", vigil_logger),
    ]


class vigil_audit_report(Structure):
    _c_name_ = "vigil_audit_report"
    _fields_ = [
        ("version", c_uint),
        ("ok", c_int),
        ("entries", c_int64),
        ("broken_at", c_int64),
        ("reason", c_char * 256),
    ]


class vigil_api_options(Structure):
    _c_name_ = "vigil_api_options"
    _fields_ = [
        ("version", c_uint),
        ("prefix", c_char_p),
        ("tokens", c_void_p),
        ("ntokens", c_size_t),
        ("auth_cb", c_void_p),
        ("auth_payload", c_void_p),
        ("allowed_origins", POINTER(c_char_p)),
        ("nallowed_origins", c_size_t),
        ("max_body", c_uint64),
        ("max_inflated", c_uint64),
        ("retry_after_s", c_uint),
        ("logger", vigil_logger),
        ("bindings", c_void_p),
        ("nbindings", c_size_t),
    ]


class vigil_httpd_options(Structure):
    _c_name_ = "vigil_httpd_options"
    _fields_ = [
        ("version", c_uint),
        ("listen", c_char_p),
        ("threads", c_uint),
        ("max_connections", c_uint),
        ("per_ip", c_uint),
        ("timeout_ms", c_int64),
        ("connection_memory", c_size_t),
        ("max_body", c_uint64),
        ("tls_cert", c_char_p),
        ("tls_key", c_char_p),
        ("tls_client_ca", c_char_p),
        ("insecure", c_int),
        ("logger", vigil_logger),
        ("max_buffered", c_uint64),
    ]


#: Every struct mirrored here, for the layout test.
STRUCTS = [
    v
    for v in list(globals().values())
    if isinstance(v, type) and issubclass(v, Structure) and hasattr(v, "_c_name_")
]

# ---- prototypes --------------------------------------------------------------

P = c_void_p
_I, _V, _S, _Z, _D, _I64, _U = c_int, None, c_char_p, c_size_t, c_double, c_int64, c_uint

_PROTOS = {
    # core
    "vigil_version": (_S, [POINTER(c_int), POINTER(c_int), POINTER(c_int)]),
    "vigil_strerror": (_S, [_I]),
    "vigil_free": (_V, [P]),
    "vigil_error_last": (POINTER(vigil_error), []),
    "vigil_error_clear": (_V, []),
    "vigil_error_set": (_I, [_I, _S]),
    "vigil_error_set_at": (_I, [_I, P, _S]),
    "vigil_buf_dispose": (_V, [POINTER(vigil_buf)]),
    "vigil_log_level_name": (_S, [_I]),
    # config
    "vigil_config_load_string": (_I, [POINTER(P), _S, _Z, _S, POINTER(vigil_config_options)]),
    "vigil_config_load_file": (_I, [POINTER(P), _S, POINTER(vigil_config_options)]),
    "vigil_config_free": (_V, [P]),
    "vigil_config_root": (P, [P, _Z]),
    "vigil_config_document_count": (_Z, [P]),
    "vigil_config_node_kind": (_I, [P]),
    "vigil_config_node_scalar": (_S, [P]),
    "vigil_config_node_len": (_Z, [P]),
    "vigil_config_node_at": (P, [P, _Z]),
    "vigil_config_node_key_at": (_S, [P, _Z]),
    "vigil_config_node_get": (P, [P, _S]),
    "vigil_config_node_path": (_S, [P]),
    "vigil_config_node_file": (_S, [P]),
    "vigil_config_node_line": (_U, [P]),
    "vigil_config_node_column": (_U, [P]),
    "vigil_config_get_string": (_I, [POINTER(c_char_p), P, _S, _S]),
    "vigil_config_get_int": (_I, [POINTER(c_int64), P, _S, _I64]),
    "vigil_config_get_double": (_I, [POINTER(c_double), P, _S, _D]),
    "vigil_config_get_bool": (_I, [POINTER(c_int), P, _S, _I]),
    "vigil_config_get_duration": (_I, [POINTER(c_int64), P, _S, _I64]),
    "vigil_scalar_parse_duration": (_I, [POINTER(c_int64), _S]),
    # metrics and batches
    "vigil_metric_validate": (_I, [POINTER(vigil_metric)]),
    "vigil_metric_series_key": (_I, [POINTER(vigil_buf), POINTER(vigil_metric)]),
    "vigil_batch_new": (_I, [POINTER(P)]),
    "vigil_batch_free": (_V, [P]),
    "vigil_batch_clear": (_V, [P]),
    "vigil_batch_add": (_I, [P, POINTER(vigil_metric)]),
    "vigil_batch_count": (_Z, [P]),
    "vigil_batch_get": (POINTER(vigil_metric), [P, _Z]),
    "vigil_batch_set_agent": (_I, [P, _S]),
    "vigil_batch_set_id": (_I, [P, _S]),
    "vigil_batch_agent": (_S, [P]),
    "vigil_batch_id": (_S, [P]),
    "vigil_batch_decode_json": (_I, [P, _S, _Z, P]),
    "vigil_batch_encode_json": (_I, [POINTER(vigil_buf), P]),
    # store
    "vigil_store_open": (_I, [POINTER(P), _S, P]),
    "vigil_store_close": (_V, [P]),
    "vigil_store_scheme": (_S, [P]),
    "vigil_store_write": (_I, [P, P, POINTER(vigil_store_write_result)]),
    "vigil_store_query_run": (_I, [P, POINTER(vigil_store_query), vigil_store_point_cb, P]),
    "vigil_store_series_list": (_I, [P, POINTER(vigil_store_query), vigil_store_series_cb, P]),
    "vigil_store_latest": (_I, [P, POINTER(vigil_store_query), vigil_store_point_cb, P]),
    "vigil_store_agg_parse": (_I, [POINTER(c_int), _S]),
    "vigil_store_action_list": (_I, [P, POINTER(vigil_store_filter), vigil_store_action_cb, P]),
    "vigil_store_decision_list": (
        _I,
        [P, POINTER(vigil_store_filter), vigil_store_decision_cb, P],
    ),
    # windows
    "vigil_window_agg_parse": (_I, [POINTER(c_int), _S]),
    # actions
    "vigil_action_status_name": (_S, [_I]),
    "vigil_action_status_parse": (_I, [POINTER(c_int), _S]),
    "vigil_action_result_clear": (_V, [POINTER(vigil_action_result)]),
    "vigil_action_result_set_id": (_I, [POINTER(vigil_action_result), _S]),
    "vigil_action_result_set_reason": (_I, [POINTER(vigil_action_result), _S]),
    "vigil_action_result_set_output": (_I, [POINTER(vigil_action_result), _S, _Z]),
    "vigil_action_registry_new": (_I, [POINTER(P), P]),
    "vigil_action_registry_free": (_V, [P]),
    "vigil_action_register": (_I, [P, POINTER(vigil_action_type)]),
    "vigil_action_buf_append": (_I, [P, _S, _Z]),
    # policies and the engine
    "vigil_policy_registry_new": (_I, [POINTER(P)]),
    "vigil_policy_registry_free": (_V, [P]),
    "vigil_policy_register": (_I, [P, POINTER(vigil_policy_type)]),
    "vigil_policy_ctx_aggregate": (_I, [P, _S, _I, _I64, POINTER(c_double)]),
    "vigil_policy_ctx_desired": (_I, [P, _S, POINTER(c_char_p)]),
    "vigil_policy_ctx_desired_number": (_I, [P, _S, _S, POINTER(c_double)]),
    "vigil_policy_ctx_series": (_S, [P]),
    "vigil_policy_ctx_now": (_I64, [P]),
    "vigil_policy_ctx_policy": (_S, [P]),
    "vigil_engine_new": (_I, [POINTER(P), POINTER(vigil_engine_options)]),
    "vigil_engine_free": (_V, [P]),
    "vigil_engine_load": (_I, [P, P]),
    "vigil_engine_ingest": (_I, [P, P]),
    "vigil_engine_tick": (_I, [P, _I64]),
    "vigil_engine_action_result": (_I, [P, POINTER(vigil_action_result)]),
    "vigil_engine_set_desired": (_I, [P, _S, _S]),
    "vigil_engine_policies_json": (_I, [P, POINTER(vigil_buf)]),
    "vigil_engine_decisions_json": (_I, [P, _I64, _Z, POINTER(vigil_buf)]),
    "vigil_engine_stats_get": (_I, [P, POINTER(vigil_engine_stats)]),
    # collectors and the agent
    "vigil_collector_registry_new": (_I, [POINTER(P)]),
    "vigil_collector_registry_free": (_V, [P]),
    "vigil_collector_register": (_I, [P, POINTER(vigil_collector_type)]),
    "vigil_agent_new": (_I, [POINTER(P), P, POINTER(vigil_agent_options)]),
    "vigil_agent_free": (_V, [P]),
    "vigil_agent_collect_once": (_I, [P, P, _I64]),
    "vigil_agent_step": (_I, [P, _I64, POINTER(c_int64)]),
    "vigil_agent_flush": (_I, [P, _I64]),
    "vigil_agent_id": (_S, [P]),
    "vigil_agent_collector_count": (_Z, [P]),
    # hub
    "vigil_hub_new": (_I, [POINTER(P), POINTER(vigil_hub_options)]),
    "vigil_hub_start": (_I, [P]),
    "vigil_hub_stop": (_V, [P]),
    "vigil_hub_free": (_V, [P]),
    "vigil_hub_ingest": (_I, [P, P, POINTER(vigil_hub_ingest_result)]),
    "vigil_hub_stats_get": (_I, [P, POINTER(vigil_hub_stats)]),
    "vigil_hub_store": (P, [P]),
    "vigil_hub_engine": (P, [P]),
    "vigil_hub_mount": (_I, [P, P]),
    "vigil_hub_action_request": (_I, [P, POINTER(vigil_action_request), POINTER(vigil_buf)]),
    "vigil_hub_attach_remediator": (_I, [P, POINTER(vigil_remediator_options), POINTER(P)]),
    "vigil_hub_config_load": (_I, [POINTER(P), _S, POINTER(vigil_config_options)]),
    "vigil_hub_config_load_string": (
        _I,
        [POINTER(P), _S, _Z, _S, POINTER(vigil_config_options)],
    ),
    "vigil_hub_config_free": (_V, [P]),
    "vigil_hub_config_hub": (POINTER(vigil_hub_options), [P]),
    "vigil_hub_config_remediator": (P, [P]),
    # remediator and audit
    "vigil_remediator_new": (_I, [POINTER(P), POINTER(vigil_remediator_options)]),
    "vigil_remediator_start": (_I, [P]),
    "vigil_remediator_stop": (_V, [P]),
    "vigil_remediator_free": (_V, [P]),
    "vigil_remediator_submit": (_I, [P, POINTER(vigil_action_request), vigil_action_done_cb, P]),
    "vigil_remediator_submit_audited": (
        _I,
        [P, POINTER(vigil_action_request), vigil_remediator_result_cb, P],
    ),
    "vigil_remediator_release": (_I, [P, _S, _S, POINTER(c_int)]),
    "vigil_remediator_audit": (P, [P]),
    "vigil_remediator_store": (P, [P]),
    "vigil_remediator_config_options": (POINTER(vigil_remediator_options), [P]),
    "vigil_audit_open": (_I, [POINTER(P), POINTER(vigil_audit_options)]),
    "vigil_audit_free": (_V, [P]),
    "vigil_audit_append": (_I, [P, _S, _S, _S, POINTER(c_int64), P]),
    "vigil_audit_head": (_I, [P, POINTER(c_int64), P]),
    "vigil_audit_verify": (_I, [P, POINTER(vigil_audit_report)]),
    "vigil_audit_verify_checkpoint": (_I, [P, _I64, _S, POINTER(vigil_audit_report)]),
    # http
    "vigil_api_new": (_I, [POINTER(P), POINTER(vigil_api_options)]),
    "vigil_api_free": (_V, [P]),
    "vigil_httpd_new": (_I, [POINTER(P), P, POINTER(vigil_httpd_options)]),
    "vigil_httpd_start": (_I, [P]),
    "vigil_httpd_port": (_I, [P]),
    "vigil_httpd_stop": (_V, [P]),
    "vigil_httpd_free": (_V, [P]),
}

_maj, _min, _pat = c_int(), c_int(), c_int()
lib.vigil_version.restype = c_char_p
lib.vigil_version.argtypes = [POINTER(c_int), POINTER(c_int), POINTER(c_int)]
version = lib.vigil_version(ctypes.byref(_maj), ctypes.byref(_min), ctypes.byref(_pat)).decode()
version_info = (_maj.value, _min.value, _pat.value)
check_version(*version_info, path=path)

for _name, (_res, _args) in _PROTOS.items():
    try:
        _fn = getattr(lib, _name)
    except AttributeError:
        raise ImportError("vigil: %s (version %s) lacks %s" % (path, version, _name)) from None
    _fn.restype = _res
    _fn.argtypes = _args

