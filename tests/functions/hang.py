"""Test handler with a 1 s timeout: logs ``event["lines"]`` lines, then hangs past its timeout."""

import time


def handler(event, context):
    logger = context.getLogger()
    for i in range(int(event.get("lines", 3))):
        logger.info(f"working {i:04d} " + "é" * 10)
    logger.info("waiting for the database")
    time.sleep(30)
    return "finished"
