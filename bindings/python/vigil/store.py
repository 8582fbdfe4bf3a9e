"""The store: open a URL (sqlite://PATH, sqlite::memory:), write batches,
query points, list the action ledger and the decisions."""

import collections
import ctypes
import queue
import threading

from . import _lib
from . import errors
from ._handle import Handle, b, s
from .metrics import Batch

lib = _lib.lib

#: One point of a query: a tuple (series, name, tags, ts_ms, value, error).
Point = collections.namedtuple("Point", "series name tags ts_ms value error")
#: One series: (series, name, tags).
Series = collections.namedtuple("Series", "series name tags")
WriteResult = collections.namedtuple("WriteResult", "written duplicate new_series")
#: One record of the actions ledger.
ActionRecord = collections.namedtuple(
    "ActionRecord",
    "id requested_ms action target params_json reason policy series dry_run status "
    "result_reason output duration_ms updated_ms audit_seq audit_hash",
)
#: One policy decision.
Decision = collections.namedtuple(
    "Decision", "id ts_ms policy series target action action_id decision reason"
)

_OPS = {"eq": 0, "ne": 1, "glob": 2, "not_glob": 3}
_GLOB_CHARS = set("*?[")


def _agg(name):
    out = ctypes.c_int()
    errors.check(lib.vigil_store_agg_parse(ctypes.byref(out), b(name)))
    return out.value


def build_query(name=None, match=None, start_ms=0, end_ms=0, step_ms=0, agg="mean", limit=0):
    """A vigil_store_query and the objects its pointers borrow. ``match`` maps
    a tag key to a value: exact, or a glob when the value holds * ? or [, or
    an explicit (op, value) pair with op one of eq ne glob not_glob."""
    keep = []
    q = _lib.vigil_store_query()
    q.version = 1
    if name is not None:
        q.name = b(name)
        q.name_op = _OPS["glob"] if _GLOB_CHARS & set(name) else _OPS["eq"]
    match = match or {}
    arr = (_lib.vigil_store_matcher * max(len(match), 1))()
    for i, (k, v) in enumerate(match.items()):
        if isinstance(v, tuple):
            op, v = v
            op = _OPS[op]
        else:
            op = _OPS["glob"] if _GLOB_CHARS & set(v) else _OPS["eq"]
        kb, vb = b(k), b(v)
        keep += [kb, vb]
        arr[i].key, arr[i].op, arr[i].value = kb, op, vb
    keep.append(arr)
    q.matchers = arr
    q.nmatchers = len(match)
    q.from_ms, q.to_ms, q.step_ms = int(start_ms), int(end_ms), int(step_ms)
    q.aggregate = _agg(agg)
    q.limit = int(limit)
    return q, keep


def _tags(series):
    return {s(series.tags[i].key): s(series.tags[i].value) for i in range(series.ntags)}


def _fields(rec, names):
    return [s(v) if isinstance(v, bytes) else v for v in (getattr(rec, n) for n in names)]


class Store(Handle):
    """An open store (vigil_store). Thread-safe: calls are serialised by the
    store. Do not call a store from inside one of its own iterations
    (``iter_query``) on the same thread: the store is busy until it ends."""

    _what = "store"

    def __init__(self, url, _borrowed_ptr=None, _owner=None):
        if _borrowed_ptr is not None:
            self._ptr = _borrowed_ptr
            self._owner = _owner  # keeps the owning hub or remediator alive
            return
        p = ctypes.c_void_p()
        errors.check(lib.vigil_store_open(ctypes.byref(p), b(url), None))
        self._ptr = p.value
        self._owner = None

    @classmethod
    def open(cls, url):
        """Opens (and creates) the store at ``url``: "sqlite:///abs/path.db",
        "sqlite://relative.db", "sqlite::memory:"."""
        return cls(url)

    def _release(self, ptr):
        if self._owner is None:
            lib.vigil_store_close(ptr)

    @property
    def scheme(self):
        return s(lib.vigil_store_scheme(self._h))

    def write(self, batch):
        """Writes a Batch (or an iterable of Metrics) in one transaction."""
        own = None
        if not isinstance(batch, Batch):
            batch = own = Batch(batch)
        try:
            r = _lib.vigil_store_write_result()
            r.version = 1
            errors.check(lib.vigil_store_write(self._h, batch._h, ctypes.byref(r)))
            return WriteResult(r.written, bool(r.duplicate), r.new_series)
        finally:
            if own is not None:
                own.close()

    def _run(self, fn, q, on_point):
        err = []

        def tramp(series, point, _payload):
            try:
                return on_point(series.contents, point.contents)
            except BaseException as e:  # stop the iteration, raise after
                err.append(e)
                return 1

        cb = _lib.vigil_store_point_cb(tramp)
        rc = fn(self._h, ctypes.byref(q), cb, None)
        if err:
            raise err[0]
        if rc < 0:
            errors.check(rc)
        return rc

    def query(self, name=None, match=None, start_ms=0, end_ms=0, step_ms=0, agg="mean", limit=0):
        """The points of the matching series in [start_ms, end_ms) (both 0:
        everything), raw or one per ``step_ms`` aggregated by ``agg`` (mean
        min max sum count last), as a list of Point tuples, series by series
        (by name, then tags), oldest first."""
        q, _keep = build_query(name, match, start_ms, end_ms, step_ms, agg, limit)
        out = []
        cache = {}

        def on_point(series, point):
            meta = cache.get(series.id)
            if meta is None:
                meta = cache[series.id] = (s(series.key), s(series.name), _tags(series))
            out.append(Point(meta[0], meta[1], dict(meta[2]), point.ts_ms, point.value,
                             s(point.error)))
            return 0

        self._run(lib.vigil_store_query_run, q, on_point)
        return out

    def iter_query(self, name=None, match=None, start_ms=0, end_ms=0, step_ms=0, agg="mean",
                   limit=0, buffer=1024):
        """As query(), as an iterator that streams: the store runs the query
        on a helper thread and at most ``buffer`` points wait in memory.
        Closing the iterator early stops the query."""
        q, keep = build_query(name, match, start_ms, end_ms, step_ms, agg, limit)
        items = queue.Queue(maxsize=max(1, int(buffer)))
        stop = threading.Event()
        done = object()
        cache = {}

        def on_point(series, point):
            meta = cache.get(series.id)
            if meta is None:
                meta = cache[series.id] = (s(series.key), s(series.name), _tags(series))
            item = Point(meta[0], meta[1], dict(meta[2]), point.ts_ms, point.value,
                         s(point.error))
            while not stop.is_set():
                try:
                    items.put(item, timeout=0.05)
                    return 0
                except queue.Full:
                    continue
            return 1

        def producer():
            outcome = None
            try:
                self._run(lib.vigil_store_query_run, q, on_point)
            except BaseException as e:
                outcome = e
            while not stop.is_set():
                try:
                    items.put((done, outcome), timeout=0.05)
                    break
                except queue.Full:
                    continue

        t = threading.Thread(target=producer, name="vigil-store-query", daemon=True)
        self._h  # raises ClosedError before a thread starts
        t.start()

        def gen():
            try:
                while True:
                    item = items.get()
                    if isinstance(item, tuple) and len(item) == 2 and item[0] is done:
                        if item[1] is not None:
                            raise item[1]
                        return
                    yield item
            finally:
                stop.set()
                t.join()
                del keep[:]

        return gen()

    def series(self, name=None, match=None):
        """The matching series as Series tuples."""
        q, _keep = build_query(name, match)
        out = []
        err = []

        def tramp(series, _payload):
            try:
                sr = series.contents
                out.append(Series(s(sr.key), s(sr.name), _tags(sr)))
                return 0
            except BaseException as e:
                err.append(e)
                return 1

        cb = _lib.vigil_store_series_cb(tramp)
        rc = lib.vigil_store_series_list(self._h, ctypes.byref(q), cb, None)
        if err:
            raise err[0]
        errors.check(rc)
        return out

    def latest(self, name=None, match=None):
        """The newest point of every matching series."""
        q, _keep = build_query(name, match)
        out = []

        def on_point(series, point):
            out.append(Point(s(series.key), s(series.name), _tags(series), point.ts_ms,
                             point.value, s(point.error)))
            return 0

        self._run(lib.vigil_store_latest, q, on_point)
        return out

    @staticmethod
    def _filter(since_ms, limit, status=None, target=None, policy=None, after_id=0):
        f = _lib.vigil_store_filter()
        f.version = 1
        f.since_ms, f.after_id, f.limit = int(since_ms), int(after_id), int(limit)
        f.status, f.target, f.policy = b(status), b(target), b(policy)
        return f

    def actions(self, since_ms=0, status=None, target=None, policy=None, limit=0):
        """The actions ledger (requests and their results), oldest first."""
        f = self._filter(since_ms, limit, status, target, policy)
        out = []

        def tramp(rec, _payload):
            out.append(ActionRecord(*_fields(rec.contents, ActionRecord._fields)))
            return 0

        cb = _lib.vigil_store_action_cb(tramp)
        errors.check(lib.vigil_store_action_list(self._h, ctypes.byref(f), cb, None))
        return out

    def decisions(self, since_ms=0, target=None, policy=None, limit=0):
        """The policy decisions, in id order."""
        f = self._filter(since_ms, limit, None, target, policy)
        out = []

        def tramp(rec, _payload):
            out.append(Decision(*_fields(rec.contents, Decision._fields)))
            return 0

        cb = _lib.vigil_store_decision_cb(tramp)
        errors.check(lib.vigil_store_decision_list(self._h, ctypes.byref(f), cb, None))
        return out
