"""A YAML file's pre-parsed form: its documents as JSON, next to it, keyed by the YAML's hash.

A function's archive (``scripts/package.py``) carries ``.<name>.parsed.json`` beside every
configuration file: the documents PyYAML made of it, with the lines ``LineDict`` remembers,
and the sha256 of the text they came from. ``yamlfile.load_documents`` uses that form only
when the hash matches the file as it is now (otherwise it parses the YAML), so a function
starts without importing PyYAML; the documents are validated by the same models either way,
and a bad configuration still fails the start.

A file that does not parse, or holds a value JSON cannot carry (a timestamp, binary), gets no
pre-parsed form: the YAML is parsed, and its problems reported, as without one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Final

from khook_core.errors import ConfigError
from khook_core.linedict import LineDict

FORMAT: Final = 1
"""Bumped when the encoding changes: an older form is then ignored, never misread."""


def sidecar(path: Path) -> Path:
    """Where the pre-parsed form of the YAML file ``path`` lives."""
    return path.with_name(sidecar_name(path.name))


def sidecar_name(name: str) -> str:
    """``a.yaml`` -> ``.a.yaml.parsed.json`` (hidden; not a ``.yaml``, so no loader lists it)."""
    return f".{name}.parsed.json"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def encode(text: str) -> str | None:
    """The pre-parsed form of a YAML text; None when it has none (see the module docstring)."""
    from khook_core.yamlparse import parse_documents

    try:
        docs = parse_documents("", text)
        encoded = [_encode(doc) for doc in docs]
    except (ConfigError, _NotJson):
        return None
    return json.dumps(
        {"format": FORMAT, "sha256": text_hash(text), "documents": encoded},
        ensure_ascii=True,  # plain ASCII: writable as UTF-8 whatever the strings hold
        separators=(",", ":"),
    )


def documents(path: Path, text: str) -> list[Any] | None:
    """The documents of ``path`` (whose content is ``text``) from its pre-parsed form, or None
    when there is none, it is unreadable, or it was written from another text."""
    try:
        form = json.loads(sidecar(path).read_text(encoding="utf-8"))
        if form["format"] != FORMAT or form["sha256"] != text_hash(text):
            return None
        return [_decode(doc) for doc in form["documents"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


class _NotJson(Exception):
    """A document holds a value the JSON form cannot carry."""


def _encode(value: Any) -> Any:
    """Containers become one-key objects (``m``: a mapping with its lines, ``a``: a list);
    scalars stay JSON scalars."""
    if isinstance(value, LineDict):
        pairs = [
            [key, _encode(item), value.key_lines[key], *value.value_text.get(key, (None, None))]
            for key, item in value.items()
        ]
        return {"m": pairs, "l": value.line}
    if isinstance(value, list):
        return {"a": [_encode(item) for item in value]}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise _NotJson(type(value).__name__)


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "a" in value:
        return [_decode(item) for item in value["a"]]
    result = LineDict()
    result.line = value["l"]
    result.key_lines = {}
    result.value_text = {}
    for key, item, key_line, text_line, written in value["m"]:
        result[key] = _decode(item)
        result.key_lines[key] = key_line
        if text_line is not None:
            result.value_text[key] = (text_line, written)
    return result
