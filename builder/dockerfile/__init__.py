"""The Dockerfile front-end of ``pybuild build``: text -> typed instructions -> build plan.

Pure Python, no execution. Docker's semantics throughout (docker 20.10's
dispatcher and BuildKit's Dockerfile frontend 1.4+ syntax for heredocs and
``RUN --mount``); every error is a :class:`DockerfileError` whose text is
``FILE:LINE: what is wrong``.

Typical use by the executor::

    from builder.dockerfile import load, StageScope

    plan = load("ctx/Dockerfile", build_args={"V": "1"}, target=None)
    for wave in plan.waves():                  # stages in a wave can build concurrently
        for index in wave:
            stage = plan.stages[index]
            # base: stage.base_stage (an earlier stage), stage.is_scratch, or the image stage.base
            scope = StageScope(plan.build_args, env=base_config_env)
            for inst in stage.instructions:    # ONBUILD triggers of the base: parse_triggers(...)
                inst = scope.apply(inst)       # expanded; ENV/ARG recorded in scope
                ...                            # isinstance(inst, Run/Copy/Env/...)
    if (w := plan.unused_build_args_warning()):
        print(w)

Public API
----------
``load(path, text=None, build_args=None, target=None) -> Plan``
    Read (or take ``text``), parse and plan.
``parse(text, path) -> Document`` / ``plan(doc_or_text, build_args, target, path) -> Plan``
    The two steps separately. ``Document.nodes`` are raw :class:`Node` lines
    (``cmd``, ``args``, ``flags``, ``start``/``end``, ``heredocs``);
    ``Document.escape``, ``.syntax`` (the ``# syntax=`` value), ``.warnings``.
``parse_instruction(node, path, escape) -> Instruction``
    Typing one node.
``parse_triggers(expressions, path) -> list[Instruction]``
    ONBUILD trigger strings from a base image's config, as instructions.

:class:`Plan`
    ``stages`` (tuple of :class:`Stage`), ``target`` (index), ``needed``
    (indexes the target needs, ascending), ``waves()``, ``meta_args``,
    ``build_args`` (:class:`BuildArgs`), ``stage_named(name)``,
    ``resolve_from(value, inst, before) -> Stage | None`` (``COPY --from`` /
    ``--mount from=``: an earlier stage by name or index, None = an image),
    ``unused_build_args_warning()``, ``escape``, ``syntax``, ``warnings``.
:class:`Stage`
    ``index``, ``name`` (lower case or None), ``label``, ``from_`` (the FROM),
    ``base`` (expanded), ``base_stage``, ``is_scratch``, ``platform``,
    ``instructions`` (after FROM), ``deps`` (stage indexes), ``images``
    (external images it needs).
:class:`StageScope`
    ``apply(inst) -> inst`` (expand with docker's rules, record ENV/ARG),
    ``env`` (config Env list), ``run_env()`` (RUN process env: Env + build
    args), ``history_args()`` (for ``|N K=V ... cmd`` history/cache text),
    ``arg_history(arg)``, ``expansion_env()``.
Instructions (immutable records with ``replace(**changes)``; all have ``name``, ``path``, ``line``,
``end_line``, ``original``, ``error(msg)``, ``expand(env)``)
    :class:`From` (``image``, ``stage_name``, ``platform``);
    :class:`Run` (``command``, ``shell_form``, ``argv(shell)``,
    ``script(shell) -> (argv, files)`` for heredocs, ``mounts`` of
    :class:`Mount`, ``network``, ``security``, ``heredocs``);
    :class:`Cmd` / :class:`Entrypoint` (``command``, ``shell_form``, ``argv(shell)``);
    :class:`Env` / :class:`Label` (``pairs``); :class:`Arg` (``args``: name, default|None);
    :class:`Expose` (``ports``); :class:`Volume` (``paths``);
    :class:`User` / :class:`Workdir` / :class:`StopSignal` (``value``);
    :class:`Copy` / :class:`Add` (``sources``, ``contents`` (heredoc
    :class:`SourceContent`), ``dest``, ``chown``, ``chmod``, ``link``,
    ``exclude``, ``json``; Copy: ``from_``, ``parents``; Add: ``checksum``,
    ``keep_git_dir``); :class:`Onbuild` (``expression``, ``trigger``, ``instruction()``);
    :class:`Healthcheck` (``test``, durations in ns, ``retries``, ``config()``);
    :class:`Shell` (``shell``); :class:`Maintainer` (``author``).
Expansion
    :func:`expand_word`, :func:`expand_words`, :class:`Lexer` (docker's
    word processing), :class:`ExpansionError`.

Which instructions expand (against ``StageScope.expansion_env()``, i.e. the
env before the instruction): ENV, LABEL, ARG, ADD, COPY (sources, dest,
--chown, --chmod, heredoc bodies unless the delimiter is quoted), EXPOSE,
VOLUME, USER, WORKDIR, STOPSIGNAL, and RUN's ``--mount`` values. FROM (image,
--platform) and ``--from`` use the global ARGs. RUN, CMD, ENTRYPOINT, SHELL,
HEALTHCHECK, ONBUILD and MAINTAINER are taken literally.
"""

from __future__ import annotations

from builder.dockerfile.errors import DockerfileError
from builder.dockerfile.expand import ExpansionError, Lexer, expand_word, expand_words
from builder.dockerfile.instructions import (
    DEFAULT_SHELL,
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    SourceContent,
    StopSignal,
    User,
    Volume,
    Workdir,
    parse_instruction,
)
from builder.dockerfile.mounts import Mount
from builder.dockerfile.parser import Document, Heredoc, Node, parse
from builder.dockerfile.stages import (
    PROXY_ARGS,
    BuildArgs,
    Plan,
    Stage,
    StageScope,
    parse_triggers,
    plan,
)

__all__ = [
    "DockerfileError", "ExpansionError", "Lexer", "expand_word", "expand_words",
    "DEFAULT_SHELL", "Instruction", "From", "Run", "Cmd", "Entrypoint", "Env", "Arg", "Label",
    "Expose", "Volume", "User", "Workdir", "StopSignal", "Copy", "Add", "SourceContent",
    "Onbuild", "Healthcheck", "Shell", "Maintainer", "Mount", "parse_instruction",
    "Document", "Heredoc", "Node", "parse", "PROXY_ARGS", "BuildArgs", "Plan", "Stage",
    "StageScope", "parse_triggers", "plan", "load",
]


def load(path, text: str | None = None, build_args=None, target: str | None = None) -> Plan:
    """Parse and plan the Dockerfile at ``path`` (or ``text``, reported as ``path``)."""
    if text is None:
        try:
            with open(path, "rb") as fh:
                text = fh.read().decode("utf-8", errors="replace")
        except OSError as err:
            raise DockerfileError(f"cannot read Dockerfile: {err.strerror}", str(path)) from None
    return plan(text, build_args, target, str(path))
