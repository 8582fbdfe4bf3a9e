"""Python bindings of libvigil, the embeddable core of the Vigil
self-healing control plane, through ctypes (no compiled extension).

The library is found through $VIGIL_LIBRARY, then the libdir of
``pkg-config vigil``, then the system loader; its version is checked at
import (an incompatible one raises ImportError).
"""

from ._lib import path as library_path, version as library_version, version_info as library_version_info
from . import errors
from .errors import *  # noqa: F401,F403  (the VigilError hierarchy)
from .errors import VigilError
from .metrics import Batch, Metric
from .config import Config, ConfigMap
from .store import ActionRecord, Decision, Point, Series, Store, WriteResult
from .plugins import (
    Action,
    ActionContext,
    ActionRequest,
    ActionResult,
    ActionTypes,
    Collector,
    CollectorContext,
    CollectorTypes,
    ExecInfo,
    Outcome,
    Policy,
    PolicyContext,
    PolicyTypes,
    Registration,
    Verdict,
)
from .engine import Engine, EngineRequest, EngineStats
from .remediator import DISABLED, Audit, AuditReport, Remediator
from .hub import HTTPServer, Hub, HubStats, IngestResult
from .agent import Agent
from .manifest import DiffEntry, Drift, DriftItem, Manifest, Resource
from ._handle import LogRecord

__version__ = "0.4.0"
