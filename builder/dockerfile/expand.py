"""Docker's word expansion: quotes, escapes and ``$VAR`` substitution.

A re-implementation of the semantics of BuildKit's ``frontend/dockerfile/shell``
lexer as docker 20.10 ships it (the reference this project is checked against):

- ``$NAME``, ``${NAME}``; a name is letters, digits and ``_``, or a run of
  digits, or one special parameter (``@ * # ? - $ ! 0``); ``$`` before anything
  else stays a literal ``$``;
- ``${NAME:-word}`` / ``${NAME:+word}`` / ``${NAME:?msg}`` (empty counts as
  unset) and ``${NAME?msg}``; the word is itself expanded; any other modifier is
  an error (``${NAME-word}`` gives docker 20.10's "missing ':' in substitution");
- single quotes are literal; double quotes keep spaces and let the escape
  character escape only ``"``, ``$`` and itself; outside quotes the escape
  character escapes anything, and a trailing one is dropped.

:class:`Lexer` options give the raw variants the parser needs for heredocs.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ExpansionError", "Lexer", "expand_word", "expand_words"]

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class ExpansionError(ValueError):
    """A word that cannot be expanded (bad syntax or a ``${X:?}`` failure)."""


class Lexer:
    """Shell-like word processor; ``escape`` is ``\\`` or a backtick.

    ``raw_quotes`` keeps quote characters in the output, ``raw_escapes`` keeps
    escape characters, ``skip_quotes`` treats quotes as ordinary characters
    (heredoc bodies) and ``skip_unset`` leaves references to unset names as
    they are written.
    """

    __slots__ = ("escape", "raw_quotes", "raw_escapes", "skip_quotes", "skip_unset",
                 "_s", "_i", "_env", "_split")

    def __init__(self, escape: str = "\\", *, raw_quotes: bool = False, raw_escapes: bool = False,
                 skip_quotes: bool = False, skip_unset: bool = False) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_quotes = skip_quotes
        self.skip_unset = skip_unset

    # -- public ---------------------------------------------------------------
    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """``word`` with quotes processed and variables substituted."""
        if self._plain(word):
            return word
        return self._process(word, env, False)[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Like :meth:`process_word`, then split on unquoted whitespace."""
        if self._plain(word):
            return word.split()
        return self._process(word, env, True)[1]

    def _plain(self, word: str) -> bool:
        """Nothing to do: no ``$``, quote or escape character."""
        return "$" not in word and self.escape not in word and (
            self.skip_quotes or ("'" not in word and '"' not in word))

    # -- scanner --------------------------------------------------------------
    def _process(self, word: str, env: Mapping[str, str], split: bool) -> tuple[str, list[str]]:
        self._s, self._i, self._env = word, 0, env
        self._split = split
        try:
            return self._stop_on("")
        except ExpansionError as err:
            raise ExpansionError(f"failed to process {_go_quote(word)}: {err}") from None

    def _peek(self) -> str:
        return self._s[self._i] if self._i < len(self._s) else ""

    def _next(self) -> str:
        ch = self._peek()
        if ch:
            self._i += 1
        return ch

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words() if self._split else _NO_WORDS
        while self._i < len(self._s):
            ch = self._s[self._i]
            if stop and ch == stop:
                self._i += 1
                return "".join(result), words.done()
            if ch == "$":
                text = self._dollar()
                result.append(text)
                words.add_string(text)
            elif ch in "'\"" and not self.skip_quotes:
                text = self._single_quote() if ch == "'" else self._double_quote()
                result.append(text)
                words.add_raw(text)
            else:
                self._i += 1
                if ch == self.escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self._next()
                    if not ch:
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.done()

    def _single_quote(self) -> str:
        start = self._i + 1
        end = self._s.find("'", start)
        if end < 0:
            raise ExpansionError("unexpected end of statement while looking for matching single-quote")
        self._i = end + 1
        body = self._s[start:end]
        return f"'{body}'" if self.raw_quotes else body

    def _double_quote(self) -> str:
        out: list[str] = ['"'] if self.raw_quotes else []
        self._i += 1
        while True:
            ch = self._peek()
            if not ch:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self._i += 1
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
                continue
            self._i += 1
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                nxt = self._peek()
                if not nxt:
                    continue
                if nxt in ('"', "$", self.escape):
                    ch = self._next()
            out.append(ch)

    def _name(self) -> str:
        s, i = self._s, self._i
        if i < len(s) and s[i].isdecimal():
            j = i
            while j < len(s) and s[j].isdecimal():
                j += 1
            self._i = j
            return s[i:j]
        if i < len(s) and s[i] in _SPECIAL_PARAMS:
            self._i = i + 1
            return s[i]
        j = i
        while j < len(s) and (s[j].isalpha() or s[j].isdecimal() or s[j] == "_"):
            j += 1
        self._i = j
        return s[i:j]

    def _lookup(self, name: str) -> str | None:
        return self._env.get(name)

    def _dollar(self) -> str:
        self._i += 1
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$"
            value = self._lookup(name)
            if value is None:
                return "$" + name if self.skip_unset else ""
            return value
        self._i += 1
        ch = self._peek()
        if not ch:
            raise ExpansionError("syntax error: missing '}'")
        if ch in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self._name()
        ch = self._next()
        if ch == "}":
            value = self._lookup(name)
            if value is None:
                return "${%s}" % name if self.skip_unset else ""
            return value
        if ch == "?":
            word = self._modifier_word()
            value = self._lookup(name)
            if value is None:
                if self.skip_unset:
                    return "${%s?%s}" % (name, word)
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if ch == ":":
            modifier = self._next()
            word = self._modifier_word()
            value = self._lookup(name)
            if value is None and self.skip_unset:
                return "${%s:%s%s}" % (name, modifier, word)
            if modifier == "+":
                return word if value else ""
            if modifier == "-":
                return value if value else word
            if modifier == "?":
                if value is None:
                    raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
                if not value:
                    raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
        raise ExpansionError("missing ':' in substitution")

    def _modifier_word(self) -> str:
        try:
            return self._stop_on("}")[0]
        except ExpansionError:
            if not self._peek():
                raise ExpansionError("syntax error: missing '}'") from None
            raise


class _Words:
    """Word splitting that follows the lexer (quoted text never splits)."""

    __slots__ = ("words", "word", "in_word")

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def done(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _NoWords(_Words):
    """Stands in for :class:`_Words` when only the joined result is wanted."""

    def add_char(self, ch: str) -> None:
        pass

    def add_raw(self, text: str) -> None:
        pass

    def add_string(self, text: str) -> None:
        pass

    def done(self) -> list[str]:
        return []


_NO_WORDS = _NoWords()


def _go_quote(s: str) -> str:
    """``s`` quoted like Go's ``%q`` (for messages that match docker's)."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def expand_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word expanded against ``env`` with docker's rules."""
    return Lexer(escape).process_word(word, env)


def expand_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """``word`` expanded, then split into words (EXPOSE does this)."""
    return Lexer(escape).process_words(word, env)
