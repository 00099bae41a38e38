"""FunctionGraph handler: count words and report the most frequent ones."""

from collections import Counter
from typing import Any


def handler(event: dict[str, Any] | list[str], context: Any) -> dict[str, Any]:
    # The event is a list of words, or an object holding one under "words" (what split_words returns).
    words = event if isinstance(event, list) else event.get("words", [])
    counts = Counter(words)
    top = [[word, count] for word, count in counts.most_common(3)]
    context.getLogger().info(f"counted {len(words)} words, {len(counts)} distinct")
    return {"total": len(words), "distinct": len(counts), "top": top}
