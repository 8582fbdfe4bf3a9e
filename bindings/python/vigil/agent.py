"""The agent: collectors (built-in and Python ones) on their schedules."""

import ctypes

from . import _lib
from . import errors
from ._handle import Handle, b, make_logger, s
from .config import Config
from .metrics import Batch

lib = _lib.lib


class Agent(Handle):
    """An agent (vigil_agent) from an agent.yaml (text or a Config) and
    options. ``collector_types`` is a CollectorTypes it borrows. With
    ``offline=True`` (the default here) it has neither hub nor spool:
    collect_once() gathers samples without shipping; with hub_urls and a
    spool_path, step() and flush() ship them."""

    _what = "agent"

    def __init__(self, config=None, collector_types=None, offline=True, agent_id=None,
                 hub_urls=None, spool_path=None, token_env="", logger=None, log_level="warn"):
        own = None
        if config is not None and not isinstance(config, Config):
            config = own = Config(config, name="agent.yaml")
        o = _lib.vigil_agent_options()
        o.version = 1
        o.logger, self._logfn = make_logger(logger, log_level)
        o.agent_id = b(agent_id)
        urls = [b(u) for u in hub_urls or ()]
        arr = (ctypes.c_char_p * max(len(urls), 1))(*urls)
        o.hub_urls = arr if urls else None
        o.nhub_urls = len(urls)
        o.token_env = b(token_env)
        o.spool_path = b(spool_path)
        o.offline = int(bool(offline))
        if collector_types is not None:
            o.collector_types = collector_types._h
        self._types = collector_types
        p = ctypes.c_void_p()
        try:
            errors.check(lib.vigil_agent_new(ctypes.byref(p), config._h if config else None,
                                             ctypes.byref(o)))
        finally:
            if own is not None:
                own.close()
        self._ptr = p.value
        if collector_types is not None:
            collector_types._use()
        self._track()

    def _release(self, ptr):
        lib.vigil_agent_free(ptr)
        if self._types is not None:
            self._types._unuse()

    @property
    def id(self):
        return s(lib.vigil_agent_id(self._h))

    def __len__(self):
        return lib.vigil_agent_collector_count(self._h)

    def collect_once(self, gap_ms=0):
        """Runs every collector once; returns the Batch (host and global tags
        added). Rate collectors are read twice, gap_ms apart (0: 1 s)."""
        batch = Batch()
        try:
            errors.check(lib.vigil_agent_collect_once(self._h, batch._h, int(gap_ms)))
        except BaseException:
            batch.close()
            raise
        return batch

    def step(self, now_ms):
        """Does what is due at now_ms; returns the next deadline (ms)."""
        nxt = ctypes.c_int64()
        errors.check(lib.vigil_agent_step(self._h, int(now_ms), ctypes.byref(nxt)))
        return nxt.value

    def flush(self, timeout_ms=1000):
        errors.check(lib.vigil_agent_flush(self._h, int(timeout_ms)))
