"""Argument names of google provider resources, taken from the ``@cdktf/provider-google`` package.

Terraform cannot check attribute names offline (``validate`` needs the provider binary), but the
npm package ``@cdktf/provider-google`` ships ``package/.jsii``: a JSON description of every
resource, generated from google provider 6.50.0. Each resource class has a ``<Class>Config``
struct whose properties carry ``optional`` and a docs link whose anchor is the HCL name.

This module fetches the package once with ``npm pack`` into ``.cache/tf-schema/`` (MPL-2.0, not
committed), derives the allowed and required names of the types we use, and caches that compact
result as JSON, so later runs never read the 100 MB assembly. It is a typo check, not the source
of truth: 7.x additions are missing and provider-side validation is not modelled.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE = "@cdktf/provider-google"
PACKAGE_VERSION = "16.12.1"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE_DIR = ROOT / ".cache" / "tf-schema"
TARBALL = f"cdktf-provider-google-{PACKAGE_VERSION}.tgz"
DERIVED = f"schema-{PACKAGE_VERSION}.json"
# Bumped when the derived JSON layout changes, so an old cache is rebuilt instead of misread.
DERIVED_FORMAT = 1

KINDS = ("resource", "data")
_BASES = {"cdktf.TerraformResource": "resource", "cdktf.TerraformDataSource": "data"}
_TYPE_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/hashicorp/google/([^/]+)/docs/"
    r"(resources|data-sources)/\S+ (\w+)\}"
)
_ARG_LINK = re.compile(r"\{@link https://registry\.terraform\.io/\S+#(\w+) ")


class SchemaUnavailableError(RuntimeError):
    """The provider package could not be fetched or read; the message says what to do."""


@dataclass(frozen=True)
class BlockSchema:
    """Names allowed in one resource body or nested block."""

    attributes: frozenset[str]
    required: frozenset[str]
    blocks: Mapping[str, BlockSchema] = field(default_factory=dict)

    def allows(self, name: str) -> bool:
        return name in self.attributes or name in self.blocks

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": sorted(self.attributes),
            "required": sorted(self.required),
            "blocks": {name: block.to_json() for name, block in sorted(self.blocks.items())},
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> BlockSchema:
        return cls(
            attributes=frozenset(doc["attributes"]),
            required=frozenset(doc["required"]),
            blocks={name: cls.from_json(sub) for name, sub in doc["blocks"].items()},
        )


@dataclass(frozen=True)
class ProviderSchema:
    """Derived schemas of the requested types plus the names of every known type."""

    provider_version: str
    known: Mapping[str, frozenset[str]]  # kind -> every type name the provider has
    types: Mapping[str, Mapping[str, BlockSchema]]  # kind -> type name -> schema

    def lookup(self, kind: str, type_name: str) -> BlockSchema | None:
        return self.types.get(kind, {}).get(type_name)


def load_schema(
    wanted: Iterable[tuple[str, str]], cache_dir: Path = DEFAULT_CACHE_DIR
) -> ProviderSchema:
    """Schemas for ``wanted`` (kind, type) pairs, from the derived cache or the package.

    Types the provider does not have are simply absent from the result (``known`` says so).

    Raises:
        SchemaUnavailableError: the package is not cached and ``npm pack`` failed.
    """
    wanted = {(kind, name) for kind, name in wanted if kind in KINDS}
    derived_path = cache_dir / DERIVED
    cached = _read_derived(derived_path)
    if cached is not None and _covers(cached, wanted):
        return cached
    assembly = _read_assembly(fetch_package(cache_dir))
    index = _index_types(assembly)
    keep = set(wanted)
    if cached is not None:  # keep what earlier runs derived, so the cache only grows
        keep |= {(kind, name) for kind in KINDS for name in cached.types.get(kind, {})}
    types: dict[str, dict[str, BlockSchema]] = {kind: {} for kind in KINDS}
    structs: dict[str, BlockSchema] = {}
    for kind, name in sorted(keep):
        config_fqn = index[kind].get(name)
        if config_fqn is not None:
            types[kind][name] = _struct_schema(assembly["types"], config_fqn, structs)
    schema = ProviderSchema(
        provider_version=index["provider_version"],
        known={kind: frozenset(index[kind]) for kind in KINDS},
        types=types,
    )
    _write_derived(derived_path, schema)
    return schema


def fetch_package(cache_dir: Path) -> Path:
    """Path of the package tarball, downloaded with ``npm pack`` when it is not cached yet."""
    tarball = cache_dir / TARBALL
    if tarball.is_file():
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise SchemaUnavailableError(
            f"npm not found; install Node.js, or place {TARBALL} in {cache_dir} "
            f"(npm pack {PACKAGE}@{PACKAGE_VERSION})"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    spec = f"{PACKAGE}@{PACKAGE_VERSION}"
    result = subprocess.run(
        [npm, "pack", spec, "--pack-destination", str(cache_dir), "--silent"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not tarball.is_file():
        raise SchemaUnavailableError(
            f"npm pack {spec} failed (exit {result.returncode}): {result.stderr.strip()[-500:]}"
        )
    return tarball


def _read_assembly(tarball: Path) -> dict[str, Any]:
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            member = archive.extractfile("package/.jsii")
            if member is None:
                raise KeyError("package/.jsii")
            with member:
                assembly: dict[str, Any] = json.load(member)
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError) as exc:
        raise SchemaUnavailableError(
            f"cannot read package/.jsii from {tarball}: {exc}; delete the file and rerun"
        ) from exc
    return assembly


def _index_types(assembly: Mapping[str, Any]) -> dict[str, Any]:
    """Map every resource and data source type name to the fqn of its Config struct."""
    index: dict[str, Any] = {kind: {} for kind in KINDS}
    version = "unknown"
    for spec in assembly["types"].values():
        kind = _BASES.get(spec.get("base", ""))
        if kind is None:
            continue
        match = _TYPE_LINK.search(spec.get("docs", {}).get("summary", ""))
        params = spec.get("initializer", {}).get("parameters", [])
        config = next((p["type"].get("fqn") for p in params if p["name"] == "config"), None)
        if match is None or config is None:
            continue
        version = match.group(1)
        index[kind][match.group(3)] = config
    index["provider_version"] = version
    return index


def _struct_schema(types: Mapping[str, Any], fqn: str, memo: dict[str, BlockSchema]) -> BlockSchema:
    if fqn in memo:
        return memo[fqn]
    attributes: set[str] = set()
    required: set[str] = set()
    blocks: dict[str, BlockSchema] = {}
    for prop in types[fqn].get("properties", []):
        name = _hcl_name(prop)
        nested = _nested_struct(types, prop["type"])
        if nested is None:
            attributes.add(name)
        else:
            blocks[name] = _struct_schema(types, nested, memo)
        if not prop.get("optional"):
            required.add(name)
    memo[fqn] = BlockSchema(frozenset(attributes), frozenset(required), blocks)
    return memo[fqn]


def _hcl_name(prop: Mapping[str, Any]) -> str:
    """The snake_case HCL name: the docs link anchor, else converted from camelCase."""
    match = _ARG_LINK.search(json.dumps(prop.get("docs", {})))
    if match:
        return match.group(1)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", prop["name"]).lower()


def _nested_struct(types: Mapping[str, Any], type_ref: Mapping[str, Any]) -> str | None:
    """The struct fqn when ``type_ref`` is a nested block (struct, list of structs, or union)."""
    fqn = type_ref.get("fqn")
    if fqn is not None:
        spec = types.get(fqn)
        return fqn if spec is not None and spec.get("datatype") else None
    collection = type_ref.get("collection")
    if collection is not None:
        return _nested_struct(types, collection["elementtype"])
    for option in type_ref.get("union", {}).get("types", []):
        found = _nested_struct(types, option)
        if found is not None:
            return found
    return None


def _covers(schema: ProviderSchema, wanted: set[tuple[str, str]]) -> bool:
    """True when every wanted type is derived, or is known not to exist in the provider."""
    return all(
        name in schema.types.get(kind, {}) or name not in schema.known.get(kind, frozenset())
        for kind, name in wanted
    )


def _read_derived(path: Path) -> ProviderSchema | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != DERIVED_FORMAT:
            return None
        return ProviderSchema(
            provider_version=doc["provider_version"],
            known={kind: frozenset(doc["known"][kind]) for kind in KINDS},
            types={
                kind: {name: BlockSchema.from_json(s) for name, s in doc["types"][kind].items()}
                for kind in KINDS
            },
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_derived(path: Path, schema: ProviderSchema) -> None:
    doc = {
        "format": DERIVED_FORMAT,
        "package": f"{PACKAGE}@{PACKAGE_VERSION}",
        "provider_version": schema.provider_version,
        "known": {kind: sorted(schema.known[kind]) for kind in KINDS},
        "types": {
            kind: {name: s.to_json() for name, s in sorted(schema.types[kind].items())}
            for kind in KINDS
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    tmp.replace(path)
