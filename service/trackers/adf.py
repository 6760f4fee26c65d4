"""Atlassian Document Format (the JSON tree Jira's REST v3 uses for rich text) flattened to plain text."""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = ["AdfNode", "adf_to_text"]


class AdfNode(msgspec.Struct):
    """One node of an ADF tree: a block (doc, paragraph, list, ...) or an inline (text, mention, ...)."""

    type: str
    text: str | None = None
    content: list[AdfNode] | None = None
    attrs: dict[str, Any] | None = None


# Inline nodes flow within a line; every other node is a block and ends one.
_INLINE = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status", "mediaInline", "placeholder"}
# Which attribute carries an inline node's visible text.
_INLINE_TEXT = {"mention": "text", "emoji": "shortName", "inlineCard": "url", "status": "text", "placeholder": "text"}


def adf_to_text(document: AdfNode) -> str:
    """The visible text of an ADF tree: inline text joined, each block on its own line(s)."""
    out: list[str] = []
    # An explicit stack, so a deeply nested document cannot exhaust Python's recursion limit.
    stack: list[AdfNode | str] = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            # A block ends its line once: nested blocks (a list item's paragraph) add no blank lines.
            if out and not out[-1].endswith("\n"):
                out.append(item)
            continue
        if item.type == "text":
            out.append(item.text or "")
        elif item.type == "hardBreak":
            out.append("\n")
        elif item.type in _INLINE_TEXT:
            value = (item.attrs or {}).get(_INLINE_TEXT[item.type])
            if isinstance(value, str):
                out.append(value)
        if item.type not in _INLINE:
            stack.append("\n")
        for child in reversed(item.content or []):
            stack.append(child)
    return re.sub(r"[ \t]+\n", "\n", "".join(out)).strip()
