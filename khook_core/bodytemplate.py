"""Webhook body templates, compiled when the hooks load.

A hook's ``webhook.body`` is any JSON value whose strings may hold the prompt placeholders
(``{{.ResourceName}}`` …) and ``{{.Prompt}}``. Compiling it here, below both ``hooks`` (which
refuses a bad template at load) and ``dispatch.webhook`` (which fills it per request), keeps the
hook model free of the dispatchers and of the HTTP client they bring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from khook_core import prompt

PROMPT_PLACEHOLDER: Final = "Prompt"
"""Webhook-only placeholder: the whole rendered prompt (instructions and event data block)."""


class PromptSlot:
    """Marks where ``{{.Prompt}}`` goes in a compiled string."""


PROMPT = PromptSlot()
Segment = str | prompt.Placeholder | PromptSlot


def compile_body(body: Any) -> Any:
    """The template with every string replaced by a tuple of segments.

    Raises:
        prompt.TemplateError: an unknown placeholder or ``{{ }}`` syntax in some string.
    """
    if isinstance(body, str):
        return _compile_string(body)
    if isinstance(body, dict):
        return {str(k): compile_body(v) for k, v in body.items()}
    if isinstance(body, list):
        return [compile_body(v) for v in body]
    return body


def validate_body_template(body: Any) -> None:
    """For load-time checks (hooks): raises ``prompt.TemplateError`` like a prompt would."""
    compile_body(body)


@dataclass(frozen=True)
class CompiledBody:
    """A body template compiled when the hooks loaded (``Target.options[COMPILED_BODY]``)."""

    value: Any


COMPILED_BODY: Final = "compiledBody"
"""The target option holding the ``CompiledBody``; hooks set it, so a bad template never loads."""


def _compile_string(text: str) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    pos = 0
    for match in prompt.PLACEHOLDER.finditer(text):
        if match.group(1) != PROMPT_PLACEHOLDER or match.group(2) is not None:
            continue
        segments.extend(_compile_chunk(text[pos : match.start()]))
        segments.append(PROMPT)
        pos = match.end()
    segments.extend(_compile_chunk(text[pos:]))
    return tuple(segments)


def _compile_chunk(chunk: str) -> tuple[str | prompt.Placeholder, ...]:
    if not chunk.strip():  # compile_template rejects blank prompts; blank text is fine here
        return (chunk,) if chunk else ()
    return prompt.compile_template(chunk).segments
