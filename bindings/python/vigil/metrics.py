"""Metrics (samples) and batches."""

import ctypes
import math

from . import _lib
from . import errors
from ._handle import Buf, Handle, b, s

lib = _lib.lib


class Metric:
    """One sample: name, value, timestamp (ms since the epoch), tags and, for a
    failed collection, an error text (then the value is NaN).

    Plain Python data: validation happens when it enters a Batch (or
    ``validate()``)."""

    __slots__ = ("name", "value", "ts_ms", "tags", "error")

    def __init__(self, name, value, ts_ms, tags=None, error=None):
        self.name = name
        self.value = float("nan") if error is not None and value is None else float(value)
        self.ts_ms = int(ts_ms)
        self.tags = dict(tags or {})
        self.error = error

    def __repr__(self):
        return "Metric(%r, %r, %r, tags=%r%s)" % (
            self.name,
            self.value,
            self.ts_ms,
            self.tags,
            ", error=%r" % self.error if self.error is not None else "",
        )

    def __eq__(self, other):
        if not isinstance(other, Metric):
            return NotImplemented
        same_value = self.value == other.value or (
            math.isnan(self.value) and math.isnan(other.value)
        )
        return (
            self.name == other.name
            and same_value
            and self.ts_ms == other.ts_ms
            and self.tags == other.tags
            and self.error == other.error
        )

    __hash__ = None

    def _c(self):
        """A vigil_metric pointing at bytes kept in the returned tuple."""
        keep = []
        tags = sorted((b(k), b(v)) for k, v in self.tags.items())
        arr = (_lib.vigil_tag * max(len(tags), 1))()
        for i, (k, v) in enumerate(tags):
            arr[i].key = k
            arr[i].value = v
        keep.append(tags)
        m = _lib.vigil_metric()
        m.name = b(self.name)
        m.value = self.value
        m.ts_ms = self.ts_ms
        m.tags = arr
        m.ntags = len(tags)
        m.error = b(self.error)
        return m, (arr, keep)

    @classmethod
    def _from_c(cls, m):
        obj = cls.__new__(cls)
        obj.name = m.name.decode("utf-8", "replace")
        obj.value = m.value
        obj.ts_ms = m.ts_ms
        n = m.ntags
        if n:
            tags = m.tags
            obj.tags = {t.key.decode("utf-8", "replace"): t.value.decode("utf-8", "replace")
                        for t in (tags[i] for i in range(n))}
        else:
            obj.tags = {}
        err = m.error
        obj.error = err.decode("utf-8", "replace") if err else None
        return obj

    def validate(self):
        """Checks the metric against the model (vigil_metric_validate());
        raises the matching VigilError, e.g. BadNameError."""
        m, _keep = self._c()
        errors.check(lib.vigil_metric_validate(ctypes.byref(m)))

    def series_key(self):
        """The canonical series key, e.g. ``cpu{host="h1"}``."""
        m, _keep = self._c()
        with Buf() as buf:
            errors.check(lib.vigil_metric_series_key(buf.ref, ctypes.byref(m)))
            return buf.text()


class Batch(Handle):
    """A batch of metrics (vigil_batch): it validates and copies what is
    added. Not synchronised: use one batch from one thread at a time."""

    _what = "batch"

    def __init__(self, metrics=(), agent=None, batch_id=None):
        p = ctypes.c_void_p()
        errors.check(lib.vigil_batch_new(ctypes.byref(p)))
        self._ptr = p.value
        try:
            if agent is not None:
                self.agent = agent
            if batch_id is not None:
                self.batch_id = batch_id
            self.extend(metrics)
        except BaseException:
            self.close()
            raise

    def _release(self, ptr):
        lib.vigil_batch_free(ptr)

    @classmethod
    def _borrow(cls, ptr):
        """A view of a batch the library owns (in a callback); never freed."""
        obj = cls.__new__(cls)
        obj._ptr = ptr
        obj._borrowed = True
        return obj

    def close(self):
        if getattr(self, "_borrowed", False):
            self._ptr = None
            return
        super().close()

    def add(self, metric, value=None, ts_ms=None, tags=None, error=None):
        """Adds a Metric, or one built from (name, value, ts_ms, tags, error)."""
        if not isinstance(metric, Metric):
            metric = Metric(metric, value, ts_ms, tags, error)
        m, _keep = metric._c()
        errors.check(lib.vigil_batch_add(self._h, ctypes.byref(m)))

    def extend(self, metrics):
        for m in metrics:
            self.add(m)

    def clear(self):
        lib.vigil_batch_clear(self._h)

    def __len__(self):
        return lib.vigil_batch_count(self._h)

    def __getitem__(self, index):
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("batch index out of range")
        return Metric._from_c(lib.vigil_batch_get(self._h, index).contents)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def agent(self):
        return s(lib.vigil_batch_agent(self._h))

    @agent.setter
    def agent(self, value):
        errors.check(lib.vigil_batch_set_agent(self._h, b(value)))

    @property
    def batch_id(self):
        return s(lib.vigil_batch_id(self._h))

    @batch_id.setter
    def batch_id(self, value):
        errors.check(lib.vigil_batch_set_id(self._h, b(value)))

    def to_json(self):
        """The ingest body (POST /v1/ingest) of this batch."""
        with Buf() as buf:
            errors.check(lib.vigil_batch_encode_json(buf.ref, self._h))
            return buf.text()

    @classmethod
    def from_json(cls, text):
        """Decodes an ingest body strictly (vigil_batch_decode_json())."""
        raw = b(text)
        batch = cls()
        try:
            errors.check(lib.vigil_batch_decode_json(batch._h, raw, len(raw), None))
        except BaseException:
            batch.close()
            raise
        return batch

    def to_list(self):
        return list(self)

    def __repr__(self):
        if self.closed:
            return "<vigil.Batch closed>"
        return "<vigil.Batch %d metrics agent=%r id=%r>" % (len(self), self.agent, self.batch_id)
