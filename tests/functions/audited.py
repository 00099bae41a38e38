"""
Test handler of the feature audit: sleeps ``event["seconds"]`` (default 0), appends its start time to
``event["count_file"]`` when given (its own run count), and fails when ``event["fail"]`` is ``"always"``,
or ``"first"`` on its first run. Returns the event's ``x`` and its run count.
"""

import time


def handler(event, context):
    started = time.time()
    runs = 0
    if event.get("count_file"):
        with open(event["count_file"], "a+", encoding="utf-8") as count:
            count.write(f"{started}\n")
            count.seek(0)
            runs = len(count.read().splitlines())
    time.sleep(float(event.get("seconds", 0)))
    fail = event.get("fail")
    if fail == "always" or (fail == "first" and runs == 1):
        raise RuntimeError(f"failing as asked ({fail}, run {runs})")
    return {"x": event.get("x"), "runs": runs}
