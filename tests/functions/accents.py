"""Test handler: logs more multi-byte text than the 2000-byte tail holds (3-byte characters)."""


def handler(event, context):
    logger = context.getLogger()
    for i in range(int(event.get("lines", 60))):
        logger.info("€" * 20 + "." * int(event.get("pad", 0)) + f" {i}")
    return {"ok": True}
