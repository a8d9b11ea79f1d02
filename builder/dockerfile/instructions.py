"""Typed Dockerfile instructions, built from parser :class:`~builder.dockerfile.parser.Node`s.

Every instruction is an immutable record carrying ``path``, ``line`` (1-based
start), ``end_line`` and ``original`` (the logical line). Instructions that
docker expands have ``expand(env)`` returning an expanded copy; the rest return
themselves. Validation and messages follow docker's ``instructions/parse.go``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from builder.dockerfile.errors import DockerfileError
from builder.dockerfile.expand import ExpansionError, Lexer
from builder.dockerfile.flags import BOOL, STRING, STRINGS, FlagError, parse_flags
from builder.dockerfile.mounts import Mount, MountError, parse_mount
from builder.dockerfile.parser import Heredoc, Node, heredoc_word, parse
from builder.dockerfile.record import Record

__all__ = [
    "Instruction", "From", "Run", "Cmd", "Entrypoint", "Env", "Arg", "Label", "Expose",
    "Volume", "User", "Workdir", "Copy", "Add", "SourceContent", "Onbuild", "StopSignal",
    "Healthcheck", "Shell", "Maintainer", "parse_instruction", "DEFAULT_SHELL",
]

DEFAULT_SHELL = ("/bin/sh", "-c")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")


class Instruction(Record):
    """Common fields; ``name`` is the upper-case instruction word."""

    name: str
    path: str
    line: int
    end_line: int
    original: str
    escape: str = "\\"

    def error(self, message: str) -> DockerfileError:
        """A :class:`DockerfileError` located at this instruction."""
        return DockerfileError(message, self.path, self.line)

    def expand(self, env: Mapping[str, str]) -> Instruction:
        """This instruction with variables expanded (itself if docker does not expand it)."""
        return self

    # helpers for subclasses
    def _word(self, word: str, env: Mapping[str, str]) -> str:
        try:
            return Lexer(self.escape).process_word(word, env)
        except ExpansionError as err:
            raise self.error(str(err)) from None

    def _words(self, word: str, env: Mapping[str, str]) -> list[str]:
        try:
            return Lexer(self.escape).process_words(word, env)
        except ExpansionError as err:
            raise self.error(str(err)) from None


class From(Instruction):
    """``FROM [--platform=P] IMAGE [AS NAME]``; ``stage_name`` is lower-cased.

    ``image`` is as written: expand it with the global ARGs
    (:meth:`builder.dockerfile.stages.BuildArgs.expand_from`).
    """

    image: str = ""
    stage_name: str | None = None
    platform: str | None = None


class _CommandLine(Instruction):
    """Shell form (``shell_form``: run through the SHELL) or exec form (JSON)."""

    command: tuple[str, ...] = ()
    shell_form: bool = True

    def argv(self, shell: Sequence[str] = DEFAULT_SHELL) -> list[str]:
        """The process arguments: ``shell + [command]`` for shell form."""
        return [*shell, *self.command] if self.shell_form else list(self.command)


class Run(_CommandLine):
    """``RUN``; not expanded by the builder (the shell does it), except ``--mount`` values.

    ``mounts`` are parsed at expansion time from ``mount_specs``; before that
    they hold what could be parsed without variables (for stage dependencies).
    ``heredocs`` are the here-documents of the line (see :meth:`script`).
    """

    mount_specs: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: str | None = None
    security: str | None = None
    heredocs: tuple[Heredoc, ...] = ()

    def expand(self, env: Mapping[str, str]) -> Run:
        mounts = tuple(self._mount(spec, lambda w: self._word(w, env)) for spec in self.mount_specs)
        return self.replace(mounts=mounts)

    def _mount(self, spec: str, expand) -> Mount:
        try:
            return parse_mount(spec, expand)
        except MountError as err:
            raise self.error(str(err)) from None

    def script(self, shell: Sequence[str] = DEFAULT_SHELL) -> tuple[list[str], dict[str, tuple[bytes, int]]]:
        """(argv, files to provide) for this RUN, heredocs handled as BuildKit does.

        A lone ``RUN <<EOF`` runs the body with the shell, or, when the body
        starts with ``#!``, writes it to ``/dev/pipes/EOF`` (mode 0755, in the
        ``files`` map: path -> (bytes, mode)) and executes that file. Any other
        heredoc line goes to the shell whole, bodies and terminators included.
        """
        if not self.heredocs:
            return self.argv(shell), {}
        first = self.heredocs[0]
        if len(self.command) == 1 and heredoc_word(self.command[0]) is not None:
            if first.content.startswith("#!"):
                target = "/dev/pipes/" + first.name
                return [target], {target: (first.data.encode(), 0o755)}
            return [*shell, first.data], {}
        full = self.command[0] if self.command else ""
        for doc in self.heredocs:
            full += "\n" + doc.content + doc.name
        return [*shell, full], {}


class Cmd(_CommandLine):
    """``CMD``; Cmd in the config is :meth:`argv` with the stage's SHELL."""


class Entrypoint(_CommandLine):
    """``ENTRYPOINT``; ``ENTRYPOINT []`` (empty exec form) clears it."""


class _Pairs(Instruction):
    pairs: tuple[tuple[str, str], ...] = ()

    def expand(self, env: Mapping[str, str]):
        pairs = tuple((self._word(k, env), self._word(v, env)) for k, v in self.pairs)
        return self.replace(pairs=pairs)


class Env(_Pairs):
    """``ENV K=V ...`` or ``ENV K V``; expanded against the env before the instruction."""


class Label(_Pairs):
    """``LABEL K=V ...``; keys and values expanded, quotes removed."""


class Arg(Instruction):
    """``ARG NAME[=default] ...``; ``args`` holds (name, default or None)."""

    args: tuple[tuple[str, str | None], ...] = ()

    def expand(self, env: Mapping[str, str]) -> Arg:
        args = tuple((self._word(k, env), None if v is None else self._word(v, env))
                     for k, v in self.args)
        return self.replace(args=args)


class Expose(Instruction):
    """``EXPOSE 80 443/udp``; each word expanded then split again."""

    ports: tuple[str, ...] = ()

    def expand(self, env: Mapping[str, str]) -> Expose:
        ports = tuple(p for word in self.ports for p in self._words(word, env))
        return self.replace(ports=ports)

    def exposed_ports(self) -> list[str]:
        """Config ``ExposedPorts`` keys: ``80`` -> ``80/tcp``, ranges unrolled, proto lower-cased."""
        out: list[str] = []
        for spec in self.ports:
            port, _, proto = spec.rpartition(":")[2].partition("/")
            proto = (proto or "tcp").lower()
            if proto not in ("tcp", "udp", "sctp"):
                raise self.error(f"Invalid proto: {proto}")
            first, _, last = port.partition("-")
            try:
                start = int(first)
                end = int(last) if last else start
            except ValueError:
                raise self.error(f"Invalid containerPort: {port}") from None
            if not 0 <= start <= end <= 65535:
                raise self.error(f"Invalid containerPort: {port}")
            out.extend(f"{n}/{proto}" for n in range(start, end + 1))
        return out


class Volume(Instruction):
    """``VOLUME /a /b`` or ``VOLUME ["/a"]``."""

    paths: tuple[str, ...] = ()

    def expand(self, env: Mapping[str, str]) -> Volume:
        paths = tuple(self._word(p, env) for p in self.paths)
        for p in paths:
            if not p.strip():
                raise self.error("VOLUME specified can not be an empty string")
        return self.replace(paths=paths)


class _Single(Instruction):
    value: str = ""

    def expand(self, env: Mapping[str, str]):
        return self.replace(value=self._word(self.value, env))


class User(_Single):
    """``USER name[:group]`` (``value``)."""


class Workdir(_Single):
    """``WORKDIR path`` (``value``); relative paths join the previous WORKDIR."""

    def expand(self, env: Mapping[str, str]) -> Workdir:
        expanded = super().expand(env)
        if not expanded.value:
            raise self.error("cannot normalize nothing")
        return expanded


class StopSignal(_Single):
    """``STOPSIGNAL SIGTERM`` (``value``)."""


class Maintainer(Instruction):
    """``MAINTAINER text``: sets the image Author (deprecated; not expanded)."""

    author: str = ""


class SourceContent(Record):
    """A COPY/ADD source given inline as a heredoc: file ``path`` with ``data``."""

    path: str
    data: str
    expand: bool


class _CopyBase(Instruction):
    """Sources (context paths, stage paths or URLs), inline ``contents`` and ``dest``.

    ``json`` tells whether the JSON form was used. ``chown``/``chmod`` are
    expanded strings ("" when absent); ``exclude`` patterns (``--exclude``).
    """

    sources: tuple[str, ...] = ()
    contents: tuple[SourceContent, ...] = ()
    dest: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    exclude: tuple[str, ...] = ()
    json: bool = False

    def expand(self, env: Mapping[str, str]):
        raw = Lexer(self.escape, skip_quotes=True)
        try:
            contents = tuple(
                c.replace(data=raw.process_word(c.data, env)) if c.expand else c
                for c in self.contents)
        except ExpansionError as err:
            raise self.error(str(err)) from None
        return self.replace(
            sources=tuple(self._word(s, env) for s in self.sources),
            dest=self._word(self.dest, env), chown=self._word(self.chown, env),
            chmod=self._word(self.chmod, env), contents=contents,
            exclude=tuple(self._word(e, env) for e in self.exclude))


class Copy(_CopyBase):
    """``COPY [--from=STAGE|IMAGE] [--chown] [--chmod] [--link] [--parents] [--exclude] SRC... DEST``.

    ``from_`` is as written; resolve it with
    :meth:`builder.dockerfile.stages.Plan.resolve_from`.
    """

    from_: str = ""
    parents: bool = False


class Add(_CopyBase):
    """``ADD [--chown] [--chmod] [--link] [--checksum=sha256:...] [--keep-git-dir] SRC... DEST``."""

    checksum: str = ""
    keep_git_dir: bool = False

    def expand(self, env: Mapping[str, str]) -> Add:
        expanded = super().expand(env)
        return expanded.replace(checksum=self._word(self.checksum, env))


class Onbuild(Instruction):
    """``ONBUILD <instruction>``: ``expression`` is stored in the config's OnBuild.

    ``trigger`` is the inner instruction word (upper case). Triggers run in a
    child build: parse them with :func:`builder.dockerfile.parse_triggers`.
    """

    expression: str = ""
    trigger: str = ""

    def instruction(self) -> Instruction:
        """The inner instruction, typed (docker only checks it when a child build runs it)."""
        node = parse(self.expression, self.path).nodes[0]
        return parse_instruction(node.replace(start=self.line, end=self.end_line), self.path, self.escape)


class Healthcheck(Instruction):
    """``HEALTHCHECK [options] CMD ...`` or ``HEALTHCHECK NONE``.

    ``test`` is the config's Test (``["NONE"]``, ``["CMD", ...]`` or
    ``["CMD-SHELL", "cmd"]``); durations are nanoseconds, 0 when not given.
    """

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    def config(self) -> dict:
        """The image config ``Healthcheck`` object (zero fields omitted, like docker)."""
        out: dict = {"Test": list(self.test)}
        for key, value in (("Interval", self.interval), ("Timeout", self.timeout),
                           ("StartPeriod", self.start_period),
                           ("StartInterval", self.start_interval), ("Retries", self.retries)):
            if value:
                out[key] = value
        return out


class Shell(Instruction):
    """``SHELL ["executable", "param"]`` (JSON only)."""

    shell: tuple[str, ...] = ()


# -- parsing ------------------------------------------------------------------

def parse_instruction(node: Node, path: str, escape: str = "\\") -> Instruction:
    """The typed instruction for ``node``; :class:`DockerfileError` if docker rejects it."""
    parser = _PARSERS.get(node.cmd)
    base = {"name": node.name, "path": path, "line": node.start, "end_line": node.end,
            "original": node.original, "escape": escape}
    if parser is None:
        raise DockerfileError(f"unknown instruction: {node.keyword.upper() or node.name}", path, node.start)
    try:
        return parser(node, base)
    except (FlagError, _Invalid) as err:
        raise DockerfileError(str(err), path, node.start) from None


class _Invalid(ValueError):
    pass


def _flags(node: Node, spec: Mapping[str, str] | None = None) -> dict[str, object]:
    return parse_flags(node.flags, spec or {})


def _at_least_one(node: Node) -> None:
    if not node.args:
        raise _Invalid(f"{node.name} requires at least one argument")


def _exactly_one(node: Node) -> None:
    if len(node.args) != 1:
        raise _Invalid(f"{node.name} requires exactly one argument")


def _command_args(node: Node) -> tuple[str, ...]:
    """docker's handleJSONArgs: JSON elements, or the whole rest as one string."""
    if node.json:
        return node.args
    return (" ".join(node.args),) if node.args else ()


def _from(node: Node, base: dict) -> From:
    args = node.args
    name = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise _Invalid(f'invalid name for build stage: "{args[2]}", '
                           "name can't start with a number or contain symbols")
    elif len(args) != 1:
        raise _Invalid("FROM requires either one or three arguments")
    flags = _flags(node, {"platform": STRING})
    return From(**base, image=args[0], stage_name=name, platform=flags.get("platform"))


def _run(node: Node, base: dict) -> Run:
    flags = _flags(node, {"mount": STRINGS, "network": STRING, "security": STRING})
    specs: tuple[str, ...] = tuple(flags.get("mount", ()))  # type: ignore[arg-type]
    mounts = []
    for spec in specs:
        try:
            mounts.append(parse_mount(spec))
        except MountError as err:
            if "$" not in spec:
                raise _Invalid(str(err)) from None
    network = flags.get("network")
    if network is not None and network not in ("default", "none", "host"):
        raise _Invalid(f"unsupported network mode {network!r}")
    security = flags.get("security")
    if security is not None and security not in ("sandbox", "insecure"):
        raise _Invalid(f"unsupported security mode {security!r}")
    return Run(**base, command=_command_args(node), shell_form=not node.json,
               mount_specs=specs, mounts=tuple(mounts), network=network,  # type: ignore[arg-type]
               security=security, heredocs=node.heredocs)  # type: ignore[arg-type]


def _cmd(node: Node, base: dict) -> Cmd:
    _flags(node)
    return Cmd(**base, command=_command_args(node), shell_form=not node.json)


def _entrypoint(node: Node, base: dict) -> Entrypoint:
    _flags(node)
    return Entrypoint(**base, command=_command_args(node), shell_form=not node.json)


def _pairs(node: Node) -> tuple[tuple[str, str], ...]:
    _flags(node)
    _at_least_one(node)
    args = node.args
    if len(args) % 2:
        raise _Invalid(f"Bad input to {node.name}, too many arguments")
    pairs = tuple((args[i], args[i + 1]) for i in range(0, len(args), 2))
    if any(not k for k, _ in pairs):
        raise _Invalid(f"{node.name} names can not be blank")
    return pairs


def _env(node: Node, base: dict) -> Env:
    return Env(**base, pairs=_pairs(node))


def _label(node: Node, base: dict) -> Label:
    return Label(**base, pairs=_pairs(node))


def _arg(node: Node, base: dict) -> Arg:
    _at_least_one(node)
    args: list[tuple[str, str | None]] = []
    for word in node.args:
        if "=" in word:
            key, value = word.split("=", 1)
            if not key:
                raise _Invalid("ARG names can not be blank")
            args.append((key, value))
        else:
            args.append((word, None))
    _flags(node)
    return Arg(**base, args=tuple(args))


def _expose(node: Node, base: dict) -> Expose:
    _at_least_one(node)
    _flags(node)
    return Expose(**base, ports=tuple(sorted(node.args)))


def _volume(node: Node, base: dict) -> Volume:
    _at_least_one(node)
    _flags(node)
    for v in node.args:
        if not v.strip():
            raise _Invalid("VOLUME specified can not be an empty string")
    return Volume(**base, paths=tuple(v.strip() for v in node.args))


def _single(cls):
    def parse(node: Node, base: dict):
        _exactly_one(node)
        if cls is not StopSignal:
            _flags(node)
        return cls(**base, value=node.args[0])
    return parse


def _maintainer(node: Node, base: dict) -> Maintainer:
    _exactly_one(node)
    _flags(node)
    return Maintainer(**base, author=node.args[0])


def _sources_and_dest(node: Node) -> tuple[tuple[str, ...], tuple[SourceContent, ...], str]:
    if len(node.args) < 2:
        raise _Invalid(f"{node.name} requires at least two arguments, but only one was provided. "
                       "Destination could not be determined")
    *srcs, dest = node.args
    if not node.json and heredoc_word(dest) is not None:
        raise _Invalid(f"{node.name} cannot accept a heredoc as a destination")
    bodies = {doc.name: doc for doc in node.heredocs}
    paths: list[str] = []
    contents: list[SourceContent] = []
    for src in srcs:
        doc = heredoc_word(src) if not node.json else None
        if doc is not None:
            body = bodies.get(doc.name)
            data = body.data if body is not None else ""
            contents.append(SourceContent(doc.name, data, doc.expand))
        else:
            paths.append(src)
    return tuple(paths), tuple(contents), dest


_COPY_FLAGS = {"chown": STRING, "chmod": STRING, "link": BOOL, "exclude": STRINGS}


def _copy_fields(node: Node, flags: dict) -> dict:
    """The fields COPY and ADD share, from the node and its parsed flags."""
    sources, contents, dest = _sources_and_dest(node)
    return {"sources": sources, "contents": contents, "dest": dest, "json": node.json,
            "chown": str(flags.get("chown", "")), "chmod": str(flags.get("chmod", "")),
            "link": bool(flags.get("link")), "exclude": tuple(flags.get("exclude", ()))}


def _copy(node: Node, base: dict) -> Copy:
    flags = _flags(node, {**_COPY_FLAGS, "from": STRING, "parents": BOOL})
    return Copy(**base, **_copy_fields(node, flags), from_=str(flags.get("from", "")),
                parents=bool(flags.get("parents")))


def _add(node: Node, base: dict) -> Add:
    flags = _flags(node, {**_COPY_FLAGS, "keep-git-dir": BOOL, "checksum": STRING})
    return Add(**base, **_copy_fields(node, flags), checksum=str(flags.get("checksum", "")),
               keep_git_dir=bool(flags.get("keep-git-dir")))


_ONBUILD_PREFIX = re.compile(r"(?i)^\s*ONBUILD\s*")


def _onbuild(node: Node, base: dict) -> Onbuild:
    _at_least_one(node)
    _flags(node)
    trigger = node.args[0].strip().upper()
    if trigger == "ONBUILD":
        raise _Invalid("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _Invalid(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", node.original, count=1)
    for doc in node.heredocs:
        expression += "\n" + doc.content + doc.name
    return Onbuild(**base, expression=expression, trigger=trigger)


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` (``1m30s``, ``1.5h``, ``300ms``) in nanoseconds."""
    s = text
    sign = -1 if s.startswith("-") else 1
    s = s[1:] if s[:1] in ("-", "+") else s
    if s == "0":
        return 0
    if not s:
        raise _Invalid(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            number = re.match(r"(\d+\.?\d*|\.\d+)([^\d.]*)", s[pos:])
            if number and not number.group(2):
                raise _Invalid(f'time: missing unit in duration "{text}"')
            if number:
                raise _Invalid(f'time: unknown unit "{number.group(2)}" in duration "{text}"')
            raise _Invalid(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * int(round(total))


def _interval(flags: Mapping[str, object], name: str) -> int:
    value = str(flags.get(name, ""))
    if not value:
        return 0
    ns = parse_duration(value)
    if ns < 1_000_000:
        raise _Invalid(f'Interval "{name}" cannot be less than 1ms')
    return ns


def _healthcheck(node: Node, base: dict) -> Healthcheck:
    _at_least_one(node)
    kind = node.args[0].upper()
    rest = node.args[1:]
    if kind == "NONE":
        if rest:
            raise _Invalid("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(**base, test=("NONE",))
    flags = _flags(node, {"interval": STRING, "timeout": STRING, "start-period": STRING,
                          "start-interval": STRING, "retries": STRING})
    if kind != "CMD":
        raise _Invalid(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    command = rest if node.json else ((" ".join(rest),) if rest else ())
    if not command:
        raise _Invalid("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *command) if node.json else ("CMD-SHELL", *command)
    retries = 0
    if flags.get("retries"):
        text = str(flags["retries"])
        try:
            retries = int(text, 10)
        except ValueError:
            raise _Invalid(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
        if retries < 1:
            raise _Invalid(f"--retries must be at least 1 (not {retries})")
    return Healthcheck(**base, test=test, interval=_interval(flags, "interval"),
                       timeout=_interval(flags, "timeout"),
                       start_period=_interval(flags, "start-period"),
                       start_interval=_interval(flags, "start-interval"), retries=retries)


def _shell(node: Node, base: dict) -> Shell:
    _flags(node)
    args = _command_args(node)
    if not args:
        raise _Invalid("SHELL requires at least one argument")
    if not node.json:
        raise _Invalid("SHELL requires the arguments to be in JSON form")
    return Shell(**base, shell=args)


_PARSERS = {
    "from": _from, "run": _run, "cmd": _cmd, "entrypoint": _entrypoint, "env": _env,
    "label": _label, "arg": _arg, "expose": _expose, "volume": _volume,
    "user": _single(User), "workdir": _single(Workdir), "stopsignal": _single(StopSignal),
    "maintainer": _maintainer, "copy": _copy, "add": _add, "onbuild": _onbuild,
    "healthcheck": _healthcheck, "shell": _shell,
}
