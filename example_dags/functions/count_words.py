"""FunctionGraph handler: count words and report the most frequent ones."""

from collections import Counter
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    words = event.get("words", [])
    counts = Counter(words)
    top = [[word, count] for word, count in counts.most_common(3)]
    context.getLogger().info(f"counted {len(words)} words, {len(counts)} distinct")
    return {"total": len(words), "distinct": len(counts), "top": top}
