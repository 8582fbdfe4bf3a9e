"""The VigilError hierarchy: one class per status code, grouped in families.

Every failing call raises the class of its code, carrying ``.code`` (the
negative ``vigil_status``), ``.message`` (``vigil_error_last()``'s text, with
``file:line:col:`` in front for configuration errors) and ``.file``,
``.line``, ``.column`` when the error is located in a file. Branch on the
class or on ``.code``, never on the text.
"""

from . import _lib

OK = 0
ERROR = -1
ENOMEM = -2
EINVAL = -3
ERANGE = -4
ENOTFOUND = -5
EEXISTS = -6
EIO = -7
ELIMIT = -8
EJSON = -9
ETYPE = -10
EMISSING = -11
ENAME = -12
EVALUE = -13
EENCODING = -14
EYAML = -15
EUNKNOWNKEY = -16
EENV = -17
EALIAS = -18
EUNSUPPORTED = -19
EBUSY = -20
ETIMEOUT = -21
EFULL = -22
EREADONLY = -23
ECORRUPT = -24
EVERSION = -25
ECLOSED = -26
ENETWORK = -27
EHTTP = -28
EAUTH = -29
EPERM = -30
EOVERLOADED = -31
ECONFLICT = -32
ECHILD = -33


class VigilError(Exception):
    """A libvigil call failed. ``code`` is the vigil_status, ``message`` the
    library's text (``vigil_error_last()``)."""

    code = ERROR

    def __init__(self, message, code=None, file=None, line=0, column=0):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.file = file
        self.line = line
        self.column = column

    def __str__(self):
        return "%s (%s)" % (self.message, strerror(self.code))


# ---- families ----------------------------------------------------------------


class InvalidArgumentError(VigilError, ValueError):
    """A value or argument the library refuses (EINVAL, ERANGE, ETYPE, EMISSING,
    ENAME, EVALUE, EENCODING)."""


class ConfigError(VigilError, ValueError):
    """A document that cannot be read (EJSON, EYAML, EUNKNOWNKEY, EENV, EALIAS)."""


class LookupFailedError(VigilError, LookupError):
    """A named thing that is missing, present already or in conflict
    (ENOTFOUND, EEXISTS, ECONFLICT)."""


class ResourceError(VigilError):
    """A limit or a busy resource (ENOMEM, ELIMIT, EFULL, EBUSY, EOVERLOADED):
    EBUSY and EOVERLOADED are worth retrying later."""


class StorageError(VigilError):
    """Stored data or I/O (EIO, EREADONLY, ECORRUPT, EVERSION)."""


class StateError(VigilError):
    """The object cannot do this now or at all (EUNSUPPORTED, ECLOSED,
    ETIMEOUT)."""


class NetworkError(VigilError):
    """A peer or the network (ENETWORK, EHTTP)."""


class PermissionDeniedError(VigilError, PermissionError):
    """Refused (EPERM, EAUTH)."""


class ProcessError(VigilError):
    """A child process could not start or failed (ECHILD)."""


def _make(name, base, code, doc, extra=()):
    return type(name, (base,) + tuple(extra), {"code": code, "__doc__": doc})


UnclassifiedError = _make("UnclassifiedError", VigilError, ERROR, "VIGIL_ERROR")
OutOfMemoryError = _make("OutOfMemoryError", ResourceError, ENOMEM, "VIGIL_ENOMEM", (MemoryError,))
InvalidError = _make("InvalidError", InvalidArgumentError, EINVAL, "VIGIL_EINVAL")
RangeError = _make("RangeError", InvalidArgumentError, ERANGE, "VIGIL_ERANGE")
NotFoundError = _make("NotFoundError", LookupFailedError, ENOTFOUND, "VIGIL_ENOTFOUND")
ExistsError = _make("ExistsError", LookupFailedError, EEXISTS, "VIGIL_EEXISTS")
VigilIOError = _make("VigilIOError", StorageError, EIO, "VIGIL_EIO")
LimitError = _make("LimitError", ResourceError, ELIMIT, "VIGIL_ELIMIT")
JSONError = _make("JSONError", ConfigError, EJSON, "VIGIL_EJSON")
WrongTypeError = _make("WrongTypeError", InvalidArgumentError, ETYPE, "VIGIL_ETYPE", (TypeError,))
MissingError = _make("MissingError", InvalidArgumentError, EMISSING, "VIGIL_EMISSING")
BadNameError = _make("BadNameError", InvalidArgumentError, ENAME, "VIGIL_ENAME")
BadValueError = _make("BadValueError", InvalidArgumentError, EVALUE, "VIGIL_EVALUE")
EncodingError = _make("EncodingError", InvalidArgumentError, EENCODING, "VIGIL_EENCODING")
YAMLError = _make("YAMLError", ConfigError, EYAML, "VIGIL_EYAML")
UnknownKeyError = _make("UnknownKeyError", ConfigError, EUNKNOWNKEY, "VIGIL_EUNKNOWNKEY")
EnvError = _make("EnvError", ConfigError, EENV, "VIGIL_EENV")
AliasError = _make("AliasError", ConfigError, EALIAS, "VIGIL_EALIAS")
UnsupportedError = _make("UnsupportedError", StateError, EUNSUPPORTED, "VIGIL_EUNSUPPORTED")
BusyError = _make("BusyError", ResourceError, EBUSY, "VIGIL_EBUSY")
DeadlineError = _make("DeadlineError", StateError, ETIMEOUT, "VIGIL_ETIMEOUT", (TimeoutError,))
FullError = _make("FullError", ResourceError, EFULL, "VIGIL_EFULL")
ReadOnlyError = _make("ReadOnlyError", StorageError, EREADONLY, "VIGIL_EREADONLY")
CorruptError = _make("CorruptError", StorageError, ECORRUPT, "VIGIL_ECORRUPT")
VersionError = _make("VersionError", StorageError, EVERSION, "VIGIL_EVERSION")
ClosedError = _make("ClosedError", StateError, ECLOSED, "VIGIL_ECLOSED")
NetworkFailedError = _make("NetworkFailedError", NetworkError, ENETWORK, "VIGIL_ENETWORK")
HTTPStatusError = _make("HTTPStatusError", NetworkError, EHTTP, "VIGIL_EHTTP")
AuthError = _make("AuthError", PermissionDeniedError, EAUTH, "VIGIL_EAUTH")
NotPermittedError = _make("NotPermittedError", PermissionDeniedError, EPERM, "VIGIL_EPERM")
OverloadedError = _make("OverloadedError", ResourceError, EOVERLOADED, "VIGIL_EOVERLOADED")
ConflictError = _make("ConflictError", LookupFailedError, ECONFLICT, "VIGIL_ECONFLICT")
ChildError = _make("ChildError", ProcessError, ECHILD, "VIGIL_ECHILD")

#: code -> class
BY_CODE = {
    cls.code: cls
    for cls in list(globals().values())
    if isinstance(cls, type)
    and issubclass(cls, VigilError)
    and cls.__doc__
    and cls.__doc__.startswith("VIGIL_E")
}


def strerror(code):
    """The library's short description of a status code."""
    return _lib.lib.vigil_strerror(code).decode("utf-8", "replace")


def error_class(code):
    """The VigilError subclass of a status code (VigilError for an unknown one)."""
    return BY_CODE.get(code, VigilError)


def last_error(code=None):
    """The calling thread's last error as an exception instance. ``code`` (the
    value the call returned) wins over the recorded code when they differ."""
    e = _lib.lib.vigil_error_last().contents
    rec = e.code
    msg = (e.message or b"").decode("utf-8", "replace")
    file = e.file.decode("utf-8", "replace") if e.file else None
    if code is None:
        code = rec
    if not msg or rec != code:
        msg = msg if rec == code and msg else strerror(code)
        if rec != code:
            file = None
    return error_class(code)(msg, code=code, file=file, line=e.line, column=e.column)


def check(rc):
    """Raises the exception of ``rc`` when it is negative; returns it otherwise."""
    if rc < 0:
        raise last_error(rc)
    return rc
