"""Offline check of Terraform argument names against the google provider schema.

``terraform validate`` needs the provider binary, which is not always downloadable; this check
needs only the cached schema (see ``tf_schema``). It parses every ``*.tf`` file with python-hcl2,
and for each google resource and data source reports unknown arguments and blocks (with a
suggestion) and missing required arguments, as ``file:line: type.name: problem``.

Usage: ``python scripts/tf_check.py [DIR_OR_FILE ...]`` (default ``terraform``). Exit status 0
when clean, 1 when problems were found, 2 when the schema or a file could not be read.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import tf_schema
from hcl2.utils import SerializationOptions

# Classic python-hcl2 output: unquoted strings, nested blocks as lists of dicts.
HCL_OPTIONS = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)
META_ARGUMENTS = {
    "resource": frozenset(
        {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}
    ),
    "data": frozenset({"count", "for_each", "depends_on", "provider", "lifecycle"}),
}
CHECKED_PREFIX = "google"  # google and google-beta types; other providers are not checked


@dataclass(frozen=True)
class Declaration:
    """One ``resource`` or ``data`` block as parsed from a file."""

    kind: str
    type: str
    name: str
    body: Mapping[str, Any]
    file: str
    line: int

    @property
    def address(self) -> str:
        return (
            f"{self.type}.{self.name}"
            if self.kind == "resource"
            else f"data.{self.type}.{self.name}"
        )


@dataclass(frozen=True, order=True)
class Problem:
    """A finding, printed as ``file:line: address: message``."""

    file: str
    line: int
    address: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.address}: {self.message}"


def tf_files(paths: Iterable[Path]) -> list[Path]:
    """The ``*.tf`` files named or found (not recursively, like Terraform) in ``paths``."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.tf")) if path.is_dir() else [path])
    return files


def parse_declarations(files: Iterable[Path]) -> list[Declaration]:
    """Every resource and data block of ``files``."""
    found: list[Declaration] = []
    for file in files:
        text = file.read_text(encoding="utf-8")
        doc = hcl2.loads(text, serialization_options=HCL_OPTIONS)
        for kind in ("resource", "data"):
            for entry in doc.get(kind, []):
                for type_name, named in entry.items():
                    for name, body in named.items():
                        line = _line_of(text, kind, type_name, name)
                        found.append(Declaration(kind, type_name, name, body, str(file), line))
    return found


def check(declarations: Iterable[Declaration], schema: tf_schema.ProviderSchema) -> list[Problem]:
    """Problems of every google declaration; an empty list means all names are known."""
    problems: list[Problem] = []
    for decl in declarations:
        if not decl.type.startswith(CHECKED_PREFIX):
            continue
        block = schema.lookup(decl.kind, decl.type)
        if block is None:
            known = schema.known.get(decl.kind, frozenset())
            problems.append(
                Problem(
                    decl.file,
                    decl.line,
                    decl.address,
                    f"unknown {decl.kind} type{_hint(decl.type, known)}",
                )
            )
            continue
        for message in check_block(decl.body, block, META_ARGUMENTS[decl.kind]):
            problems.append(Problem(decl.file, decl.line, decl.address, message))
    return sorted(problems)


def check_block(
    body: Mapping[str, Any],
    block: tf_schema.BlockSchema,
    meta: frozenset[str] = frozenset(),
    where: str = "",
) -> Iterator[str]:
    """Messages for unknown and missing names in ``body`` and its nested blocks."""
    present = set(body)
    for name, value in body.items():
        if name in meta:
            continue
        if name == "dynamic":
            for label, spec in _dynamic_blocks(value):
                present.add(label)
                yield from _check_dynamic(label, spec, block, where)
        elif name in block.blocks:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Mapping):
                    yield from check_block(item, block.blocks[name], frozenset(), f"{where}{name}.")
        elif name not in block.attributes:
            known = block.attributes | set(block.blocks)
            yield f"unknown argument {where}{name}{_hint(name, known)}"
    for name in sorted(block.required - present):
        yield f"missing required argument {where}{name}"


def _check_dynamic(
    label: str, spec: Mapping[str, Any], block: tf_schema.BlockSchema, where: str
) -> Iterator[str]:
    if label not in block.blocks:
        yield f"unknown block {where}{label} in dynamic{_hint(label, set(block.blocks))}"
        return
    for content in spec.get("content", []):
        if isinstance(content, Mapping):
            yield from check_block(content, block.blocks[label], frozenset(), f"{where}{label}.")


def _dynamic_blocks(value: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for entry in value if isinstance(value, list) else [value]:
        if isinstance(entry, Mapping):
            for label, spec in entry.items():
                if isinstance(spec, Mapping):
                    yield label, spec


def _hint(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _line_of(text: str, kind: str, type_name: str, name: str) -> int:
    pattern = rf'^[ \t]*{kind}\s+"{re.escape(type_name)}"\s+"{re.escape(name)}"'
    match = re.search(pattern, text, flags=re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("terraform")])
    parser.add_argument("--cache-dir", type=Path, default=tf_schema.DEFAULT_CACHE_DIR)
    args = parser.parse_args(argv)
    files = tf_files(args.paths)
    if not files:
        print(f"tf-check: no .tf files in {', '.join(map(str, args.paths))}", file=sys.stderr)
        return 2
    try:
        declarations = parse_declarations(files)
        schema = tf_schema.load_schema({(d.kind, d.type) for d in declarations}, args.cache_dir)
    except (tf_schema.SchemaUnavailableError, OSError) as exc:
        print(f"tf-check: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # python-hcl2 raises lark errors for syntax problems
        print(f"tf-check: cannot parse Terraform: {exc}", file=sys.stderr)
        return 2
    problems = check(declarations, schema)
    for problem in problems:
        print(problem)
    checked = sum(d.type.startswith(CHECKED_PREFIX) for d in declarations)
    verdict = f"{len(problems)} problem(s)" if problems else "OK"
    print(
        f"tf-check: {checked} declarations in {len(files)} files against google provider "
        f"{schema.provider_version}: {verdict}",
        file=sys.stderr,
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
