"""A checked CEL expression turned into nested Python closures: the fast, bounded evaluator.

The CEL library parses, expands macros and type-checks (see ``khook_core.conditions``); its
own evaluator costs tens of microseconds a call from Python, mostly in converting the
activation. Here each node of the checked tree becomes one closure over the evaluation
``Frame``, reading the Event's attributes directly, so a typical hook condition costs about a
microsecond. The semantics follow the CEL language definition for everything the checker lets
through: errors are values that ``&&``, ``||`` and ``?:`` may absorb, integers are 64-bit and
overflow is an error, and equality across types is false (the functions are in ``values``).

Bounds: macros (``all``, ``exists``, ``exists_one``, ``map``, ``filter``) iterate over values
of the event, so every iteration counts against ``MAX_ITERATIONS`` per evaluation; ``matches``
(a regular expression, unbounded in Python's engine) and functions this module does not know
are refused when the condition is compiled, never at run time.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any, Final

from khook_core.conditions import values
from khook_core.conditions.values import CostLimitError, EvalError
from khook_core.conditions.wire import Checked, Node

MAX_ITERATIONS: Final = 1_000
"""Macro iterations one evaluation may run, nested ones included. A condition over a handful
of tags or a list of a few dozen items needs far fewer; at well under a microsecond an
iteration this caps one evaluation near a millisecond whatever the event holds."""


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
            return lambda f: values.has_field(inner(f), field)
        return lambda f: values.field_of(inner(f), field)

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
                raise EvalError(f"cannot iterate over {values.type_name(collection)}")
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
        if function in values.TIME_PARTS:
            return _time_part(function, args, overloads)
        impl = values.FUNCTIONS.get(function)
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
    raise EvalError(f"expected a bool, got {values.type_name(value)}")


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


def _new_map(entries: list[tuple[Fn, Fn]], f: Frame) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key_f, value_f in entries:
        key = key_f(f)
        if not isinstance(key, str | int | bool) or key in out:
            raise EvalError(f"invalid or repeated map key {key!r}")
        out[key] = value_f(f)
    return out


def _membership(node: Node, args: list[Fn]) -> Fn:
    element, container = args
    constant = _constant_set(node.parts[2][1])
    if constant is not None:
        strings = constant
        return lambda f: values.in_set(element(f), strings)
    return lambda f: values.contained(element(f), container(f))


def _constant_set(node: Node) -> frozenset[str] | None:
    """The strings of a literal list of strings, for a set lookup instead of a scan."""
    if node.kind != "list" or not node.parts[0]:
        return None
    items = node.parts[0]
    if all(i.kind == "const" and isinstance(i.parts[0], str) for i in items):
        return frozenset(i.parts[0] for i in items)
    return None


# ---------------------------------------------------------------------------------------------


def _time_part(function: str, args: list[Fn], overloads: tuple[str, ...]) -> Fn:
    part = values.TIME_PARTS[function]
    if any(o.startswith("duration_") for o in overloads):
        unit = values.DURATION_PARTS.get(function)
        if unit is None:
            raise Unsupported(f"{function}() of a duration is not available")
        (a,) = args
        return lambda f: int(values.duration_arg(a(f)).total_seconds() / unit)
    if len(args) == 1:
        (a,) = args
        return lambda f: part(values.time_arg(a(f)).astimezone(UTC))
    a, tz = args
    return lambda f: part(values.time_arg(a(f)).astimezone(values.zone(values.zone_arg(tz(f)))))
