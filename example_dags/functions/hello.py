"""A FunctionGraph handler: greets whoever the event names."""


def handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    context.getLogger().info(f"greeting {name}")
    return {"message": f"Hello, {name}!", "request_id": context.getRequestID()}
