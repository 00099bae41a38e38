"""Test handler for batches: records its own run of an item (``count_file`` gets the item's index), sleeps
``seconds``, fails when ``fail`` is set (or, with ``fail_first``, on its first run of the item), and returns
the index doubled."""

import time


def handler(event, context):
    index = event["index"]
    with open(event["count_file"], "a+", encoding="utf-8") as runs:
        runs.write(f"{index}\n")
        runs.seek(0)
        this_run = runs.read().split().count(str(index))
    time.sleep(float(event.get("seconds", 0)))
    if event.get("fail") or (event.get("fail_first") and this_run == 1):
        raise ValueError(f"item {index} was told to fail (run {this_run})")
    return {"index": index, "doubled": index * 2}
