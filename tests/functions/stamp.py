"""Test handler: sleeps, reporting when it started and ended (to observe overlap of invocations)."""

import os
import time


def handler(event, context):
    started = time.time()
    time.sleep(float(event.get("seconds", 0.5)))
    return {"started": started, "ended": time.time(), "pid": os.getpid()}
