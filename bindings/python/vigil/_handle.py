"""What every wrapper of a C handle shares: close(), the context manager,
``__del__`` as a safety net, and the adapters of C callbacks that several
objects take (the logger, the clock)."""

import atexit
import collections
import ctypes
import itertools
import sys
import threading
import weakref

from . import _lib
from . import errors


_seq = itertools.count()
_live = {}
_live_lock = threading.Lock()


def _close_all():
    """At exit, closes what is still open, newest first, while the interpreter
    can still run callbacks the library's threads make (a hub's evaluator
    calling a Python policy)."""
    with _live_lock:
        refs = sorted(_live.items(), reverse=True)
        _live.clear()
    for _n, ref in refs:
        obj = ref()
        if obj is not None:
            try:
                obj.close()
            except Exception:
                pass


atexit.register(_close_all)


class Handle:
    """Owns one C handle. ``close()`` releases it (idempotent); using the object
    afterwards raises ``ClosedError``. ``__del__`` closes a handle the program
    forgot, as a safety net only: close explicitly, or use ``with``. Handles
    still open at interpreter exit are closed, newest first."""

    _what = "object"
    _ptr = None
    _seqno = None

    def _track(self):
        """Registers the object for the close at exit; call once _ptr is set."""
        n = next(_seq)
        self._seqno = n
        with _live_lock:
            _live[n] = weakref.ref(self)

    def _release(self, ptr):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @property
    def _h(self):
        if not self._ptr:
            raise errors.ClosedError("%s is closed" % self._what, code=errors.ECLOSED)
        return self._ptr

    @property
    def closed(self):
        return not self._ptr

    def close(self):
        ptr, self._ptr = self._ptr, None
        if self._seqno is not None:
            with _live_lock:
                _live.pop(self._seqno, None)
            self._seqno = None
        if ptr:
            self._release(ptr)

    def __enter__(self):
        return self

    def __exit__(self, etype, evalue, tb):
        try:
            self.close()
        except errors.VigilError:
            if etype is None:
                raise
        return False

    def __del__(self):
        if sys is None or sys.is_finalizing():
            return
        try:
            self.close()
        except Exception:
            pass


def b(text):
    """str -> bytes for a C string (None stays None). A NUL byte in a str
    would end the C string early (ctypes truncates silently: "a\\0b" would
    reach the library as "a"), so it raises ValueError instead. bytes pass
    unchanged: binary data (an audit key) goes to C with its length."""
    if text is None:
        return None
    if isinstance(text, bytes):
        return text
    raw = str(text).encode("utf-8")
    if b"\0" in raw:
        raise ValueError("a NUL byte cannot be passed as a C string: %r" % (raw[:64],))
    return raw


def s(raw):
    """bytes from C -> str (None stays None)."""
    if raw is None:
        return None
    return raw.decode("utf-8", "replace")


LogRecord = collections.namedtuple("LogRecord", "level ts_ms component message fields")

LEVELS = {"debug": -1, "info": 0, "warn": 1, "error": 2, "off": 3}


def make_logger(callback, level="info"):
    """A vigil_logger struct sending records to ``callback(LogRecord)``, and
    the ctypes function object to keep alive as long as C may call it.
    ``callback`` None: the library's default (stderr). Records may come from
    any thread of the library; an exception in ``callback`` is swallowed."""
    lg = _lib.vigil_logger()
    lg.min_level = LEVELS[level] if isinstance(level, str) else int(level)
    if callback is None:
        return lg, None

    def tramp(rec, _payload):
        try:
            r = rec.contents
            name = _lib.lib.vigil_log_level_name(r.level).decode()
            callback(LogRecord(name, r.ts_ms, s(r.component), s(r.message), s(r.fields)))
        except BaseException:  # never let an exception cross into C
            pass

    fn = _lib.vigil_log_cb(tramp)
    lg.cb = fn
    return lg, fn


def make_clock(clock):
    """A vigil_clock_cb calling ``clock()`` (ms since the epoch), or None."""
    if clock is None:
        return None

    def tramp(_payload):
        try:
            return int(clock())
        except BaseException:
            return 0

    return _lib.vigil_clock_cb(tramp)


class Buf:
    """A vigil_buf the library fills, released on exit."""

    def __init__(self):
        self.buf = _lib.vigil_buf()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _lib.lib.vigil_buf_dispose(ctypes.byref(self.buf))
        return False

    @property
    def ref(self):
        return ctypes.byref(self.buf)

    def text(self):
        return self.buf.text()
