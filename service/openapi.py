"""OpenAPI helpers for operations whose body the handler decodes itself."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["inline_schema"]


def inline_schema(struct_type: type[Any]) -> dict[str, Any]:
    """msgspec's JSON Schema of ``struct_type`` with every ``$ref`` replaced by its definition."""
    raw = msgspec.json.schema(struct_type)
    definitions: dict[str, Any] = raw.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(raw)
    return resolved
