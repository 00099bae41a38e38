"""Reliability test handler: sleeps event["seconds"] only while the file event["marker"] exists (once)."""

import os
import time


def handler(event, context):
    try:
        os.remove(event["marker"])
    except FileNotFoundError:
        return {"slow": False}
    time.sleep(float(event.get("seconds", 1)))
    return {"slow": True}
