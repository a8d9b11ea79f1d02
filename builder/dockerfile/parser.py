"""Dockerfile text -> logical instruction lines (:class:`Node`), as docker reads them.

This does what docker's ``frontend/dockerfile/parser`` does, rule for rule:

- parser directives (``# escape=`` with ``\\`` or a backtick, ``# syntax=``,
  ``# check=``) only at the top, before any other line, each at most once;
- a UTF-8 BOM on the first line is dropped; ``\\r\\n`` line ends are accepted;
- a line ending in the escape character (then only blanks; not itself
  escaped) continues on the next one; comment lines and blank lines inside a continuation are skipped
  (blank ones with docker's warning); a comment is a line whose first
  non-blank character is ``#``;
- ``RUN``/``COPY``/``ADD`` (also under ``ONBUILD``) in shell form read the
  bodies of their heredocs (``<<EOF``, ``<<-EOF``, ``<<"EOF"``, several per
  line, in order) from the lines that follow;
- the instruction word, then ``--flags`` (docker's quoting rules), then the
  arguments split by the instruction's line parser (JSON array or words).

``dockerfile-parse`` gets plain continuations right but reads heredoc bodies as
instructions, drops instructions written without arguments, mis-reads
``RUN\\`` and ignores a BOM, so the line scanner is our own (it is short).
"""

from __future__ import annotations

import json
import re

from builder.dockerfile.errors import DockerfileError
from builder.dockerfile.expand import ExpansionError, Lexer
from builder.dockerfile.record import Record

__all__ = ["Document", "Heredoc", "Node", "parse", "heredoc_word"]

_BOM = "\ufeff"
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_DIRECTIVES = ("escape", "syntax", "check")
_WS = re.compile(r"[\t\v\f\r ]+")
_HEREDOC = re.compile(r"^(\d*)<<(-?)\s*([^<]*)$")
_LEADING_TABS = re.compile(r"^\t+", re.M)
_HEREDOC_COMMANDS = frozenset(("run", "copy", "add"))


class Heredoc(Record):
    """A here-document: ``content`` is the body as written (newlines kept)."""

    name: str
    content: str
    expand: bool = True
    chomp: bool = False
    fd: int = 0

    @property
    def data(self) -> str:
        """The body with leading tabs removed for ``<<-``."""
        return _LEADING_TABS.sub("", self.content) if self.chomp else self.content


class Node(Record):
    """One instruction as the parser sees it, before typing.

    ``cmd`` is the lower-cased instruction word, ``args`` what its line parser
    made of the rest (JSON elements when ``json``), ``flags`` the raw
    ``--name=value`` words, ``original`` the joined logical line, ``start`` and
    ``end`` 1-based lines (``end`` includes heredoc bodies), ``sub`` the inner
    instruction of ``ONBUILD``.
    """

    cmd: str
    args: tuple[str, ...]
    flags: tuple[str, ...]
    original: str
    start: int
    end: int
    json: bool = False
    heredocs: tuple[Heredoc, ...] = ()
    sub: Node | None = None
    keyword: str = ""

    @property
    def name(self) -> str:
        """The instruction word as docker prints it (upper case)."""
        return self.cmd.upper()


class Document(Record):
    """A parsed Dockerfile: its nodes, the escape character and directives."""

    path: str
    nodes: tuple[Node, ...]
    escape: str = "\\"
    syntax: str | None = None
    warnings: tuple[str, ...] = ()


def _continuation_regex(escape: str) -> re.Pattern:
    """The escape character ending a line (not itself escaped) continues it."""
    e = re.escape(escape)
    return re.compile(rf"([^{e}]){e}[ \t]*$|^{e}[ \t]*$")


class _Directives:
    def __init__(self, path: str) -> None:
        self.path = path
        self.escape = "\\"
        self.syntax: str | None = None
        self.done = False
        self.seen: set[str] = set()
        self._continuation = _continuation_regex("\\")

    def check(self, line: str, lineno: int) -> None:
        if self.done:
            return
        m = _DIRECTIVE.match(line)
        key = m.group(1).lower() if m else ""
        if key not in _DIRECTIVES:
            self.done = True
            return
        if key in self.seen:
            raise DockerfileError(f"only one {key} parser directive can be used", self.path, lineno)
        self.seen.add(key)
        assert m is not None  # a known directive's key came from the match
        value = m.group(2)
        if key == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(f"invalid escape token '{value}' does not match ` or \\",
                                      self.path, lineno)
            self.escape = value
            self._continuation = _continuation_regex(value)
        elif key == "syntax":
            self.syntax = value

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """(line without the continuation mark, whether the instruction ends here)."""
        m = self._continuation.search(line)
        if m:
            return line[:m.start()] + (m.group(1) or ""), False
        return line, True


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _split_lines(text: str) -> list[str]:
    """Lines with their ``\\n`` kept (docker splits on ``\\n`` only)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def parse(text: str, path: str = "Dockerfile") -> Document:
    """Parse Dockerfile ``text``; errors are :class:`DockerfileError` naming ``path``."""
    if text.startswith(_BOM):
        text = text[1:]
    lines = _split_lines(text)
    d = _Directives(path)
    nodes: list[Node] = []
    warnings: list[str] = []
    i, n = 0, len(lines)
    while i < n:
        line = lines[i].rstrip("\r\n").lstrip()
        i += 1
        d.check(line, i)
        start = i
        if _is_comment(line):
            continue
        body, eol = d.trim_continuation(line)
        if eol and not body:
            continue
        parts = [body]
        empty_continuation = False
        while not eol and i < n:
            raw = lines[i].rstrip("\r\n")
            i += 1
            d.check(raw, i)
            if _is_comment(raw):
                continue
            if not raw.strip():
                empty_continuation = True
                continue
            body, eol = d.trim_continuation(raw)
            parts.append(body)
        logical = "".join(parts)
        if empty_continuation:
            warnings.append(f"{path}:{start}: empty continuation line found in: {logical}")
        node = _node_from_line(logical, d.escape, path, start)
        heredocs: list[Heredoc] = []
        if _can_contain_heredoc(node) and "<<" in logical:
            for doc in _heredocs_from_line(logical, path, start):
                body_lines: list[str] = []
                while True:
                    if i >= n:
                        raise DockerfileError("unterminated heredoc", path, start)
                    raw = lines[i]
                    i += 1
                    candidate = raw.rstrip("\r\n")
                    if doc.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == doc.name:
                        break
                    body_lines.append(raw)
                heredocs.append(Heredoc(doc.name, "".join(body_lines), doc.expand, doc.chomp, doc.fd))
        nodes.append(node.replace(end=i, heredocs=tuple(heredocs)))
    if not nodes:
        raise DockerfileError("file with no instructions", path, max(len(lines), 1))
    return Document(path, tuple(nodes), d.escape, d.syntax, tuple(warnings))


def _can_contain_heredoc(node: Node) -> bool:
    if node.cmd == "onbuild" and node.sub is not None:
        node = node.sub
    return node.cmd in _HEREDOC_COMMANDS and not node.json


_HEREDOC_OPEN = re.compile(r"^\d*<<-?$")


def _heredocs_from_line(line: str, path: str, lineno: int) -> list[Heredoc]:
    """The heredocs a line opens, in order (``<< EOF`` with blanks counts, as in BuildKit)."""
    try:
        words = Lexer(raw_quotes=True, raw_escapes=True, skip_unset=True).process_words(line, {})
    except ExpansionError:
        return []  # BuildKit ignores lines its lexer cannot split
    docs = []
    for i, word in enumerate(words):
        if _HEREDOC_OPEN.match(word):
            continue  # joined with the word after it
        if i and _HEREDOC_OPEN.match(words[i - 1]):
            word = words[i - 1] + " " + word
        doc = _heredoc_from_word(word, path, lineno)
        if doc is not None:
            docs.append(doc)
    return docs


def _heredoc_from_word(word: str, path: str, lineno: int) -> Heredoc | None:
    """The heredoc a word like ``<<EOF``, ``<<-"EOF"`` or ``3<<EOF`` starts, else None."""
    m = _HEREDOC.match(word)
    if not m or not m.group(3):
        return None
    rest = m.group(3)
    try:
        words = Lexer(skip_unset=True).process_words(rest, {})
        if len(words) != 1:
            return None
        raw = Lexer(skip_unset=True, raw_quotes=True).process_words(rest, {})
    except ExpansionError as err:
        raise DockerfileError(str(err), path, lineno) from None
    quotes = words[0].count("'") + words[0].count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return Heredoc(words[0], "", expand=quotes == raw_quotes, chomp=m.group(2) == "-",
                   fd=int(m.group(1) or 0))


def heredoc_word(word: str) -> Heredoc | None:
    """The heredoc a COPY/ADD source word names (body not filled in), else None."""
    try:
        return _heredoc_from_word(word, "", 0)
    except DockerfileError:
        return None


# -- one logical line --------------------------------------------------------

def _node_from_line(line: str, escape: str, path: str, lineno: int) -> Node:
    split = _WS.split(line.strip(), maxsplit=1)
    keyword = split[0]
    cmd = keyword.lower()
    flags: list[str] = []
    rest = ""
    if len(split) == 2:
        rest, flags = _extract_flags(split[1])
        rest = rest.strip()
    parser = _LINE_PARSERS.get(cmd, _parse_ignore)
    try:
        args, is_json, sub = parser(rest, escape, path, lineno)
    except _LineError as err:
        raise DockerfileError(str(err), path, lineno) from None
    return Node(cmd, tuple(args), tuple(flags), line, lineno, lineno, is_json, (), sub, keyword)


class _LineError(Exception):
    pass


def _extract_flags(line: str) -> tuple[str, list[str]]:
    """Leading ``--flag`` words (quotes and backslashes processed) and the rest."""
    words, rest = _split_words(line, "\\", flags=True)
    return rest, words


def _parse_words(rest: str, escape: str) -> list[str]:
    """Split on blanks outside quotes, keeping quotes and escapes (processed later)."""
    return _split_words(rest, escape, flags=False)[0]


def _split_words(text: str, escape: str, flags: bool) -> tuple[list[str], str]:
    """docker's word splitter, in its two variants: (words, unparsed rest).

    ``flags``: docker's ``extractBuilderFlags``: stop at the first word not
    starting with ``--`` (or after a bare ``--``), and drop quotes and escapes.
    Otherwise ``parseWords``: split it all, keeping quotes and escapes (no
    escaping inside single quotes).
    """
    keep = not flags
    words: list[str] = []
    word: list[str] = []
    in_word = in_quote = blank_ok = False
    quote = ""
    pos, n = 0, len(text)
    while pos < n:
        ch = text[pos]
        if not in_word and not in_quote:
            if ch.isspace():
                pos += 1
                continue
            if flags and not text.startswith("--", pos):
                return words, text[pos:]
            in_word = True
        if in_quote:
            if ch == quote:
                in_quote = False
            elif ch == escape and (flags or quote != "'"):
                if pos + 1 == n:
                    in_quote = False
                    pos += 1
                    continue
                if keep:
                    word.append(ch)
                pos += 1
                ch = text[pos]
            if keep or ch != quote or in_quote:
                word.append(ch)
            pos += 1
            continue
        if ch.isspace():
            in_word = False
            joined = "".join(word)
            if flags and joined == "--":
                return words, text[pos:]
            if blank_ok or joined:
                words.append(joined)
            word = []
            blank_ok = False
        elif ch in "'\"":
            quote, blank_ok, in_quote = ch, True, True
            if keep:
                word.append(ch)
        elif ch == escape:
            if pos + 1 < n:
                if keep:
                    word.append(ch)
                pos += 1
                word.append(text[pos])
        else:
            word.append(ch)
        pos += 1
    joined = "".join(word)
    if (in_word or in_quote) and (blank_ok or joined) and not (flags and joined == "--"):
        words.append(joined)
    return words, ""


_JSON = json.JSONDecoder()
_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"


def _parse_json(rest: str) -> list[str] | None:
    """The elements of a JSON array of strings; None when ``rest`` is not JSON.

    Like docker 20.10 (a streaming decoder), text after the array is ignored.
    """
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None
    try:
        value, _ = _JSON.raw_decode(rest)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _LineError(_NOT_STRINGS)
    return value


def _parse_ignore(rest, escape, path, lineno):
    return [], False, None


def _parse_sub(rest, escape, path, lineno):
    if not rest:
        return [], False, None
    child = _node_from_line(rest, escape, path, lineno)
    return [child.cmd, *child.args], False, child


def _parse_name_val(key: str):
    def parse(rest, escape, path, lineno):
        words = _parse_words(rest, escape)
        if not words:
            return [], False, None
        if "=" not in words[0]:
            parts = _WS.split(rest, maxsplit=1)
            if len(parts) < 2:
                raise _LineError(f"{key} must have two arguments")
            return parts, False, None
        args: list[str] = []
        for word in words:
            if "=" not in word:
                raise _LineError(f"Syntax error - can't find = in {json.dumps(word)}. "
                                 "Must be of the form: name=value")
            args.extend(word.split("=", 1))
        return args, False, None
    return parse


def _parse_name_or_name_val(rest, escape, path, lineno):
    return _parse_words(rest, escape), False, None


def _parse_whitespace(rest, escape, path, lineno):
    return (_WS.split(rest) if rest else []), False, None


def _parse_string(rest, escape, path, lineno):
    return ([rest] if rest else []), False, None


def _parse_maybe_json(rest, escape, path, lineno):
    if not rest:
        return [], False, None
    value = _parse_json(rest)
    if value is not None:
        return value, True, None
    return [rest], False, None


def _parse_maybe_json_to_list(rest, escape, path, lineno):
    value = _parse_json(rest)
    if value is not None:
        return value, True, None
    return _parse_whitespace(rest, escape, path, lineno)


def _parse_health(rest, escape, path, lineno):
    sep = 0
    while sep < len(rest) and not rest[sep].isspace():
        sep += 1
    if sep == 0:
        return [], False, None
    nxt = sep
    while nxt < len(rest) and rest[nxt].isspace():
        nxt += 1
    args, is_json, _ = _parse_maybe_json(rest[nxt:], escape, path, lineno)
    return [rest[:sep], *args], is_json, None


_LINE_PARSERS = {
    "add": _parse_maybe_json_to_list,
    "arg": _parse_name_or_name_val,
    "cmd": _parse_maybe_json,
    "copy": _parse_maybe_json_to_list,
    "entrypoint": _parse_maybe_json,
    "env": _parse_name_val("ENV"),
    "expose": _parse_whitespace,
    "from": _parse_whitespace,
    "healthcheck": _parse_health,
    "label": _parse_name_val("LABEL"),
    "maintainer": _parse_string,
    "onbuild": _parse_sub,
    "run": _parse_maybe_json,
    "shell": _parse_maybe_json,
    "stopsignal": _parse_string,
    "user": _parse_string,
    "volume": _parse_maybe_json_to_list,
    "workdir": _parse_string,
}
