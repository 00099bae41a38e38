"""Guards every process of a test deployment: nothing leaves loopback (``tests/loopback_guard.py``).

Loaded from its file, so that the deployment's ``sys.path`` (and which provider it imports) is unchanged.
"""

import importlib.util
import os
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "fgs_loopback_guard", Path(__file__).resolve().parent.parent / "loopback_guard.py"
)
assert _spec is not None
assert _spec.loader is not None
_guard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guard)
_record = os.environ.get(_guard.RECORD_ENV)
_guard.install(Path(_record) if _record else None)
