"""Test handler: always raises."""


def handler(event, context):
    context.getLogger().info("about to fail")
    raise ValueError(f"bad input: {event.get('value')!r}")
