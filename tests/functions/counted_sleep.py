"""Test handler: appends one line to ``event["count_file"]`` (its own run count), then sleeps."""

import os
import time


def handler(event, context):
    with open(event["count_file"], "a", encoding="utf-8") as runs:
        runs.write(f"{os.getpid()} {time.time()}\n")
    time.sleep(float(event.get("seconds", 15)))
    return {
        "slept": float(event.get("seconds", 15)),
        "index": event.get("index"),
        "request_id": context.getRequestID(),
    }
