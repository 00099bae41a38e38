"""Test handler: returns the event and what the context reports."""


def handler(event, context):
    print("printed line")
    context.getLogger().info("echo called")
    return {
        "event": event,
        "request_id": context.getRequestID(),
        "function": context.getFunctionName(),
        "version": context.getVersion(),
        "alias": context.getAlias(),
        "package": context.getPackage(),
        "memory": context.getMemorySize(),
        "remaining_ms": context.getRemainingTimeInMilliSeconds(),
        "user_data": context.getUserData("GREETING"),
        "project_id": context.getProjectID(),
    }
