"""Test handler: returns a plain string (not JSON)."""


def handler(event, context):
    return "plain text"
