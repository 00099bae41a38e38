"""Test handler: reports the memory size it runs with."""


def handler(event, context):
    return {"memory": context.getMemorySize()}
