"""FunctionGraph handler: square one number."""

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    x = event["x"]
    context.getLogger().info(f"squaring {x}")
    return {"x": x, "square": x * x}
