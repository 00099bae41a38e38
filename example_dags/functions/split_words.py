"""FunctionGraph handler: split a text into lower-case words."""

import re
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    text = event.get("text", "")
    words = re.findall(r"[a-z0-9']+", text.lower())
    context.getLogger().info(f"split {len(text)} characters into {len(words)} words")
    return {"words": words}
