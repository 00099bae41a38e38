"""Test handler: does nothing (benchmarks)."""


def handler(event, context):
    return None
