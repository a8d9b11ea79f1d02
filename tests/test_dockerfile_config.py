"""Differential tests of the front-end: metadata-only Dockerfiles built by docker vs our plan.

Each case is a ``FROM scratch`` Dockerfile (docker builds it without pulling or
running anything). ``simulate`` applies the instructions' config effects with
the front-end's API; the test compares the result with ``docker inspect``.
Error cases must fail in both, with docker's message (and line, where docker
gives one).
"""

from __future__ import annotations

import posixpath

import pytest

from builder.dockerfile import (
    Cmd,
    DockerfileError,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Label,
    Onbuild,
    Shell,
    StageScope,
    StopSignal,
    User,
    Volume,
    Workdir,
    plan,
)
from dockerfile_helpers import docker_build, docker_config, docker_error, docker_rmi, write_context

SCRATCH_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FIELDS = ("Env", "Labels", "ExposedPorts", "Volumes", "User", "WorkingDir", "StopSignal", "Cmd",
          "Entrypoint", "Healthcheck", "Shell", "OnBuild")


def simulate(text: str, build_args=None, target=None) -> dict:
    """The config fields the front-end decides, for a FROM-scratch-only Dockerfile."""
    p = plan(text, build_args, target)
    configs: dict[int, dict] = {}
    for index in p.needed:
        stage = p.stages[index]
        cfg = dict(configs[stage.base_stage]) if stage.base_stage is not None else {"Env": [SCRATCH_PATH]}
        scope = StageScope(p.build_args, cfg["Env"])
        shell = ["/bin/sh", "-c"]
        for inst in stage.instructions:
            inst = scope.apply(inst)
            if isinstance(inst, (Env,)):
                cfg["Env"] = list(scope.env)
            elif isinstance(inst, Label):
                cfg["Labels"] = {**cfg.get("Labels", {}), **dict(inst.pairs)}
            elif isinstance(inst, Expose):
                cfg["ExposedPorts"] = {**cfg.get("ExposedPorts", {}), **{k: {} for k in inst.exposed_ports()}}
            elif isinstance(inst, Volume):
                cfg["Volumes"] = {**cfg.get("Volumes", {}), **{v: {} for v in inst.paths}}
            elif isinstance(inst, User):
                cfg["User"] = inst.value
            elif isinstance(inst, Workdir):
                cfg["WorkingDir"] = posixpath.normpath(posixpath.join("/", cfg.get("WorkingDir", "/"), inst.value))
            elif isinstance(inst, StopSignal):
                cfg["StopSignal"] = inst.value
            elif isinstance(inst, Cmd):
                cfg["Cmd"] = inst.argv(shell)
            elif isinstance(inst, Entrypoint):
                cfg["Entrypoint"] = inst.argv(shell) or None
            elif isinstance(inst, Healthcheck):
                cfg["Healthcheck"] = inst.config()
            elif isinstance(inst, Shell):
                shell = list(inst.shell)
                cfg["Shell"] = shell
            elif isinstance(inst, Onbuild):
                cfg["OnBuild"] = [*cfg.get("OnBuild", []), inst.expression]
        configs[index] = cfg
    return {k: v for k, v in configs[p.target].items() if v not in (None, "", [], {})}


CASES = {
    "env-forms": "FROM scratch\n" 'ENV A=1 B="two words" C=$A\nENV D old form  with  spaces\nENV E=${A}x F=\'$A\'\n',
    "env-sees-old-values": "FROM scratch\n" "ENV A=1\nENV A=2 B=$A\nENV C=${B:+set} D=${U:-unset}\n",
    "env-replace-in-place": "FROM scratch\n" "ENV X=1 Y=2\nENV X=3\n",
    "label-quotes": "FROM scratch\n" 'LABEL "a b"="c d" e=f\\ g \'h\'=\'$x\' i="${U:-d}"\nLABEL multi=1 \\\n  line=2\n',
    "arg-defaults": "FROM scratch\n" "ARG A=1\nARG B=$A C\nLABEL a=$A b=$B c=${C:-none}\n",
    "arg-env-override": "FROM scratch\n" "ARG V=arg\nENV V=env\nLABEL v=$V\n",
    "arg-before-from": "ARG G=global\nFROM scratch\nLABEL g=${G:-unset}\nARG G\nLABEL g2=$G\n",
    "from-arg": "ARG BASE=scratch\nFROM $BASE\nLABEL ok=1\n",
    "expose-volume": "FROM scratch\n" 'EXPOSE 80 443/UDP 8000-8002 $P\nVOLUME /a /b\nVOLUME ["/c d", "/e"]\n',
    "workdir-user-signal": "FROM scratch\n" "ENV D=data\nWORKDIR a\nWORKDIR b/../c\nWORKDIR $D\nUSER $D:1\nSTOPSIGNAL SIGKILL\n",
    "cmd-entrypoint": "FROM scratch\n" 'ENTRYPOINT ["e", "f"]\nCMD echo hi\n',
    "cmd-json-invalid-falls-back": "FROM scratch\n" "CMD [\"a\", 'b']\n",
    "shell-then-cmd": "FROM scratch\n" 'SHELL ["/bin/bash", "-ec"]\nCMD echo $HOME\nENTRYPOINT exec x\n',
    "healthcheck": "FROM scratch\n" "HEALTHCHECK --interval=1m30s --timeout=5s --start-period=100ms --retries=3 CMD curl -f x\n",
    "healthcheck-json-none": "FROM scratch\n" 'HEALTHCHECK CMD ["a", "b"]\nFROM scratch\nHEALTHCHECK NONE\n',
    "onbuild": "FROM scratch\n" "ONBUILD RUN echo $HOME\nONBUILD   copy  --chown=1 a b\n",
    "multi-stage-target": "FROM scratch\n" "LABEL s=0\nFROM scratch AS Second\nLABEL s=1\nFROM second\nLABEL s2=2\n",
    "escape-backtick": "# escape=`\nFROM scratch\nLABEL a=C:\\dir `\n  b=`$x\n",
    "comments-and-blank-continuation": "FROM scratch\n" "LABEL a=1 \\\n# inner comment\n  b=2 \\\n\n  c=3\n",
    "maintainer-expose-empty": "FROM scratch\n" "MAINTAINER someone <a@b>\nEXPOSE $EMPTY\n",
    "directive-syntax": "# syntax=docker/dockerfile:1\n# escape=\\\nFROM scratch\nLABEL x=1\n",
    "crlf-bom": "\ufeffFROM scratch\r\nLABEL a=1 \\\r\n  b=2\r\n",
    "proxy-args": "FROM scratch\n" "LABEL p=${HTTP_PROXY:-none}\nARG http_proxy\nLABEL q=$http_proxy\n",
    "build-args": "FROM scratch\n" "ARG X=default\nARG Y\nLABEL x=$X y=${Y:-unset}\n",
    "volume-json-string": "FROM scratch\n" 'VOLUME ["/v"] /w\n',
    "env-escapes": "FROM scratch\n" 'ENV A=a\\ b B=\\$A C="x\\"y" D=\'s\\q\'\nENV E "old \\"form\\"" \nENV F \\$A\n',
    "label-old-form": "FROM scratch\nLABEL a b c\nLABEL d \"e f\"\n",
    "quoted-single-words": "FROM scratch\n" 'ENV V=x S=KILL\nWORKDIR "/a b/$V"\nUSER "$V user"\nSTOPSIGNAL "SIG$S"\n',
    "expose-quoted-words": "FROM scratch\n" 'ENV P="81 82"\nEXPOSE "80" $P\n',
    "env-unicode-and-empty": "FROM scratch\n" 'ENV É=1 EMPTY= Q=""\nLABEL l=${EMPTY:-e}${Q:+q}\n',
    "cmd-shell-spaces": "FROM scratch\n" "CMD   echo  a   b  \nENTRYPOINT [\"sh\",  \"-c\"]   \n",
    "arg-no-value-global": "ARG NOVAL\nARG V=1\nFROM scratch\nARG NOVAL V\nLABEL n=${NOVAL:-x} v=$V\n",
    "continued-words": "FROM scratch\nENV A=1\\\n  B=2 C=3 \\\n   # c\n  D=4\nLABEL\tx=1  \t y=2\n",
    "quotes-in-keys": "FROM scratch\n" 'LABEL "key \\"q\\""=v \'s k\'=\'v v\'\nENV K=kk\nLABEL $K=1 ${K}2=2\nENV $K=3\n',
    "dup-keys-and-path": "FROM scratch\nENV A=1 A=2\nENV PATH=$PATH:/x\n",
    "mixed-case-words": "from scratch as Stage_1.x\nlabel a=1\nExpose 1-3/udp 80/TCP\nVOLUME [ \"/a\" ]\nVOLUME /b\\ c\n",
    "json-unicode-cmd": "FROM scratch\n" 'CMD ["\\u00e9", "a\\"b"]\nSHELL ["pwsh"]\nENTRYPOINT x y\n',
    "healthcheck-zero": "FROM scratch\nHEALTHCHECK --interval=1ms --timeout=1h30m CMD x\nSTOPSIGNAL 9\n",
    "cmd-empty-json": "FROM scratch\nCMD []\nENTRYPOINT []\n",
    "old-form-quotes": "FROM scratch\n" 'ENV A "a b"\nENV B  \'x y\'  z\nLABEL L "q r"\n',
    "escape-backtick-paths": "# escape=`\nFROM scratch\nENV P=C:\\a\\b Q=`$P\nLABEL l=\"C:\\x`\"y\"\n",
    "onbuild-continued": "FROM scratch\nONBUILD RUN a \\\n  && b\nONBUILD LABEL x=$y\n",
    "trailing-escape-last-line": "FROM scratch\nLABEL a=b \\",
    "accepted-oddities": "FROM scratch\n" 'USER ""\nCMD ["a"] extra\nHEALTHCHECK --interval=5s NONE\n'
                         "STOPSIGNAL --foo=1 9\nONBUILD BOGUS x\n",
}
BUILD_ARGS = {
    "proxy-args": {"HTTP_PROXY": "http://p:1", "http_proxy": "http://q:2"},
    "build-args": {"X": "given", "Y": "y", "UNUSED": "1"},
    "arg-before-from": {"G": "override"},
}
TARGETS = {"multi-stage-target": "second"}


def _text(name: str) -> str:
    return CASES[name]


def _docker_args(name: str) -> list[str]:
    args: list[str] = []
    for k, v in BUILD_ARGS.get(name, {}).items():
        args += ["--build-arg", f"{k}={v}"]
    if name in TARGETS:
        args += ["--target", TARGETS[name]]
    return args


def test_simulation_examples() -> None:
    cfg = simulate(_text("env-sees-old-values"))
    assert cfg["Env"] == [SCRATCH_PATH, "A=2", "B=1", "C=set", "D=unset"]
    cfg = simulate(_text("arg-defaults"))
    assert cfg["Labels"] == {"a": "1", "b": "1", "c": "none"}
    assert simulate(_text("build-args"), BUILD_ARGS["build-args"])["Labels"] == {"x": "given", "y": "y"}
    assert simulate(_text("arg-before-from"), {"G": "o"})["Labels"] == {"g": "unset", "g2": "o"}


def test_unused_build_args_warning() -> None:
    p = plan(_text("build-args"), {"X": "1", "UNUSED": "1", "ALSO": None, "HTTP_PROXY": "p"})
    assert p.unused_build_args_warning() == "[Warning] One or more build-args [ALSO UNUSED] were not consumed"
    assert plan(_text("build-args"), {"X": "1"}).unused_build_args_warning() is None


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_config_matches_docker(docker, tmp_path, name: str) -> None:
    text = _text(name)
    write_context(tmp_path, {"Dockerfile": text})
    rc, out, image = docker_build(tmp_path, "Dockerfile", *_docker_args(name))
    try:
        assert rc == 0, out
        got = docker_config(image)
        theirs = {k: got[k] for k in FIELDS if got.get(k) not in (None, "", [], {})}
        assert simulate(text, BUILD_ARGS.get(name), TARGETS.get(name)) == theirs
        if "UNUSED" in BUILD_ARGS.get(name, {}):
            warning = plan(text, BUILD_ARGS[name]).unused_build_args_warning()
            assert warning in out
    finally:
        docker_rmi(image)


# (Dockerfile, expected line or None when docker names none, message)
ERROR_CASES = [
    ("FROM scratch\nCOPY a\n", 2, "COPY requires at least two arguments, but only one was provided. "
     "Destination could not be determined"),
    ("FROM scratch\nENV A\n", 2, "ENV must have two arguments"),
    ("FROM scratch\nENV A=1 B\n", 2, "Syntax error - can't find = in \"B\". Must be of the form: name=value"),
    ("FROM scratch AS 1x\n", 1, 'invalid name for build stage: "1x", name can\'t start with a number or contain symbols'),
    ("FROM scratch AS\n", 1, "FROM requires either one or three arguments"),
    ("ARG X\nFROM $X\n", 2, "base name ($X) should not be blank"),
    ("FROM scratch\nHEALTHCHECK --interval=1 CMD x\n", 2, 'time: missing unit in duration "1"'),
    ("FROM scratch\nHEALTHCHECK --interval=100us CMD x\n", 2, 'Interval "interval" cannot be less than 1ms'),
    ("FROM scratch\nHEALTHCHECK --timeout=0s CMD x\n", 2, 'Interval "timeout" cannot be less than 1ms'),
    ("FROM scratch\nbogus x\n", 2, "unknown instruction: BOGUS"),
    ("FROM scratch\nCOPY \\\n  a\n", 2, "COPY requires at least two arguments, but only one was provided. "
     "Destination could not be determined"),
    ("FROM scratch\nLABEL a=1 \\\n  b\n", 2, "Syntax error - can't find = in \"b\". Must be of the form: name=value"),
    ("FROM scratch\nWORKDIR $NOPE\n", 2, "cannot normalize nothing"),
    ("FROM scratch\nENV A=${B:?oops}\n", 2, 'failed to process "${B:?oops}": B: oops'),
    ("FROM scratch\nONBUILD\n", 2, "ONBUILD requires at least one argument"),
    ("FROM a b c d\n", 1, "FROM requires either one or three arguments"),
    ("FROM scratch AS x\nFROM scratch AS X\n", 2, "x stage name already used"),
    ("FROM scratch\nARG\n", 2, "ARG requires at least one argument"),
    ("FROM scratch\nMAINTAINER\n", 2, "MAINTAINER requires exactly one argument"),
    ("FROM scratch\nENV\n", 2, "ENV requires at least one argument"),
    ("FROM scratch\nLABEL\n", 2, "LABEL requires at least one argument"),
    ("FROM scratch\nVOLUME\n", 2, "VOLUME requires at least one argument"),
    ("FROM scratch\nADD a\n", 2, "ADD requires at least two arguments, but only one was provided. "
     "Destination could not be determined"),
    ("FROM scratch\nEXPOSE 70000\n", 2, "Invalid containerPort: 70000"),
    ("FROM scratch\nHEALTHCHECK FOO x\n", 2, 'Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("FROM scratch\nHEALTHCHECK CMD\n", 2, "Missing command after HEALTHCHECK CMD"),
    ("FROM scratch\nHEALTHCHECK --retries=-1 CMD x\n", 2, "--retries must be at least 1 (not -1)"),
    ("FROM scratch\nHEALTHCHECK NONE x\n", 2, "HEALTHCHECK NONE takes no arguments"),
    ("FROM scratch\nSHELL echo\n", 2, "SHELL requires the arguments to be in JSON form"),
    ("FROM scratch\nONBUILD ONBUILD RUN x\n", 2, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM scratch\nONBUILD FROM x\n", 2, "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM scratch\nUSER\n", 2, "USER requires exactly one argument"),
    ("FROM scratch\nSTOPSIGNAL\n", 2, "STOPSIGNAL requires exactly one argument"),
    ("FROM scratch\nEXPOSE\n", 2, "EXPOSE requires at least one argument"),
    ("FROM scratch\nRUN [\"a\", 1]\n", 2, "when using JSON array syntax, arrays must be comprised of strings only"),
    ("FROM scratch\nCOPY --foo a b\n", 2, "Unknown flag: foo"),
    ("FROM scratch\nCOPY --from a b\n", 2, "Missing a value on flag: from"),
    ("FROM scratch\nENV --x=1 A=1\n", 2, "Unknown flag: x"),
    ("LABEL a=b\nFROM scratch\n", 1, "no build stage in current context"),
    ("# escape=x\nFROM scratch\n", 1, "invalid escape token 'x' does not match ` or \\"),
    ("# escape=`\n# escape=`\nFROM scratch\n", 2, "only one escape parser directive can be used"),
    ("FROM scratch\nLABEL =a\n", 2, "LABEL names can not be blank"),
    ("FROM scratch\nARG =a\n", 2, "ARG names can not be blank"),
    ("\n", 1, "file with no instructions"),
    ("# just a comment\n\n", 2, "file with no instructions"),
    ("FROM scratch\nFOO bar\n", 2, "unknown instruction: FOO"),
    ("FROM scratch\nCOPY --from=5 a b\n", 2, "invalid from flag value 5: index out of bounds"),
    ("FROM scratch\nVOLUME \"\"\n", 2, "VOLUME specified can not be an empty string"),
    ("FROM scratch\nEXPOSE 80/xyz\n", 2, "Invalid proto: xyz"),
    ("FROM scratch\nEXPOSE abc\n", 2, "Invalid containerPort: abc"),
    ("FROM scratch\nLABEL a=${B\n", 2, "failed to process \"${B\": missing ':' in substitution"),
    ("FROM scratch\nWORKDIR \"a\n", 2, "failed to process \"\\\"a\": unexpected end of statement while "
     "looking for matching double-quote"),
]


def _front_end_error(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as err:
        simulate(text)
    return err.value


@pytest.mark.parametrize("text,line,message", ERROR_CASES)
def test_errors(text: str, line: int, message: str) -> None:
    err = _front_end_error(text)
    assert (err.line, err.message) == (line, message)
    assert str(err) == f"Dockerfile:{line}: {message}"


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("text,line,message", ERROR_CASES)
def test_errors_match_docker(docker, tmp_path, text: str, line: int, message: str) -> None:
    write_context(tmp_path, {"Dockerfile": text})
    rc, out, image = docker_build(tmp_path)
    docker_rmi(image)
    assert rc != 0
    theirs = docker_error(out)
    assert theirs.endswith(message)
    if "line " in theirs:
        assert f"line {line}:" in theirs


_PIECES = ["LABEL a{n}=1 \\", "LABEL b{n}=\"x y\"", "  # comment \\", "#c", "", "   ", "  c{n}=3 \\", "\\",
           "  d{n}=4", "\t e{n}=5\\ \t", "LABEL f{n}=a\\\\", "label g{n} old form \\", " ENV h{n}=1",
           "LABEL i{n}='q \\", "  r'", "LABEL j{n}=\"\\\\\"", "ENV k{n} v \\", "   w"]


def _random_dockerfiles(seed: int, count: int) -> list[str]:
    import random
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        lines = ["FROM scratch"] + [rng.choice(_PIECES).format(n=i) for i in range(rng.randint(2, 8))]
        texts.append("\n".join(lines) + ("\n" if rng.random() < 0.8 else ""))
    return texts


@pytest.mark.docker
@pytest.mark.slow
def test_random_line_structures_match_docker(docker, tmp_path) -> None:
    """Continuations, comments, blank and escaped lines in random orders: same config or both fail."""
    for i, text in enumerate(_random_dockerfiles(7, 25)):
        ctx = write_context(tmp_path / str(i), {"Dockerfile": text})
        rc, out, image = docker_build(ctx)
        try:
            if rc != 0:
                with pytest.raises(DockerfileError):
                    simulate(text)
                continue
            got = docker_config(image)
            theirs = {k: got[k] for k in FIELDS if got.get(k) not in (None, "", [], {})}
            assert simulate(text) == theirs, text
        finally:
            docker_rmi(image)
