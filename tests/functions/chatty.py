"""Test handler: writes more log than the 2000-byte tail holds."""


def handler(event, context):
    logger = context.getLogger()
    for i in range(int(event.get("lines", 200))):
        logger.info(f"line {i:04d} " + "x" * 40)
    return {"lines": event.get("lines", 200)}
