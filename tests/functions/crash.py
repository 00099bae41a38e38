"""Test handler: the runtime process dies mid-invocation, after logging."""

import os


def handler(event, context):
    context.getLogger().info("about to crash")
    print("printed before the crash", flush=True)
    os._exit(3)
