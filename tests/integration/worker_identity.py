"""The ``[core] hostname_callable`` of the production-shaped deployment's Celery workers.

Both workers run on this one machine, so the default callable (the FQDN) would give every task
instance the same ``hostname``. Each worker is started with ``FGS_WORKER_NAME`` set to its own name,
and the tasks it runs inherit it, so the REST API's task instances say which worker ran them.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """The worker's name (``FGS_WORKER_NAME``), or the FQDN outside a named worker."""
    return os.environ.get("FGS_WORKER_NAME") or socket.getfqdn()
