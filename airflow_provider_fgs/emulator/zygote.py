"""A small process that forks worker processes on request (a hand-rolled fork server).

The emulator's server process is big and multi-threaded, so it must not fork itself; and
``multiprocessing``'s spawn/forkserver methods re-import the caller's ``__main__`` in every child,
which is slow and unsafe for arbitrary scripts and test runners. The zygote imports only the worker
module, then for each request receives one end of a socket pair per worker wanted, forks, and each
child serves jobs on its socket. Children are reaped automatically (``SIGCHLD`` ignored); the zygote
exits when the server closes
its control socket.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from multiprocessing.connection import Connection

from airflow_provider_fgs.emulator.worker import worker_main

MAX_BATCH = 32


def serve(control: socket.socket) -> None:
    """Fork one worker per received socket; reply with the workers' pids on one line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 16, MAX_BATCH)
        except OSError:
            return
        if not message or not fds:
            return
        pids = []
        for fd in fds:
            pid = os.fork()
            if pid == 0:
                control.close()
                for other in fds:
                    if other != fd:
                        os.close(other)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # handlers may use subprocess
                try:
                    worker_main(Connection(fd))
                finally:
                    os._exit(0)
            pids.append(pid)
        for fd in fds:
            os.close(fd)
        try:
            control.sendall((" ".join(map(str, pids)) + "\n").encode())
        except OSError:
            return


def main() -> None:
    """Entry point: the control socket's file descriptor is the first argument."""
    serve(socket.socket(fileno=int(sys.argv[1])))


if __name__ == "__main__":
    main()
