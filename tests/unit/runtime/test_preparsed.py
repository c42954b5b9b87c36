"""A configuration file's pre-parsed form (khook_core.preparsed): used only while it matches
the YAML beside it, validated like the YAML, and enough to start without PyYAML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from khook_core import preparsed
from khook_core.errors import ConfigError
from khook_core.runtime import load_config
from khook_core.yamlfile import LineDict, line_of, line_within, load_documents
from khook_core.yamlparse import parse_documents
from tests.support.configdir import SHOP_HOOK, make_config

REPO = Path(__file__).resolve().parents[3]


def pre_parse(config: Path) -> None:
    """Write the pre-parsed form beside every YAML file, as the archive carries it."""
    for path in config.rglob("*.yaml"):
        form = preparsed.encode(path.read_text(encoding="utf-8"))
        assert form is not None, path
        preparsed.sidecar(path).write_text(form, encoding="utf-8")


def same(a: object, b: object) -> bool:
    """Equal documents, down to the lines each mapping remembers."""
    if type(a) is not type(b):
        return False
    if isinstance(a, LineDict):
        assert isinstance(b, LineDict)
        lines_a = (a.line, a.key_lines, a.value_text, list(a))
        lines_b = (b.line, b.key_lines, b.value_text, list(b))
        return lines_a == lines_b and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "config").rglob("*.yaml")),
    ids=lambda p: p.relative_to(REPO).as_posix(),
)
def test_the_pre_parsed_form_gives_the_yaml_documents_with_their_lines(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    form = preparsed.encode(text)
    assert form is not None
    decoded = [preparsed._decode(doc) for doc in json.loads(form)["documents"]]
    assert same(decoded, parse_documents(str(path), text))


def test_a_matching_pre_parsed_form_is_what_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text("a: 1\n")
    form = json.loads(preparsed.encode("a: 2\n") or "")
    form["sha256"] = preparsed.text_hash("a: 1\n")  # written for this very text
    preparsed.sidecar(path).write_text(json.dumps(form))
    assert load_documents(path) == [{"a": 2}]


def test_a_pre_parsed_form_of_another_text_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text("a: 1\nb: |\n  two\n")
    preparsed.sidecar(path).write_text(preparsed.encode("a: 1\n") or "")
    path.write_text("a: 3\nb: |\n  two\n")  # edited after the archive was built
    [doc] = load_documents(path)
    assert doc == {"a": 3, "b": "two\n"}
    assert (line_of(doc, "b"), line_within(doc, "b", "two")) == (2, 3)


@pytest.mark.parametrize("form", ["{", '{"format": 1}', '{"format": 99, "sha256": ""}'])
def test_an_unreadable_pre_parsed_form_is_ignored(tmp_path: Path, form: str) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text("a: 1\n")
    preparsed.sidecar(path).write_text(form)
    assert load_documents(path) == [{"a": 1}]


def test_a_bad_configuration_fails_with_its_pre_parsed_form_as_without(tmp_path: Path) -> None:
    config = make_config(tmp_path, SHOP_HOOK.replace("agentRef:", "agentReff:", 1))
    with pytest.raises(ConfigError) as plain:
        load_config(config)
    pre_parse(config)
    with pytest.raises(ConfigError) as pre:
        load_config(config)
    assert str(pre.value) == str(plain.value)
    assert "agentReff" in str(pre.value)


def test_yaml_that_does_not_parse_has_no_pre_parsed_form_and_still_fails(tmp_path: Path) -> None:
    assert preparsed.encode("a: [1\n") is None
    assert preparsed.encode("a: 1\na: 2\n") is None  # a duplicate key is a problem
    assert preparsed.encode("at: 2026-01-05\n") is None  # a timestamp: no JSON value
    path = tmp_path / "hooks.yaml"
    path.write_text("a: [1\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_documents(path)


START = """
import sys
from pathlib import Path
from khook_core.runtime import load_config
config = load_config(Path(sys.argv[1]))
print(len(config.hooks.hooks()), "yaml" in sys.modules)
"""


def test_a_configuration_with_its_pre_parsed_forms_loads_without_pyyaml(tmp_path: Path) -> None:
    config = make_config(tmp_path, SHOP_HOOK)

    def start() -> str:
        done = subprocess.run(
            [sys.executable, "-c", START, str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip()

    assert start().endswith("True")
    hooks = start().split()[0]
    pre_parse(config)
    assert start() == f"{hooks} False"
