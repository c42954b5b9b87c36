"""The values of a condition at run time: CEL's equality, order, arithmetic, conversions and
the parts of times, over plain Python values.

An Event's fields arrive as ``str``, ``int``, ``datetime`` and dicts; ``metadata`` may hold any
JSON value (and, from a careless source, anything else). Each function here either gives the
CEL result or raises ``EvalError`` (CEL's error value): integers are 64-bit and overflow is an
error, equality across types is false, and order exists only within a type (numbers across
int and double).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, Final

_INT_MIN: Final = -(1 << 63)
_INT_MAX: Final = (1 << 63) - 1
_UINT_MAX: Final = (1 << 64) - 1


class EvalError(Exception):
    """A CEL error value: the condition has no result for this event."""


class CostLimitError(EvalError):
    """The evaluation ran more than ``MAX_ITERATIONS`` macro iterations."""


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, timedelta):
        return "duration"
    return type(value).__name__


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def field_of(value: Any, field: str) -> Any:
    if isinstance(value, dict):
        try:
            return value[field]
        except KeyError:
            raise EvalError(f"no such key: {field!r}") from None
    raise EvalError(f"no field {field!r} on a {type_name(value)}")


def has_field(value: Any, field: str) -> bool:
    if isinstance(value, dict):
        return field in value
    raise EvalError(f"has() needs a map, got {type_name(value)}")


def _equals(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return bool(a == b)
    if (
        type(a) is not type(b)
        and not (isinstance(a, str) and isinstance(b, str))
        and not (isinstance(a, datetime) and isinstance(b, datetime))
    ):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_equals(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equals(v, b[k]) for k, v in a.items())
    return bool(a == b)


def _compare(a: Any, b: Any) -> int:
    if is_number(a) and is_number(b):
        if math.isnan(a) or math.isnan(b):
            raise EvalError("NaN has no order")
        return int((a > b) - (a < b))
    for kind in (str, bytes, bool, datetime, timedelta):
        if isinstance(a, kind) and isinstance(b, kind):
            return int((a > b) - (a < b))  # type: ignore[operator]
    raise EvalError(f"no order between {type_name(a)} and {type_name(b)}")


def _int64(value: int) -> int:
    if not _INT_MIN <= value <= _INT_MAX:
        raise EvalError("integer overflow")
    return value


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool | float):
        return _int64(a + b)
    if (
        _same_kind(a, b, (float, str, bytes, list, timedelta))
        or (isinstance(a, datetime) and isinstance(b, timedelta))
        or (isinstance(a, timedelta) and isinstance(b, datetime))
    ):
        return _checked(operator.add, a, b)
    raise _no_overload("+", a, b)


def _subtract(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool):
        return _int64(a - b)
    if _same_kind(a, b, (float, timedelta, datetime)) or (
        isinstance(a, datetime) and isinstance(b, timedelta)
    ):
        return _checked(operator.sub, a, b)
    raise _no_overload("-", a, b)


def _multiply(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool):
        return _int64(a * b)
    if _same_kind(a, b, (float,)):
        return a * b
    raise _no_overload("*", a, b)


def _divide(a: Any, b: Any) -> Any:
    if _same_kind(a, b, (int,)):
        if b == 0:
            raise EvalError("division by zero")
        quotient = abs(a) // abs(b)
        return _int64(quotient if (a < 0) == (b < 0) else -quotient)
    if _same_kind(a, b, (float,)):
        if b == 0:
            return (
                math.nan
                if a == 0 or math.isnan(a)
                else math.copysign(math.inf, a) * (math.copysign(1.0, b))
            )
        return a / b
    raise _no_overload("/", a, b)


def _modulo(a: Any, b: Any) -> Any:
    if _same_kind(a, b, (int,)):
        if b == 0:
            raise EvalError("modulus by zero")
        return a - b * _divide(a, b)
    raise _no_overload("%", a, b)


def _negate(a: Any) -> Any:
    if isinstance(a, int) and not isinstance(a, bool):
        return _int64(-a)
    if isinstance(a, float):
        return -a
    if isinstance(a, timedelta):
        return _checked(operator.sub, timedelta(0), a)
    raise EvalError(f"no - for {type_name(a)}")


def _checked(op: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    """Time arithmetic past the representable range is an error value, not an exception."""
    try:
        return op(a, b)
    except OverflowError:
        raise EvalError("timestamp or duration out of range") from None


def _same_kind(a: Any, b: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return any(type(a) is k and type(b) is k for k in kinds) or any(
        isinstance(a, k) and isinstance(b, k) and k is not int for k in kinds
    )


def _no_overload(op: str, a: Any, b: Any) -> EvalError:
    return EvalError(f"no {op} between {type_name(a)} and {type_name(b)}")


def _index(container: Any, key: Any) -> Any:
    if isinstance(container, list):
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        if not isinstance(key, int) or isinstance(key, bool):
            raise EvalError(f"list index must be an int, got {type_name(key)}")
        if not 0 <= key < len(container):
            raise EvalError(f"index {key} out of range (size {len(container)})")
        return container[key]
    if isinstance(container, dict):
        if not isinstance(key, str | int | bool | float):
            raise EvalError(f"invalid map key type {type_name(key)}")
        try:
            return container[key]
        except KeyError:
            raise EvalError(f"no such key: {key!r}") from None
    raise EvalError(f"cannot index a {type_name(container)}")


def in_set(value: Any, values: frozenset[str]) -> bool:
    return isinstance(value, str) and value in values


def contained(value: Any, container: Any) -> bool:
    if isinstance(container, list):
        return any(_equals(value, item) for item in container)
    if isinstance(container, dict):
        return isinstance(value, str | int | float) and any(
            _equals(value, key) for key in container
        )
    raise EvalError(f"'in' needs a list or a map, got {type_name(container)}")


def _size(value: Any) -> int:
    if isinstance(value, str | bytes | list | dict):
        return len(value)
    raise EvalError(f"size() of a {type_name(value)}")


def _string_method(name: str, test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        if isinstance(a, str) and isinstance(b, str):
            return test(a, b)
        raise EvalError(f"{name}() needs strings, got {type_name(a)} and {type_name(b)}")

    return run


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return _int64(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EvalError("int() of a non-finite double")
        return _int64(int(value))
    if isinstance(value, str):
        try:
            return _int64(int(value, 10))
        except ValueError:
            raise EvalError(f"int() of {value[:40]!r}") from None
    if isinstance(value, datetime):
        return int(value.timestamp())
    raise EvalError(f"int() of a {type_name(value)}")


def _to_uint(value: Any) -> int:
    result = _to_int(value) if not isinstance(value, int) or isinstance(value, bool) else value
    if not 0 <= result <= _UINT_MAX:
        raise EvalError("uint overflow")
    return result


def _to_double(value: Any) -> float:
    if isinstance(value, bool):
        raise EvalError("double() of a bool")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise EvalError(f"double() of {value[:40]!r}") from None
    raise EvalError(f"double() of a {type_name(value)}")


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise EvalError("string() of bytes that are not UTF-8") from None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    raise EvalError(f"string() of a {type_name(value)}")


def _to_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise EvalError(f"timestamp() of {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise EvalError(f"timestamp() needs a time zone: {value[:40]!r}")
        return parsed
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise EvalError(f"timestamp({value}) is out of range") from None
    raise EvalError(f"timestamp() of a {type_name(value)}")


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|m|s|ms|us|µs|ns)")
_DURATION_UNITS: Final = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
}


def parse_duration(text: str) -> timedelta:
    """CEL's ``duration()`` text: ``90s``, ``1h30m``, ``-1.5h``, ``250ms``."""
    sign, rest = (-1.0, text[1:]) if text.startswith("-") else (1.0, text)
    if rest in ("0", ""):
        if rest == "":
            raise EvalError(f"duration() of {text[:40]!r}")
        return timedelta(0)
    seconds, pos = 0.0, 0
    for match in _DURATION_PART.finditer(rest):
        if match.start() != pos:
            break
        seconds += float(match[1]) * _DURATION_UNITS[match[2]]
        pos = match.end()
    if pos != len(rest) or pos == 0:
        raise EvalError(f"duration() of {text[:40]!r} (use e.g. 90s, 10m, 1h30m)")
    try:
        return timedelta(seconds=sign * seconds)
    except OverflowError:
        raise EvalError(f"duration {text[:40]!r} is out of range") from None


def _to_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise EvalError(f"duration() of a {type_name(value)}")


def _identity(value: Any) -> Any:
    return value


FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "_==_": _equals,
    "_!=_": lambda a, b: not _equals(a, b),
    "_<_": lambda a, b: _compare(a, b) < 0,
    "_<=_": lambda a, b: _compare(a, b) <= 0,
    "_>_": lambda a, b: _compare(a, b) > 0,
    "_>=_": lambda a, b: _compare(a, b) >= 0,
    "_+_": _add,
    "_-_": _subtract,
    "_*_": _multiply,
    "_/_": _divide,
    "_%_": _modulo,
    "-_": _negate,
    "_[_]": _index,
    "size": _size,
    "startsWith": _string_method("startsWith", str.startswith),
    "endsWith": _string_method("endsWith", str.endswith),
    "contains": _string_method("contains", lambda a, b: b in a),
    "int": _to_int,
    "uint": _to_uint,
    "double": _to_double,
    "string": _to_string,
    "timestamp": _to_timestamp,
    "duration": _to_duration,
    "dyn": _identity,
}


TIME_PARTS: Final[dict[str, Callable[[datetime], int]]] = {
    "getFullYear": lambda t: t.year,
    "getMonth": lambda t: t.month - 1,
    "getDate": lambda t: t.day,
    "getDayOfMonth": lambda t: t.day - 1,
    "getDayOfYear": lambda t: t.timetuple().tm_yday - 1,
    "getDayOfWeek": lambda t: (t.weekday() + 1) % 7,  # CEL: Sunday is 0
    "getHours": lambda t: t.hour,
    "getMinutes": lambda t: t.minute,
    "getSeconds": lambda t: t.second,
    "getMilliseconds": lambda t: t.microsecond // 1000,
}
DURATION_PARTS: Final[dict[str, float]] = {
    "getHours": 3600.0,
    "getMinutes": 60.0,
    "getSeconds": 1.0,
    "getMilliseconds": 1e-3,
}


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """An IANA zone (``Europe/Berlin``) or a fixed offset (``+02:00``, ``-0530``)."""
    offset = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if offset:
        minutes = int(offset[2]) * 60 + int(offset[3])
        return timezone(timedelta(minutes=minutes if offset[1] == "+" else -minutes))
    from zoneinfo import ZoneInfo  # here: only conditions naming a zone load the zone data

    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise EvalError(f"unknown time zone {name[:60]!r}") from exc


def time_arg(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    raise EvalError(f"expected a timestamp, got {type_name(value)}")


def duration_arg(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    raise EvalError(f"expected a duration, got {type_name(value)}")


def zone_arg(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise EvalError(f"expected a time zone name, got {type_name(value)}")
