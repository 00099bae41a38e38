"""Test handler: the runtime process dies mid-invocation."""

import os


def handler(event, context):
    os._exit(3)
