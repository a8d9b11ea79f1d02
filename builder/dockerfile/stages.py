"""Build planning: stages, global ARGs, ``--build-arg``, ``--target``, stage dependencies.

Docker's rules (docker 20.10's ``BuildArgs`` and dispatcher, BuildKit's stage
pruning):

- ARGs before the first FROM are global: usable in FROM lines only, unless a
  stage re-declares ``ARG NAME`` (it then gets the global value);
- ``--build-arg`` overrides a declared default; undeclared build args are not
  visible, except the predefined proxy args, which are usable without
  declaration and stay out of history unless declared;
- inside a stage ENV overrides ARG; all words of one ENV/LABEL/ARG see the
  environment from before the instruction;
- stage names are case-insensitive; ``COPY --from`` and ``RUN --mount from=``
  take an earlier stage's name or index, anything else is an image;
- only the stages the target needs are built; stages that do not depend on
  each other can build concurrently (:meth:`Plan.waves`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from builder.dockerfile.errors import DockerfileError
from builder.dockerfile.expand import ExpansionError, Lexer
from builder.dockerfile.instructions import (
    Arg,
    Copy,
    Env,
    From,
    Instruction,
    Run,
    parse_instruction,
)
from builder.dockerfile.parser import Document, parse
from builder.dockerfile.record import Record

__all__ = ["PROXY_ARGS", "BuildArgs", "Stage", "Plan", "StageScope", "plan", "parse_triggers"]

PROXY_ARGS = frozenset((
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
))


class BuildArgs:
    """The ``--build-arg`` values of one build and the global (meta) ARGs.

    ``given`` maps a name to its value, or None for ``--build-arg NAME`` with
    no value and no such variable in the client's environment (docker then
    ignores it).
    """

    def __init__(self, given: Mapping[str, str | None] | None = None,
                 automatic: Mapping[str, str] | None = None) -> None:
        self.given = dict(given or {})
        self.meta: dict[str, str | None] = {}
        self.consumed: set[str] = set()
        # BuildKit's platform args (TARGETPLATFORM, BUILDARCH, ...): global without a
        # declaration, in a stage once declared; a global ARG or --build-arg overrides them
        self.automatic = dict(automatic or {})

    def override(self, name: str) -> str | None:
        """The ``--build-arg`` value for ``name`` (None if not given)."""
        return self.given.get(name)

    def proxies(self) -> dict[str, str]:
        """Predefined proxy args given on the command line."""
        return {k: v for k, v in self.given.items() if k in PROXY_ARGS and v is not None}

    def meta_env(self) -> dict[str, str]:
        """Variables FROM lines (and global ARG defaults) expand against."""
        env = {**self.automatic, **self.proxies()}
        for name, default in self.meta.items():
            value = self.resolve(name, default)
            if value is not None:
                env[name] = value
        return env

    def resolve(self, name: str, default: str | None) -> str | None:
        """Value of an ARG declared with ``default``: build arg, else default, else global."""
        given = self.given.get(name)
        if given is not None:
            return given
        if default is None:
            meta = self.meta.get(name)
            return meta if meta is not None else self.automatic.get(name)
        return default

    def declare_meta(self, inst: Arg) -> Arg:
        """Record a global ARG (expanded against the globals before it)."""
        expanded = inst.expand(self.meta_env())
        for name, default in expanded.args:
            self.meta[name] = default
            self.consumed.add(name)
        return expanded

    def expand_from(self, word: str, inst: Instruction) -> str:
        """``word`` from a FROM line (or ``--from``) expanded with the global ARGs."""
        try:
            return Lexer(inst.escape).process_word(word, self.meta_env())
        except ExpansionError as err:
            raise inst.error(str(err)) from None

    def unused(self) -> list[str]:
        """Build args given but never declared (sorted); proxies never count."""
        return sorted(k for k in self.given if k not in self.consumed and k not in PROXY_ARGS
                      and k not in self.automatic)


class Stage(Record):
    """One ``FROM`` section.

    ``base`` is the expanded base name; ``base_stage`` the index of the earlier
    stage it names (None for an image or ``scratch``). ``deps`` are the stages
    it needs (base, ``COPY --from``, ``RUN --mount from=``); ``images`` the
    external images it needs (base and ``--from`` images, not ``scratch``).
    """

    index: int
    name: str | None
    from_: From
    base: str
    base_stage: int | None
    platform: str | None
    instructions: tuple[Instruction, ...]
    deps: frozenset[int]
    images: frozenset[str]

    @property
    def is_scratch(self) -> bool:
        return self.base_stage is None and self.base == "scratch"

    @property
    def label(self) -> str:
        """How progress output names the stage: its name, else its index."""
        return self.name or str(self.index)


class Plan(Record):
    """What to build: stages, the target and the order the needed stages can run in."""

    path: str
    escape: str
    syntax: str | None
    meta_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]
    target: int
    needed: tuple[int, ...]
    build_args: BuildArgs
    warnings: tuple[str, ...]

    def stage_named(self, name: str) -> Stage | None:
        """The stage called ``name`` (case-insensitive), or None."""
        lower = name.lower()
        return next((s for s in self.stages if s.name == lower), None)

    def resolve_from(self, value: str, inst: Instruction, before: int) -> Stage | None:
        """The stage a ``COPY --from``/``--mount from=`` value names, or None for an image.

        ``value`` is expanded with the global ARGs; names and indexes count only
        for stages before ``before`` (the current stage), as in docker.
        """
        index = _lookup(self.stages[:before], self.build_args.expand_from(value, inst), before, inst)
        return None if index is None else self.stages[index]

    def waves(self) -> list[list[int]]:
        """Needed stages grouped so each group only depends on earlier groups."""
        done: set[int] = set()
        remaining = list(self.needed)
        waves: list[list[int]] = []
        while remaining:
            wave = [i for i in remaining if self.stages[i].deps <= done]
            waves.append(wave)
            done.update(wave)
            remaining = [i for i in remaining if i not in done]
        return waves

    def unused_build_args_warning(self) -> str | None:
        """docker's ``[Warning] One or more build-args [...] were not consumed``, or None."""
        names = self.build_args.unused()
        if not names:
            return None
        return f"[Warning] One or more build-args [{' '.join(names)}] were not consumed"


class StageScope:
    """Variables while one stage builds: the image's Env, ENV, ARGs and build args.

    Call :meth:`apply` with each instruction in order: it returns the expanded
    instruction and records ENV and ARG effects. ``env`` is the config Env
    (``K=V`` list, updated in place order like docker).
    """

    def __init__(self, build_args: BuildArgs, env: Sequence[str] = ()) -> None:
        self.build_args = build_args
        self.env: list[str] = list(env)
        self.args: dict[str, str | None] = {}

    def _env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def allowed_args(self) -> dict[str, str]:
        """Declared args with a value, plus proxy build args (docker's ``GetAllAllowed``)."""
        out = self.build_args.proxies()
        for name, default in self.args.items():
            value = self.build_args.resolve(name, default)
            if value is not None:
                out[name] = value
        return out

    def expansion_env(self) -> dict[str, str]:
        """What ``$VAR`` sees: args, overridden by the Env."""
        env = self.allowed_args()
        env.update(self._env_map())
        return env

    def run_env(self) -> list[str]:
        """Process environment for RUN: the Env plus allowed args the Env does not set."""
        env_keys = set(self._env_map())
        extra = [f"{k}={v}" for k, v in self.allowed_args().items() if k not in env_keys]
        return self.env + extra

    def history_args(self) -> list[str]:
        """Sorted ``K=V`` build args docker puts before a RUN in history (``|N K=V ...``).

        Args the Env sets are left out; proxies only count if declared.
        """
        env_keys = set(self._env_map())
        return sorted(f"{k}={v}" for k, v in self.allowed_args().items()
                      if k not in env_keys and (k in self.args or k not in PROXY_ARGS))

    def set_env(self, key: str, value: str) -> None:
        """Set one Env variable, replacing it in place if present."""
        item = f"{key}={value}"
        for i, existing in enumerate(self.env):
            if existing.partition("=")[0] == key:
                self.env[i] = item
                return
        self.env.append(item)

    def apply(self, inst: Instruction) -> Instruction:
        """``inst`` expanded against the current scope; ENV and ARG take effect."""
        expanded = inst.expand(self.expansion_env())
        if isinstance(expanded, Env):
            for key, value in expanded.pairs:
                self.set_env(key, value)
        elif isinstance(expanded, Arg):
            for name, default in expanded.args:
                self.args[name] = default
                self.build_args.consumed.add(name)
        return expanded

    def arg_history(self, inst: Arg) -> str:
        """The history text docker writes for an expanded ARG (``ARG K=V ...``)."""
        parts = [name if default is None else f"{name}={default}" for name, default in inst.args]
        return "ARG " + " ".join(parts)


def _instructions(doc: Document) -> list[Instruction]:
    return [parse_instruction(node, doc.path, doc.escape) for node in doc.nodes]


def _copy_from(inst: Instruction) -> list[str]:
    if isinstance(inst, Copy) and inst.from_:
        return [inst.from_]
    if isinstance(inst, Run):
        return [m.from_ for m in inst.mounts if m.from_]
    return []


def plan(source: str | Document, build_args: Mapping[str, str | None] | None = None,
         target: str | None = None, path: str = "Dockerfile", automatic: Mapping[str, str] | None = None) -> Plan:
    """Parse (if given text) and plan a build; every problem is a :class:`DockerfileError`.

    ``automatic``: args every stage may declare without a value (BuildKit's platform args).
    """
    doc = source if isinstance(source, Document) else parse(source, path)
    insts = _instructions(doc)
    args = BuildArgs(build_args, automatic)
    meta: list[Arg] = []
    i = 0
    while i < len(insts) and not isinstance(insts[i], From):
        inst = insts[i]
        if not isinstance(inst, Arg):
            raise inst.error("no build stage in current context")
        meta.append(args.declare_meta(inst))
        i += 1
    sections: list[tuple[From, list[Instruction]]] = []
    for inst in insts[i:]:
        if isinstance(inst, From):
            sections.append((inst, []))
        else:
            sections[-1][1].append(inst)
    stages: list[Stage] = []
    for index, (frm, body) in enumerate(sections):
        if frm.stage_name and any(s.name == frm.stage_name for s in stages):
            raise frm.error(f"{frm.stage_name} stage name already used")
        stages.append(_stage(index, frm, body, stages, args, doc.path))
    target_index = _target(stages, target, doc.path)
    for stage in stages[:target_index + 1]:
        for inst in stage.instructions:
            if isinstance(inst, Arg):
                args.consumed.update(name for name, _ in inst.args)
    needed = _closure(stages, target_index)
    return Plan(doc.path, doc.escape, doc.syntax, tuple(meta), tuple(stages), target_index,
                needed, args, doc.warnings)


def _stage(index: int, frm: From, body: list[Instruction], earlier: list[Stage],
           args: BuildArgs, path: str) -> Stage:
    base = args.expand_from(frm.image, frm)
    if not base:
        raise frm.error(f"base name ({frm.image}) should not be blank")
    platform = args.expand_from(frm.platform, frm) if frm.platform else None
    deps: set[int] = set()
    images: set[str] = set()
    base_stage = next((s.index for s in earlier if s.name == base.lower()), None)
    if base_stage is not None:
        deps.add(base_stage)
    elif base != "scratch":
        images.add(base)
    for inst in body:
        for ref in _copy_from(inst):
            value = args.expand_from(ref, inst)
            stage = _lookup(earlier, value, index, inst)
            if stage is not None:
                deps.add(stage)
            else:
                images.add(value)
    return Stage(index, frm.stage_name, frm, base, base_stage, platform, tuple(body),
                 frozenset(deps), frozenset(images))


def _lookup(earlier: Sequence[Stage], value: str, index: int, inst: Instruction) -> int | None:
    lower = value.lower()
    for stage in earlier:
        if stage.name == lower:
            return stage.index
    if value.isdigit():
        number = int(value)
        if number >= index:
            why = "refers to current build stage" if number == index else "index out of bounds"
            raise inst.error(f"invalid from flag value {number}: {why}")
        return number
    return None


def _target(stages: list[Stage], target: str | None, path: str) -> int:
    if not stages:
        raise DockerfileError("no build stage in current context", path)
    if not target:
        return len(stages) - 1
    lower = target.lower()
    for stage in stages:
        if stage.name == lower:
            return stage.index
    raise DockerfileError(f"failed to reach build target {target} in Dockerfile", path)


def _closure(stages: list[Stage], target: int) -> tuple[int, ...]:
    needed: set[int] = set()
    todo = [target]
    while todo:
        index = todo.pop()
        if index not in needed:
            needed.add(index)
            todo.extend(stages[index].deps)
    return tuple(sorted(needed))


def parse_triggers(expressions: Iterable[str], path: str = "ONBUILD") -> list[Instruction]:
    """A base image's ONBUILD triggers as instructions, to run right after its FROM."""
    out: list[Instruction] = []
    for expression in expressions:
        for inst in _instructions(parse(expression, path)):
            if inst.name in ("ONBUILD", "FROM", "MAINTAINER"):
                raise inst.error(f"{inst.name} isn't allowed as an ONBUILD trigger")
            out.append(inst)
    return out
