"""Test handler: reports environment variables set from its settings file."""

import os


def handler(event, context):
    return {"MODE": os.environ.get("MODE"), "greeting": context.getUserData("GREETING", "none")}
