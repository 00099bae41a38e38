"""A FunctionGraph handler released by the "release" example: this file is its first version."""


def handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    context.getLogger().info(f"greeting {name} from version {context.getVersion()}")
    return {"greeting": f"Hello, {name}.", "release": 1, "version": context.getVersion()}
