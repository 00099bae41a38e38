"""Integration handler: works for ``seconds`` (default 300), long enough to be cancelled."""

import time


def handler(event, context):
    time.sleep(float(event.get("seconds", 300)))
    return {"slept": event.get("seconds", 300)}
