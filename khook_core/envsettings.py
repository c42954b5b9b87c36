"""Settings read from environment variables into a frozen pydantic model.

pydantic-settings does this and much more, at about 40 ms of import on every cold start; a
function needs only the plain case, so this is that case: each field is read from
``<prefix><FIELD>`` (or from the upper-case names in its ``AliasChoices``), JSON-decoded when the
field is a list or a mapping, and validated by the model. A field whose type is itself an
``EnvSettings`` is a nested group, read from the same environment with its own names. An
invalid value is a ``ConfigError`` naming the variable as it is set.

The environment is always given: only entry points read ``os.environ``
(``khook_core.settings.Settings.from_env``), and library code gets settings objects.
"""

import json
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from khook_core.errors import ConfigError, Problem

ENVIRONMENT: typing.Final = "environment"
"""Where a problem of a variable was found, as ``ConfigError`` prints it."""


class EnvSettings(BaseModel):
    """Base of every settings group; subclasses set ``env_prefix`` and declare fields."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    env_prefix: ClassVar[str] = "KHOOK_"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        prefix: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Self:
        """Build from ``environ``; ``overrides`` (by field name: command-line flags) win.

        Raises:
            ConfigError: one Problem per invalid variable, nested groups' included.
        """
        prefix = cls.env_prefix if prefix is None else prefix
        values: dict[str, Any] = dict(overrides or {})
        variables = {name: "--" + name.replace("_", "-") for name in values}  # flags
        problems: list[Problem] = []
        for name, info in cls.model_fields.items():
            if name in values:
                continue
            group = nested_group(info)
            if group is not None:
                try:
                    values[name] = group.from_env(environ)
                except ConfigError as exc:
                    problems.extend(exc.problems)
                continue
            for variable in env_names(name, info, prefix):
                if variable in environ:
                    variables[name] = variable
                    try:
                        values[name] = _decode(environ[variable], info)
                    except ValueError as exc:
                        problems.append(Problem(ENVIRONMENT, None, f"{variable}: {exc}"))
                    break
        try:
            built = cls.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else ""
                variable = variables.get(field, f"{prefix}{field.upper()}")
                problems.append(Problem(ENVIRONMENT, None, f"{variable}: {error['msg']}"))
        if problems:
            raise ConfigError(problems)
        return built


def nested_group(info: FieldInfo) -> type[EnvSettings] | None:
    """The ``EnvSettings`` class of a nested group field, else None."""
    kind = info.annotation
    return kind if isinstance(kind, type) and issubclass(kind, EnvSettings) else None


def env_names(name: str, info: FieldInfo, prefix: str) -> list[str]:
    """The variables a field is read from, in order of preference."""
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str) and c.isupper()]
    if isinstance(alias, str):
        return [alias]
    return [f"{prefix}{name.upper()}"]


def _decode(raw: str, info: FieldInfo) -> Any:
    """JSON for list and mapping fields (as pydantic-settings does), the text otherwise."""
    if _structured(info.annotation):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg})") from None
    return raw


def _structured(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_structured(arg) for arg in typing.get_args(annotation))
    kind = origin or annotation
    return kind in (dict, list, Mapping) or (isinstance(kind, type) and issubclass(kind, BaseModel))
