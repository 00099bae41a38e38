"""Test handler with a 1 s timeout that sleeps longer when asked."""

import time


def handler(event, context):
    time.sleep(float(event.get("seconds", 5)))
    return "finished"
