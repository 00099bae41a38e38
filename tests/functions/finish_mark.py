"""Test handler: sleeps event["seconds"], then appends a line to event["path"] (counts finished runs)."""

import time


def handler(event, context):
    time.sleep(float(event.get("seconds", 0)))
    with open(event["path"], "a", encoding="utf-8") as out:
        out.write(context.getRequestID() + "\n")
    return {"finished": True}
