"""Test handler: returns the value it is given (a list a mapped task can expand over, or a scalar)."""


def handler(event, context):
    return event.get("value")
