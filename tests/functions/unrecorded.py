"""Test handler without async status persistence (the platform's default): no status records."""


def handler(event, context):
    return {"done": True}
