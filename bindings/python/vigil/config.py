"""YAML documents read by libvigil's loader, and the view of a configuration
map that plug-ins receive in create."""

import ctypes

from . import _lib
from . import errors
from ._handle import Handle, b, s

lib = _lib.lib

NULL, SCALAR, LIST, MAP = 0, 1, 2, 3


def node_to_python(node):
    """A configuration node as Python data: maps -> dict, lists -> list,
    scalars -> str, null -> None (typed reads go through ConfigMap)."""
    if not node:
        return None
    kind = lib.vigil_config_node_kind(node)
    if kind == SCALAR:
        return s(lib.vigil_config_node_scalar(node))
    if kind == LIST:
        return [node_to_python(lib.vigil_config_node_at(node, i)) for i in range(lib.vigil_config_node_len(node))]
    if kind == MAP:
        out = {}
        for i in range(lib.vigil_config_node_len(node)):
            out[s(lib.vigil_config_node_key_at(node, i))] = node_to_python(
                lib.vigil_config_node_at(node, i)
            )
        return out
    return None


class Config(Handle):
    """A YAML document loaded by libvigil (vigil_config): ${VAR} expansion,
    limits and located errors as for every configuration file."""

    _what = "config"

    def __init__(self, text=None, name="<string>", path=None):
        p = ctypes.c_void_p()
        if path is not None:
            errors.check(lib.vigil_config_load_file(ctypes.byref(p), b(path), None))
        else:
            raw = b(text)
            errors.check(lib.vigil_config_load_string(ctypes.byref(p), raw, len(raw), b(name), None))
        self._ptr = p.value

    def _release(self, ptr):
        lib.vigil_config_free(ptr)

    def root(self, index=0):
        """The root node of document ``index`` (a raw pointer, borrowed)."""
        return lib.vigil_config_root(self._h, index)

    def get(self, key):
        """The node of top-level ``key`` (raw pointer, borrowed), or None."""
        return lib.vigil_config_node_get(self.root(), b(key)) or None

    def to_python(self):
        return node_to_python(self.root())


def yaml_node(value, name, keep, key=None):
    """Turns ``value`` (YAML text, or a Config) into a node pointer, keeping
    what owns it in ``keep``. With ``key``, the text is a document whose
    top-level ``key`` is taken; the document may also be the bare value."""
    if value is None:
        return None
    cfg = value if isinstance(value, Config) else Config(value, name=name)
    keep.append(cfg)
    root = cfg.root()
    if key is not None and lib.vigil_config_node_kind(root) == MAP:
        sub = lib.vigil_config_node_get(root, b(key))
        if sub:
            return sub
    return root


class ConfigMap:
    """The configuration map a plug-in's create receives (a rule of a policy,
    an action of remediator.yaml, an entry of `collectors:`). Valid only
    during create. Typed getters read with the library's scalar grammars
    and raise located errors ("rules.yaml:7:12: policies[0].limit: ...")."""

    def __init__(self, node):
        self._node = node

    def _live(self):
        if not self._node:
            raise errors.ClosedError("the configuration map is valid only during create",
                                     code=errors.ECLOSED)
        return self._node

    def __contains__(self, key):
        return bool(lib.vigil_config_node_get(self._live(), b(key)))

    def __getitem__(self, key):
        node = lib.vigil_config_node_get(self._live(), b(key))
        if not node:
            raise KeyError(key)
        return node_to_python(node)

    def get(self, key, default=None):
        node = lib.vigil_config_node_get(self._live(), b(key))
        return node_to_python(node) if node else default

    def to_dict(self):
        return node_to_python(self._live())

    @property
    def location(self):
        """``(file, line, column)`` of the map."""
        n = self._live()
        return (s(lib.vigil_config_node_file(n)), lib.vigil_config_node_line(n),
                lib.vigil_config_node_column(n))

    def _typed(self, fn, ctype, key, default):
        out = ctype()
        errors.check(fn(ctypes.byref(out), self._live(), b(key), default))
        return out.value

    def get_str(self, key, default=None):
        out = ctypes.c_char_p()
        errors.check(lib.vigil_config_get_string(ctypes.byref(out), self._live(), b(key), b(default)))
        return s(out.value)

    def get_int(self, key, default=0):
        return self._typed(lib.vigil_config_get_int, ctypes.c_int64, key, default)

    def get_float(self, key, default=0.0):
        return self._typed(lib.vigil_config_get_double, ctypes.c_double, key, default)

    def get_bool(self, key, default=False):
        return bool(self._typed(lib.vigil_config_get_bool, ctypes.c_int, key, int(default)))

    def get_duration_ms(self, key, default_ms=0):
        """A duration ("5m", "250ms") in milliseconds."""
        return self._typed(lib.vigil_config_get_duration, ctypes.c_int64, key, default_ms)

    def fail(self, key, message, code=errors.EVALUE):
        """Raises a VigilError located at ``key`` (the map itself when it is
        absent), formatted as the library's configuration errors are."""
        node = lib.vigil_config_node_get(self._live(), b(key)) if key else None
        lib.vigil_error_set_at(code, node or self._live(), b(message))
        raise errors.last_error(code)
