"""Go ``text/template`` for ``--format`` (inspect, images, ps): the part CI scripts use.

Supported: field paths at any depth (``.Config.Labels``), ``$`` and variables, pipelines
(``.X | json``), ``if``/``else if``/``else``, ``range`` (with ``$k, $v :=``), ``with``,
trim markers (``{{-``, ``-}}``), comments, and the functions docker's CLI adds or Go
provides: ``json index len join printf print println eq ne lt le gt ge and or not upper
lower title split``.  Values print as Go's ``%v`` does (``map[k:v]``, ``[a b]``,
``<nil>``).  Anything else — an unknown function, a missing key, a field of a list —
is a :class:`TemplateError` with the position, never an empty or ``null`` result.
"""

from __future__ import annotations

import json
import re
from typing import Any

from registry.errors import PybuildError


class TemplateError(PybuildError):
    """The template does not parse, or failed on this value."""


class GoMap(dict):
    """A Go map (``Labels``): prints ``map[k:v]``; a missing key is ``<no value>``.  A plain
    ``dict`` is a Go struct: prints ``{v1 v2}``; a missing field is an error."""


class GoNil:
    """A typed nil: a nil map prints ``map[]``, a nil slice ``[]``; JSON ``null``."""

    def __init__(self, shown: str):
        self.shown = shown


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


# ---- lexing and parsing ------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<decl>:=|=)
  | (?P<pipe>\|)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
  | (?P<field>(?:\$[A-Za-z_0-9]*)?(?:\.[A-Za-z_][A-Za-z_0-9]*)+|\.|\$[A-Za-z_0-9]*)
  | (?P<ident>[A-Za-z_][A-Za-z_0-9]*)
)""", re.X)


class _Node:
    # what each kind carries (set from ``kw``): actions a pipe, blocks their body and else
    pipe: Any
    where: str
    body: Any
    otherwise: Any
    cmds: Any
    name: str
    value: Any
    path: Any
    text: str

    def __init__(self, kind: str, **kw: Any):
        self.kind = kind
        self.__dict__.update(kw)


def _tokens(text: str, where: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise TemplateError(f"template parsing error: {where}: unexpected {text[pos:].strip()[:20]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def parse(template: str) -> list[_Node]:
    """Parse a template into a node list; :class:`TemplateError` on bad syntax."""
    items: list[tuple[str, str, int]] = []  # ("text", s) | ("action", s)
    pos = 0
    for match in _ACTION.finditer(template):
        text = template[pos:match.start()]
        if match.group(1):
            text = text.rstrip()
        items.append(("text", text, pos))
        items.append(("action", match.group(2), match.start()))
        pos = match.end()
        if match.group(3):
            rest = template[pos:]
            pos += len(rest) - len(rest.lstrip())
    if "{{" in template[pos:]:
        raise TemplateError("template parsing error: unclosed action")
    items.append(("text", template[pos:], pos))
    nodes, _end = _parse_list(items, 0, top=True)
    return nodes


def _parse_list(items, i: int, top: bool = False) -> tuple[list[_Node], int]:
    nodes: list[_Node] = []
    while i < len(items):
        kind, body, pos = items[i]
        if kind == "text":
            if body:
                nodes.append(_Node("text", text=body))
            i += 1
            continue
        where = f":1:{pos + 2}"
        stripped = body.strip()
        if stripped.startswith("/*"):
            i += 1
            continue
        word = stripped.split(None, 1)[0] if stripped else ""
        if word in ("end", "else"):
            if top:
                raise TemplateError(f"template parsing error: {where}: unexpected {{{{{word}}}}}")
            return nodes, i
        if word in ("if", "range", "with"):
            node, i = _parse_block(word, stripped[len(word):], items, i + 1, where)
            nodes.append(node)
            continue
        if word in ("define", "template", "block", "break", "continue"):
            raise TemplateError(f"template parsing error: {where}: {{{{{word}}}}} is not supported")
        if not stripped:
            raise TemplateError(f"template parsing error: {where}: missing value for command")
        nodes.append(_Node("action", pipe=_parse_pipeline(_tokens(stripped, where), where), where=where))
        i += 1
    if not top:
        raise TemplateError("template parsing error: unexpected EOF (an {{end}} is missing)")
    return nodes, i


def _parse_block(word: str, head: str, items, i: int, where: str) -> tuple[_Node, int]:
    pipe = _parse_pipeline(_tokens(head, where), where, allow_two=word == "range")
    body, i = _parse_list(items, i)
    otherwise: list[_Node] = []
    closing = items[i][1].strip()
    if closing.startswith("else"):
        rest = closing[4:].strip()
        if rest.startswith("if ") or rest.startswith("with "):  # {{else if ...}}: a nested block
            sub = rest.split(None, 1)[0]
            node, i = _parse_block(sub, rest[len(sub):], items, i + 1, where)
            return _Node(word, pipe=pipe, body=body, otherwise=[node], where=where), i
        otherwise, i = _parse_list(items, i + 1)
        closing = items[i][1].strip()
    if closing != "end":
        raise TemplateError(f"template parsing error: {where}: expected {{{{end}}}}")
    return _Node(word, pipe=pipe, body=body, otherwise=otherwise, where=where), i + 1


def _parse_pipeline(tokens: list[tuple[str, str]], where: str, allow_two: bool = False) -> _Node:
    names: list[str] = []
    if any(k == "decl" for k, _ in tokens):
        while tokens and tokens[0][0] in ("field", "comma"):
            kind, value = tokens.pop(0)
            if kind == "field":
                if not value.startswith("$") or "." in value:
                    raise TemplateError(f"template parsing error: {where}: bad variable {value!r}")
                names.append(value)
        if not tokens or tokens[0][0] != "decl" or not names or len(names) > (2 if allow_two else 1):
            raise TemplateError(f"template parsing error: {where}: bad declaration")
        tokens.pop(0)
    cmds: list[list[_Node]] = [[]]
    while tokens:
        kind, value = tokens.pop(0)
        if kind == "pipe":
            cmds.append([])
        elif kind == "lp":
            depth, inner = 1, []
            while tokens:
                k, v = tokens.pop(0)
                depth += (k == "lp") - (k == "rp")
                if depth == 0:
                    break
                inner.append((k, v))
            if depth:
                raise TemplateError(f"template parsing error: {where}: unclosed left paren")
            cmds[-1].append(_parse_pipeline(inner, where))
        elif kind == "rp":
            raise TemplateError(f"template parsing error: {where}: unexpected right paren")
        elif kind == "str":
            cmds[-1].append(_Node("lit", value=json.loads(value) if value[0] == '"' else value[1:-1]))
        elif kind == "num":
            cmds[-1].append(_Node("lit", value=float(value) if "." in value else int(value)))
        elif kind == "ident" and value in ("true", "false", "nil"):
            cmds[-1].append(_Node("lit", value={"true": True, "false": False, "nil": None}[value]))
        elif kind == "ident":
            if value not in FUNCS:
                raise TemplateError(f'template parsing error: {where}: function "{value}" not defined')
            cmds[-1].append(_Node("func", name=value))
        elif kind == "field":
            cmds[-1].append(_Node("field", path=value))
        else:
            raise TemplateError(f"template parsing error: {where}: unexpected {value!r}")
    if any(not c for c in cmds):
        raise TemplateError(f"template parsing error: {where}: missing command in pipeline")
    return _Node("pipeline", cmds=cmds, names=names)


# ---- printing as Go's %v --------------------------------------------------------------

def go_str(value: Any) -> str:
    """``fmt.Sprint`` of a JSON value."""
    if value is None:
        return "<nil>"
    if isinstance(value, GoNil):
        return value.shown
    if value is NO_VALUE:
        return "<no value>"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, GoMap):
        return "map[" + " ".join(f"{k}:{go_str(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, dict):
        return "{" + " ".join(go_str(v) for v in value.values()) + "}"
    if isinstance(value, list):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    return str(value)


def go_json(value: Any) -> str:
    """docker's ``json`` function: compact, HTML characters not escaped."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=lambda o: None)


def _truth(value: Any) -> bool:
    return bool(value) if value is not None and value is not NO_VALUE and not isinstance(value, GoNil) else False


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def go_sprintf(fmt: str, *args: Any) -> str:
    """``fmt.Sprintf`` for the verbs scripts use: %s %v %d %q %t %x %f %%."""
    out, args_left = [], list(args)

    def take() -> Any:
        if not args_left:
            return None
        return args_left.pop(0)

    pos = 0
    for match in _VERB.finditer(fmt):
        out.append(fmt[pos:match.start()])
        pos = match.end()
        flags, width, prec, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        value = take()
        if verb in ("s", "v"):
            text = go_str(value)
        elif verb == "q":
            text = json.dumps(go_str(value) if not isinstance(value, str) else value, ensure_ascii=False)
        elif verb == "d":
            text = str(int(value)) if isinstance(value, (int, float)) and value is not True else f"%!d({go_str(value)})"
        elif verb == "t":
            text = go_str(value)
        elif verb == "x":
            text = value.encode().hex() if isinstance(value, str) else format(int(value), "x")
        elif verb == "f":
            text = f"%.{prec or 6}f" % float(value)
        else:
            raise TemplateError(f"printf: verb %{verb} is not supported")
        if width and width != "*":
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width), "0" if "0" in flags else " ")
        out.append(text)
    out.append(fmt[pos:])
    if args_left:
        out.append("%!(EXTRA " + ", ".join(go_str(a) for a in args_left) + ")")
    return "".join(out)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, GoNil):
            return ""
        if isinstance(value, dict):
            value = value.get(key, "")  # Go: a missing map key gives the zero value
        elif isinstance(value, list):
            if not isinstance(key, int) or not 0 <= key < len(value):
                raise TemplateError(f"error calling index: index out of range: {key}")
            value = value[key]
        else:
            raise TemplateError(f"error calling index: can't index item of type {_type(value)}")
    return value


def _len(value: Any) -> int:
    if isinstance(value, (dict, list, str)):
        return len(value)
    if value is None or isinstance(value, GoNil):
        return 0
    raise TemplateError(f"error calling len: len of type {_type(value)}")


def _join(items: Any, sep: str) -> str:
    if isinstance(items, GoNil):
        return ""
    if not isinstance(items, list):
        raise TemplateError(f"error calling join: expected a list, got {_type(items)}")
    return sep.join(go_str(i) for i in items)


def _cmp(op):
    def compare(a: Any, *bs: Any) -> bool:
        if op == "eq":
            return any(a == b for b in bs)
        b = bs[0]
        try:
            return {"ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
        except TypeError:
            raise TemplateError(f"error calling {op}: incompatible types for comparison") from None
    return compare


def _and(*values: Any) -> Any:
    for v in values:
        if not _truth(v):
            return v
    return values[-1]


def _or(*values: Any) -> Any:
    for v in values:
        if _truth(v):
            return v
    return values[-1]


FUNCS: dict[str, Any] = {
    "json": go_json, "index": _index, "len": _len, "join": _join, "printf": go_sprintf,
    "print": lambda *a: "".join(go_str(x) for x in a), "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "eq": _cmp("eq"), "ne": _cmp("ne"), "lt": _cmp("lt"), "le": _cmp("le"), "gt": _cmp("gt"), "ge": _cmp("ge"),
    "and": _and, "or": _or, "not": lambda v: not _truth(v),
    "upper": lambda s: str(s).upper(), "lower": lambda s: str(s).lower(), "title": lambda s: str(s).title(),
    "split": lambda s, sep: str(s).split(sep),
}


def _type(value: Any) -> str:
    return {dict: "map[string]interface {}", list: "[]interface {}", str: "string", bool: "bool", int: "int",
            float: "float64", type(None): "<nil>"}.get(type(value), type(value).__name__)


# ---- execution ------------------------------------------------------------------------

class _Scope:
    def __init__(self, dot: Any, root: Any, variables: dict[str, Any]):
        self.dot = dot
        self.root = root
        self.vars = variables


def _field(path: str, scope: _Scope, where: str) -> Any:
    if path == ".":
        return scope.dot
    head, _, rest = path.partition(".") if path.startswith("$") else ("", "", path[1:])
    if path.startswith("$"):
        if head == "$":
            value = scope.root
        elif head in scope.vars:
            value = scope.vars[head]
        else:
            raise TemplateError(f"template: {where}: undefined variable {head!r}")
    else:
        value = scope.dot
    walked = head
    for name in rest.split(".") if rest else []:
        walked += "." + name
        if isinstance(value, GoMap) or (isinstance(value, GoNil) and value.shown == "map[]"):
            value = value.get(name, NO_VALUE) if isinstance(value, GoMap) else NO_VALUE
        elif isinstance(value, dict):
            if name not in value:
                raise TemplateError(f'template: {where}: executing "" at <{walked}>: map has no entry for key "{name}"')
            value = value[name]
        elif value is None:
            raise TemplateError(f"template: {where}: executing \"\" at <{walked}>: nil pointer evaluating "
                                f"interface {{}}.{name}")
        else:
            raise TemplateError(f'template: {where}: executing "" at <{walked}>: can\'t evaluate field {name} '
                                f"in type {_type(value)}")
    return value


def _eval_pipeline(node: _Node, scope: _Scope, where: str) -> Any:
    value: Any = _NOTHING
    for cmd in node.cmds:
        value = _eval_command(cmd, scope, where, value)
    return value


_NOTHING = object()


def _eval_command(cmd: list[_Node], scope: _Scope, where: str, piped: Any) -> Any:
    first = cmd[0]
    if first.kind == "func":
        args = [_eval_operand(op, scope, where) for op in cmd[1:]]
        if piped is not _NOTHING:
            args.append(piped)
        try:
            return FUNCS[first.name](*args)
        except TemplateError as err:
            raise TemplateError(f"template: {where}: {err}") from None
        except TypeError:
            raise TemplateError(f"template: {where}: wrong number of args for {first.name}") from None
        except (ValueError, KeyError, IndexError) as err:
            raise TemplateError(f"template: {where}: error calling {first.name}: {err}") from None
    if len(cmd) > 1 or piped is not _NOTHING:
        raise TemplateError(f"template: {where}: can't give argument to non-function")
    return _eval_operand(first, scope, where)


def _eval_operand(node: _Node, scope: _Scope, where: str) -> Any:
    if node.kind == "lit":
        return node.value
    if node.kind == "field":
        return _field(node.path, scope, where)
    if node.kind == "pipeline":
        return _eval_pipeline(node, scope, where)
    if node.kind == "func":
        return _eval_command([node], scope, where, _NOTHING)
    raise TemplateError(f"template: {where}: bad operand")


def _execute(nodes: list[_Node], scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "action":
            value = _eval_pipeline(node.pipe, scope, node.where)
            if node.pipe.names:
                scope.vars[node.pipe.names[0]] = value
            else:
                out.append(go_str(value))
        elif node.kind in ("if", "with"):
            value = _eval_pipeline(node.pipe, scope, node.where)
            if node.pipe.names:
                scope.vars[node.pipe.names[0]] = value
            if _truth(value):
                inner = _Scope(value if node.kind == "with" else scope.dot, scope.root, scope.vars)
                _execute(node.body, inner, out)
            else:
                _execute(node.otherwise, scope, out)
        elif node.kind == "range":
            value = _eval_pipeline(node.pipe, scope, node.where)
            if isinstance(value, dict):
                pairs = sorted(value.items())
            elif isinstance(value, list):
                pairs = list(enumerate(value))
            elif value is None or isinstance(value, GoNil):
                pairs = []
            else:
                raise TemplateError(f"template: {node.where}: range can't iterate over {go_str(value)}")
            if not pairs:
                _execute(node.otherwise, scope, out)
            for key, item in pairs:
                names = node.pipe.names
                if len(names) == 2:
                    scope.vars[names[0]], scope.vars[names[1]] = key, item
                elif names:
                    scope.vars[names[0]] = item
                _execute(node.body, _Scope(item, scope.root, scope.vars), out)


class Template:
    """A parsed ``--format`` template."""

    def __init__(self, text: str):
        self.text = text
        self.nodes = parse(text)

    def render(self, value: Any) -> str:
        out: list[str] = []
        _execute(self.nodes, _Scope(value, value, {}), out)
        return "".join(out)
