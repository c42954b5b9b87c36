"""YAML loading that remembers line numbers, so configuration errors can say ``file:line``.

The parser itself (``khook_core.yamlparse``, PyYAML) is imported only for a file that has no
up-to-date pre-parsed form beside it (``khook_core.preparsed``): a function deployed from its
archive starts without loading PyYAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from khook_core.errors import ConfigError, Problem
from khook_core.linedict import LineDict, line_of, line_within

__all__ = ["UNREADABLE", "LineDict", "line_of", "line_within", "load_documents"]


UNREADABLE: Final = "cannot read"
"""How a problem with a file that could not be read starts (the CLI exits 2 for those)."""


def load_documents(path: Path) -> list[Any]:
    """All documents of a (possibly multi-document) YAML file; empty documents are skipped.

    The file's pre-parsed form is used when it was written from exactly this text (its hash
    matches); otherwise the YAML is parsed. Either way the caller validates the documents.

    Raises:
        ConfigError: the file cannot be read, is not valid YAML (with the line of the error) or
            writes a key twice in one mapping (one problem per repeated key, with its line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = f"{UNREADABLE}: {(exc.strerror or str(exc)).lower()}"
        raise ConfigError([Problem(str(path), None, problem)]) from exc
    from khook_core import preparsed

    docs = preparsed.documents(path, text)
    if docs is not None:
        return docs
    from khook_core.yamlparse import parse_documents

    return parse_documents(str(path), text)
