"""Integration handler: waits ``seconds`` (default 300) in one-second steps, long enough to be cancelled.

A second long function beside ``long_job``, so that each task of the cancel test has a function and a
status record of its own.
"""

import time


def handler(event, context):
    for _ in range(int(event.get("seconds", 300))):
        time.sleep(1)
    return {"waited": event.get("seconds", 300)}
