"""The checked CEL expression as plain Python data, decoded from its protobuf wire form.

The CEL library hands the parsed, macro-expanded and type-checked expression back only as a
serialized ``cel.expr.CheckedExpr`` (inside a ``google.protobuf.Any``). The few messages read
here (``Expr``, ``Constant``, ``Reference``) are decoded by field number with a small wire
reader, so the core needs no protobuf runtime and no generated code. Field numbers are those of
cel-spec's ``syntax.proto`` and ``checked.proto``, which are stable by protobuf's rules.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

Fields = dict[int, list[Any]]
"""A decoded message: field number → every value it had (varints as int, the rest bytes)."""

_INT64_SIGN = 1 << 63
_UINT64 = 1 << 64


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> Fields:
    """Every field of one message, in order (wire types varint, 64-bit, length and 32-bit)."""
    out: Fields = {}
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _one(msg: Fields, number: int, default: Any = None) -> Any:
    values = msg.get(number)
    return values[-1] if values else default


def _text(msg: Fields, number: int) -> str:
    raw = _one(msg, number, b"")
    return bytes(raw).decode("utf-8")


def _int64(value: int) -> int:
    return value - _UINT64 if value >= _INT64_SIGN else value


@dataclass(frozen=True)
class Node:
    """One ``cel.expr.Expr``: ``kind`` names the oneof that is set, ``parts`` its fields.

    kinds and parts: ``const`` (value, type name), ``ident`` (name), ``select`` (operand,
    field, test_only), ``call`` (target or None, function, args), ``list`` (elements),
    ``map`` (entries as (key, value) pairs), ``comprehension`` (iter_var, iter_range,
    accu_var, accu_init, loop_condition, loop_step, result).
    """

    id: int
    kind: str
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Checked:
    """The checked expression: its tree, and what the checker resolved each node id to."""

    root: Node
    names: dict[int, str] = field(default_factory=dict)
    """Node id → the variable a (qualified) identifier resolved to, e.g. ``event.severity``."""
    overloads: dict[int, tuple[str, ...]] = field(default_factory=dict)
    """Node id → the overload ids a call may take (e.g. ``add_int64``)."""
    types: dict[int, str] = field(default_factory=dict)
    """Node id → the type the checker proved: ``bool``, ``int``, ``uint``, ``double``,
    ``string``, ``bytes``, ``timestamp``, ``duration``, ``null``, ``list``, ``map``, or
    ``dyn`` (anything else, known only at run time)."""


def checked(serialized: bytes) -> Checked:
    """Decode ``Expression.serialize()``: an ``Any`` holding a ``cel.expr.CheckedExpr``."""
    wrapper = fields(serialized)
    msg = fields(_one(wrapper, 2, b""))
    names: dict[int, str] = {}
    overloads: dict[int, tuple[str, ...]] = {}
    for entry in msg.get(2, []):  # map<int64, Reference> reference_map
        pair = fields(entry)
        node_id = _int64(_one(pair, 1, 0))
        ref = fields(_one(pair, 2, b""))
        ids = tuple(bytes(v).decode() for v in ref.get(3, []))
        if ids:
            overloads[node_id] = ids
        elif ref.get(1):
            names[node_id] = _text(ref, 1)
    types: dict[int, str] = {}
    for entry in msg.get(3, []):  # map<int64, Type> type_map
        pair = fields(entry)
        types[_int64(_one(pair, 1, 0))] = _type_name(fields(_one(pair, 2, b"")))
    return Checked(_expr(fields(_one(msg, 4, b""))), names, overloads, types)


_PRIMITIVES = {1: "bool", 2: "int", 3: "uint", 4: "double", 5: "string", 6: "bytes"}
_WELL_KNOWN = {2: "timestamp", 3: "duration"}


def _type_name(msg: Fields) -> str:
    """The name of a ``cel.expr.Type`` (field numbers of its ``type_kind`` oneof)."""
    if 3 in msg:
        return _PRIMITIVES.get(_one(msg, 3), "dyn")
    if 5 in msg:
        return _WELL_KNOWN.get(_one(msg, 5), "dyn")
    if 2 in msg:
        return "null"
    if 6 in msg:
        return "list"
    if 7 in msg:
        return "map"
    return "dyn"


def _expr(msg: Fields) -> Node:
    node_id = _int64(_one(msg, 2, 0))
    if 3 in msg:
        return Node(node_id, "const", _constant(fields(_one(msg, 3))))
    if 4 in msg:
        return Node(node_id, "ident", (_text(fields(_one(msg, 4)), 1),))
    if 5 in msg:
        sel = fields(_one(msg, 5))
        return Node(
            node_id,
            "select",
            (_expr(fields(_one(sel, 1, b""))), _text(sel, 2), bool(_one(sel, 3, 0))),
        )
    if 6 in msg:
        call = fields(_one(msg, 6))
        target = _expr(fields(_one(call, 1))) if 1 in call else None
        args = tuple(_expr(fields(a)) for a in call.get(3, []))
        return Node(node_id, "call", (target, _text(call, 2), args))
    if 7 in msg:
        lst = fields(_one(msg, 7))
        return Node(node_id, "list", (tuple(_expr(fields(e)) for e in lst.get(1, [])),))
    if 8 in msg:
        struct_msg = fields(_one(msg, 8))
        if struct_msg.get(1):
            raise ValueError("message construction is not supported")
        entries = []
        for raw in struct_msg.get(2, []):
            entry = fields(raw)
            entries.append((_expr(fields(_one(entry, 3, b""))), _expr(fields(_one(entry, 4, b"")))))
        return Node(node_id, "map", (tuple(entries),))
    if 9 in msg:
        comp = fields(_one(msg, 9))
        if comp.get(8):
            raise ValueError("two-variable comprehensions are not supported")
        return Node(
            node_id,
            "comprehension",
            (
                _text(comp, 1),
                _expr(fields(_one(comp, 2, b""))),
                _text(comp, 3),
                _expr(fields(_one(comp, 4, b""))),
                _expr(fields(_one(comp, 5, b""))),
                _expr(fields(_one(comp, 6, b""))),
                _expr(fields(_one(comp, 7, b""))),
            ),
        )
    raise ValueError(f"expression node {node_id} has no kind")


def _constant(msg: Fields) -> tuple[Any, str]:
    if 1 in msg:
        return None, "null"
    if 2 in msg:
        return bool(_one(msg, 2)), "bool"
    if 3 in msg:
        return _int64(_one(msg, 3)), "int"
    if 4 in msg:
        return int(_one(msg, 4)), "uint"
    if 5 in msg:
        return struct.unpack("<d", _one(msg, 5))[0], "double"
    if 6 in msg:
        return _text(msg, 6), "string"
    if 7 in msg:
        return bytes(_one(msg, 7)), "bytes"
    raise ValueError("unsupported constant")
