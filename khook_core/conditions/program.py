"""A checked CEL expression turned into nested Python closures: the fast, bounded evaluator.

The CEL library parses, expands macros and type-checks (see ``khook_core.conditions``); its
own evaluator costs tens of microseconds a call from Python, mostly in converting the
activation. Here each node of the checked tree becomes one closure over the evaluation
``Frame``, reading the Event's attributes directly, so a typical hook condition costs about a
microsecond. The semantics follow the CEL language definition for everything the checker lets
through: errors are values that ``&&``, ``||`` and ``?:`` may absorb, integers are 64-bit and
overflow is an error, and equality across types is false.

Bounds: macros (``all``, ``exists``, ``exists_one``, ``map``, ``filter``) iterate over values
of the event, so every iteration counts against ``MAX_ITERATIONS`` per evaluation; ``matches``
(a regular expression, unbounded in Python's engine) and functions this module does not know
are refused when the condition is compiled, never at run time.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, Final

from khook_core.conditions.wire import Checked, Node

MAX_ITERATIONS: Final = 1_000
"""Macro iterations one evaluation may run, nested ones included. A condition over a handful
of tags or a list of a few dozen items needs far fewer; at well under a microsecond an
iteration this caps one evaluation near a millisecond whatever the event holds."""

_INT_MIN: Final = -(1 << 63)
_INT_MAX: Final = (1 << 63) - 1
_UINT_MAX: Final = (1 << 64) - 1


class EvalError(Exception):
    """A CEL error value: the condition has no result for this event."""


class CostLimitError(EvalError):
    """The evaluation ran more than ``MAX_ITERATIONS`` macro iterations."""


class Frame:
    """One evaluation: the root (an Event, or payload and meta), comprehension locals, cost."""

    __slots__ = ("locals", "root", "steps")

    def __init__(self, root: Any) -> None:
        self.root = root
        self.locals: dict[str, Any] = _NO_LOCALS  # replaced, never written, by a macro
        self.steps = 0


_NO_LOCALS: Final[dict[str, Any]] = {}


Fn = Callable[[Any], Any]
"""A compiled node: takes the ``Frame`` (or the root, see ``build``), gives a CEL value or
raises ``EvalError``."""


class Unsupported(ValueError):
    """The expression uses something this evaluator refuses (said at load time)."""


def build(checked: Checked, variables: Mapping[str, Callable[[Any], Any]]) -> tuple[Fn, bool]:
    """The closure for the whole expression, and whether it takes a ``Frame`` (else the root
    itself); ``variables`` maps declared names to getters of the root.

    Only macros need a frame (their locals and iteration count); without one, a variable is
    its getter called on the root, which spares a frame and a call a variable per event.
    """
    framed = _has_macro(checked.root)
    return _Compiler(checked, variables, framed).node(checked.root), framed


def _has_macro(node: Node) -> bool:
    if node.kind == "comprehension":
        return True
    for part in node.parts:
        if isinstance(part, Node) and _has_macro(part):
            return True
        if isinstance(part, tuple):
            for item in part:
                if isinstance(item, Node) and _has_macro(item):
                    return True
                if isinstance(item, tuple) and any(_has_macro(n) for n in item):
                    return True
    return False


class _Compiler:
    def __init__(
        self, checked: Checked, variables: Mapping[str, Callable[[Any], Any]], framed: bool
    ) -> None:
        self.checked = checked
        self.variables = variables
        self.framed = framed

    def node(self, node: Node) -> Fn:
        kind = node.kind
        if kind == "const":
            value = node.parts[0]
            return lambda _f: value
        if kind == "ident":
            return self.ident(node)
        if kind == "select":
            return self.select(node)
        if kind == "list":
            items = [self.node(e) for e in node.parts[0]]
            return lambda f: [item(f) for item in items]
        if kind == "map":
            entries = [(self.node(k), self.node(v)) for k, v in node.parts[0]]
            return lambda f: _new_map(entries, f)
        if kind == "comprehension":
            return self.comprehension(node)
        return self.call(node)

    def ident(self, node: Node) -> Fn:
        name = node.parts[0]
        getter = self.variables.get(self.checked.names.get(node.id, name))
        if getter is not None:
            if not self.framed:
                return getter  # called on the root itself
            read = getter
            return lambda f: read(f.root)

        def local(f: Frame) -> Any:
            try:
                return f.locals[name]
            except KeyError:
                raise EvalError(f"undeclared reference to {name!r}") from None

        return local

    def select(self, node: Node) -> Fn:
        operand, field, test_only = node.parts
        inner = self.node(operand)
        if test_only:
            return lambda f: _has(inner(f), field)
        return lambda f: _field(inner(f), field)

    def comprehension(self, node: Node) -> Fn:
        iter_var, rng, accu_var, init, cond, step, result = node.parts
        rng_f, init_f, cond_f, step_f, result_f = map(self.node, (rng, init, cond, step, result))

        def run(f: Frame) -> Any:
            collection = rng_f(f)
            if isinstance(collection, dict):
                items: list[Any] = list(collection)
            elif isinstance(collection, list):
                items = collection
            else:
                raise EvalError(f"cannot iterate over {_type_name(collection)}")
            saved = f.locals
            f.locals = dict(saved)
            try:
                f.locals[accu_var] = init_f(f)
                for item in items:
                    f.steps += 1
                    if f.steps > MAX_ITERATIONS:
                        raise CostLimitError(
                            f"cost limit: more than {MAX_ITERATIONS} macro iterations"
                        )
                    f.locals[iter_var] = item
                    if cond_f(f) is not True:
                        break
                    f.locals[accu_var] = step_f(f)
                return result_f(f)
            finally:
                f.locals = saved

        return run

    def call(self, node: Node) -> Fn:
        target, function, arg_nodes = node.parts
        overloads = self.checked.overloads.get(node.id, ())
        args = [self.node(a) for a in ((target, *arg_nodes) if target is not None else arg_nodes)]
        if function in ("_&&_", "_||_") and all(
            self.checked.types.get(a.id) == "bool" for a in arg_nodes
        ):
            return (_and_bools if function == "_&&_" else _or_bools)(args)
        special = _SPECIAL.get(function)
        if special is not None:
            return special(args)
        typed = self.typed(node, function, args)
        if typed is not None:
            return typed
        if function == "@in":
            return _membership(node, args)
        if function in _TIME_PARTS:
            return _time_part(function, args, overloads)
        impl = _FUNCTIONS.get(function)
        if impl is None:
            if function == "matches":
                raise Unsupported(
                    "matches() is not available: a regular expression can take unbounded "
                    "time; use startsWith, endsWith, contains or in"
                )
            raise Unsupported(f"function {function}() is not available in conditions")
        if len(args) == 1:
            (a,) = args
            return lambda f: impl(a(f))
        if len(args) == 2:
            a, b = args
            return lambda f: impl(a(f), b(f))
        return lambda f: impl(*(arg(f) for arg in args))

    def typed(self, node: Node, function: str, args: list[Fn]) -> Fn | None:
        """A comparison whose operands the checker proved to be of one ordered type: Python's
        operator has CEL's meaning there, without the run-time type dispatch."""
        op = _TYPED_OPERATORS.get(function)
        if op is None:
            return None
        left, right = node.parts[2]
        kinds = {self.checked.types.get(left.id), self.checked.types.get(right.id)}
        if len(kinds) != 1 or not kinds <= _ORDERED_TYPES:
            return None
        a, b = args
        if right.kind == "const":
            value = right.parts[0]
            return lambda f: op(a(f), value)
        return lambda f: op(a(f), b(f))


_ORDERED_TYPES: Final = frozenset(
    ("bool", "int", "uint", "double", "string", "timestamp", "duration")
)
_TYPED_OPERATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "_==_": operator.eq,
    "_!=_": operator.ne,
    "_<_": operator.lt,
    "_<=_": operator.le,
    "_>_": operator.gt,
    "_>=_": operator.ge,
}


# ---------------------------------------------------------------------------------------------
# Logic: errors are values that a decided && / || / ?: absorbs
# ---------------------------------------------------------------------------------------------


def _bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise EvalError(f"expected a bool, got {_type_name(value)}")


def _and(args: list[Fn]) -> Fn:
    a, b = args

    def run(f: Frame) -> bool:
        try:
            left = _bool(a(f))
        except EvalError:
            if _bool(b(f)) is False:
                return False
            raise
        return left and _bool(b(f))

    return run


def _or(args: list[Fn]) -> Fn:
    a, b = args

    def run(f: Frame) -> bool:
        try:
            left = _bool(a(f))
        except EvalError:
            if _bool(b(f)) is True:
                return True
            raise
        return left or _bool(b(f))

    return run


def _and_bools(args: list[Fn]) -> Fn:
    """``&&`` of two operands the checker proved bool: no run-time type test."""
    a, b = args

    def run(f: Any) -> bool:
        try:
            left = a(f)
        except EvalError:
            if b(f) is False:
                return False
            raise
        return False if left is False else b(f)

    return run


def _or_bools(args: list[Fn]) -> Fn:
    """``||`` of two operands the checker proved bool."""
    a, b = args

    def run(f: Any) -> bool:
        try:
            left = a(f)
        except EvalError:
            if b(f) is True:
                return True
            raise
        return True if left is True else b(f)

    return run


def _not(args: list[Fn]) -> Fn:
    (a,) = args
    return lambda f: not _bool(a(f))


def _conditional(args: list[Fn]) -> Fn:
    c, yes, no = args
    return lambda f: yes(f) if _bool(c(f)) else no(f)


def _not_strictly_false(args: list[Fn]) -> Fn:
    (a,) = args

    def run(f: Frame) -> bool:
        try:
            return a(f) is not False
        except CostLimitError:
            raise
        except EvalError:
            return True

    return run


_SPECIAL: Final[dict[str, Callable[[list[Fn]], Fn]]] = {
    "_&&_": _and,
    "_||_": _or,
    "!_": _not,
    "_?_:_": _conditional,
    "@not_strictly_false": _not_strictly_false,
}


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _new_map(entries: list[tuple[Fn, Fn]], f: Frame) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key_f, value_f in entries:
        key = key_f(f)
        if not isinstance(key, str | int | bool) or key in out:
            raise EvalError(f"invalid or repeated map key {key!r}")
        out[key] = value_f(f)
    return out


def _field(value: Any, field: str) -> Any:
    if isinstance(value, dict):
        try:
            return value[field]
        except KeyError:
            raise EvalError(f"no such key: {field!r}") from None
    raise EvalError(f"no field {field!r} on a {_type_name(value)}")


def _has(value: Any, field: str) -> bool:
    if isinstance(value, dict):
        return field in value
    raise EvalError(f"has() needs a map, got {_type_name(value)}")


def _equals(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
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
    if _is_number(a) and _is_number(b):
        if math.isnan(a) or math.isnan(b):
            raise EvalError("NaN has no order")
        return int((a > b) - (a < b))
    for kind in (str, bytes, bool, datetime, timedelta):
        if isinstance(a, kind) and isinstance(b, kind):
            return int((a > b) - (a < b))  # type: ignore[operator]
    raise EvalError(f"no order between {_type_name(a)} and {_type_name(b)}")


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
    raise EvalError(f"no - for {_type_name(a)}")


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
    return EvalError(f"no {op} between {_type_name(a)} and {_type_name(b)}")


def _index(container: Any, key: Any) -> Any:
    if isinstance(container, list):
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        if not isinstance(key, int) or isinstance(key, bool):
            raise EvalError(f"list index must be an int, got {_type_name(key)}")
        if not 0 <= key < len(container):
            raise EvalError(f"index {key} out of range (size {len(container)})")
        return container[key]
    if isinstance(container, dict):
        if not isinstance(key, str | int | bool | float):
            raise EvalError(f"invalid map key type {_type_name(key)}")
        try:
            return container[key]
        except KeyError:
            raise EvalError(f"no such key: {key!r}") from None
    raise EvalError(f"cannot index a {_type_name(container)}")


def _membership(node: Node, args: list[Fn]) -> Fn:
    element, container = args
    constant = _constant_set(node.parts[2][1])
    if constant is not None:
        values = constant
        return lambda f: _in_set(element(f), values)
    return lambda f: _contained(element(f), container(f))


def _constant_set(node: Node) -> frozenset[str] | None:
    """The strings of a literal list of strings, for a set lookup instead of a scan."""
    if node.kind != "list" or not node.parts[0]:
        return None
    items = node.parts[0]
    if all(i.kind == "const" and isinstance(i.parts[0], str) for i in items):
        return frozenset(i.parts[0] for i in items)
    return None


def _in_set(value: Any, values: frozenset[str]) -> bool:
    return isinstance(value, str) and value in values


def _contained(value: Any, container: Any) -> bool:
    if isinstance(container, list):
        return any(_equals(value, item) for item in container)
    if isinstance(container, dict):
        return isinstance(value, str | int | float) and any(
            _equals(value, key) for key in container
        )
    raise EvalError(f"'in' needs a list or a map, got {_type_name(container)}")


def _size(value: Any) -> int:
    if isinstance(value, str | bytes | list | dict):
        return len(value)
    raise EvalError(f"size() of a {_type_name(value)}")


def _string_method(name: str, test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        if isinstance(a, str) and isinstance(b, str):
            return test(a, b)
        raise EvalError(f"{name}() needs strings, got {_type_name(a)} and {_type_name(b)}")

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
    raise EvalError(f"int() of a {_type_name(value)}")


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
    raise EvalError(f"double() of a {_type_name(value)}")


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
    raise EvalError(f"string() of a {_type_name(value)}")


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
    raise EvalError(f"timestamp() of a {_type_name(value)}")


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
    raise EvalError(f"duration() of a {_type_name(value)}")


def _identity(value: Any) -> Any:
    return value


_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
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


# ---------------------------------------------------------------------------------------------
# Parts of times and durations
# ---------------------------------------------------------------------------------------------

_TIME_PARTS: Final[dict[str, Callable[[datetime], int]]] = {
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
_DURATION_PARTS: Final[dict[str, float]] = {
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


def _time_part(function: str, args: list[Fn], overloads: tuple[str, ...]) -> Fn:
    part = _TIME_PARTS[function]
    if any(o.startswith("duration_") for o in overloads):
        unit = _DURATION_PARTS.get(function)
        if unit is None:
            raise Unsupported(f"{function}() of a duration is not available")
        (a,) = args
        return lambda f: int(_duration_arg(a(f)).total_seconds() / unit)
    if len(args) == 1:
        (a,) = args
        return lambda f: part(_time_arg(a(f)).astimezone(UTC))
    a, tz = args
    return lambda f: part(_time_arg(a(f)).astimezone(zone(_zone_arg(tz(f)))))


def _time_arg(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    raise EvalError(f"expected a timestamp, got {_type_name(value)}")


def _duration_arg(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    raise EvalError(f"expected a duration, got {_type_name(value)}")


def _zone_arg(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise EvalError(f"expected a time zone name, got {_type_name(value)}")
