"""A helper module shipped in the same zip as the handler."""


def greeting(name: str) -> str:
    return f"Hello, {name}!"
