"""Integration handler: waits ``seconds`` (default 300) in one-second steps, long enough to be cancelled.

A second long function beside ``long_job``: a ``force`` cancel stops every running async invocation of
its function, so the cancel test gives each of its two tasks a function of its own.
"""

import time


def handler(event, context):
    for _ in range(int(event.get("seconds", 300))):
        time.sleep(1)
    return {"waited": event.get("seconds", 300)}
