"""Settings read from environment variables into a frozen pydantic model.

pydantic-settings does this and much more, at about 40 ms of import on every cold start; a
function needs only the plain case, so this is that case: each field is read from
``<prefix><FIELD>`` (or from the upper-case names in its ``AliasChoices``), JSON-decoded when the
field is a list or a mapping, and validated by the model. An invalid value is a ``ConfigError``
naming the variable as it is set.
"""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from khook_core.errors import ConfigError, Problem


class EnvSettings(BaseModel):
    """Base of every settings group; subclasses set ``env_prefix`` and declare fields."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    env_prefix: ClassVar[str] = "KHOOK_"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, prefix: str | None = None
                 ) -> Self:
        """Build from ``environ`` (default ``os.environ``).

        Raises:
            ConfigError: one Problem per invalid variable.
        """
        env = os.environ if environ is None else environ
        prefix = cls.env_prefix if prefix is None else prefix
        values: dict[str, Any] = {}
        variables: dict[str, str] = {}
        problems: list[Problem] = []
        for name, info in cls.model_fields.items():
            for variable in env_names(name, info, prefix):
                if variable in env:
                    variables[name] = variable
                    try:
                        values[name] = _decode(env[variable], info)
                    except ValueError as exc:
                        problems.append(Problem("environment", None, f"{variable}: {exc}"))
                    break
        if not problems:
            try:
                return cls.model_validate(values)
            except ValidationError as exc:
                for error in exc.errors():
                    field = str(error["loc"][0]) if error["loc"] else ""
                    variable = variables.get(field, f"{prefix}{field.upper()}")
                    problems.append(Problem("environment", None, f"{variable}: {error['msg']}"))
        raise ConfigError(problems)


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
    return kind in (dict, list, Mapping) or (
        isinstance(kind, type) and issubclass(kind, BaseModel)
    )
