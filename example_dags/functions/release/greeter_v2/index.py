"""The second release of ``greeter``: what the "release" example deploys (handler ``index.handler``)."""

from greeting import greeting


def handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    context.getLogger().info(f"greeting {name} from version {context.getVersion()}")
    return {"greeting": greeting(name), "release": 2, "version": context.getVersion()}
