"""Test handler: ``sleep`` on an instance that serves several requests at once (see sleep_shared.json)."""

import time


def handler(event, context):
    seconds = float(event.get("seconds", 1))
    time.sleep(seconds)
    return {"slept": seconds}
