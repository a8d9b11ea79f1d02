"""Stage planning: bases, dependencies, --target, concurrency waves, build args in a stage."""

from __future__ import annotations

import pytest

from builder.dockerfile import DockerfileError, StageScope, load, plan

MULTI = """\
ARG GO=golang:1.22
FROM $GO AS Build
RUN make
FROM alpine AS assets
RUN --mount=type=bind,from=BUILD,target=/src cp /src/x /x
FROM scratch AS unrelated
FROM build AS test
FROM scratch
COPY --from=build /out /bin/app
COPY --from=1 /x /x
COPY --from=busybox:1.36 /bin/busybox /bin/
"""


def test_stages_and_dependencies() -> None:
    p = plan(MULTI)
    assert [(s.index, s.name, s.base, s.base_stage) for s in p.stages] == [
        (0, "build", "golang:1.22", None), (1, "assets", "alpine", None), (2, "unrelated", "scratch", None),
        (3, "test", "build", 0), (4, None, "scratch", None)]
    assert p.stages[1].deps == {0}
    assert p.stages[4].deps == {0, 1} and p.stages[4].images == {"busybox:1.36"}
    assert p.stages[0].images == {"golang:1.22"} and p.stages[2].is_scratch
    assert p.target == 4 and p.needed == (0, 1, 4)
    assert p.waves() == [[0], [1], [4]]


def test_target_and_waves() -> None:
    text = "FROM a AS one\nFROM b AS two\nFROM scratch AS final\nCOPY --from=one / /\nCOPY --from=TWO / /\n"
    p = plan(text)
    assert p.waves() == [[0, 1], [2]]
    assert plan(text, target="Two").needed == (1,)
    with pytest.raises(DockerfileError) as err:
        plan(text, target="nope", path="x/Dockerfile")
    assert str(err.value) == "x/Dockerfile: failed to reach build target nope in Dockerfile"


def test_from_later_stage_or_index_is_an_image() -> None:
    p = plan("FROM later AS first\nFROM scratch AS later\nCOPY --from=first / /\n")
    assert p.stages[0].base_stage is None and p.stages[0].images == {"later"}
    with pytest.raises(DockerfileError) as err:
        plan("FROM scratch\nCOPY --from=0 / /\n")
    assert (err.value.line, err.value.message) == (2, "invalid from flag value 0: refers to current build stage")
    with pytest.raises(DockerfileError) as err:
        plan("FROM scratch\nCOPY --from=1 / /\n")
    assert (err.value.line, err.value.message) == (2, "invalid from flag value 1: index out of bounds")


def test_resolve_from_for_the_executor() -> None:
    p = plan(MULTI)
    copy = p.stages[4].instructions[1]
    assert p.resolve_from(copy.from_, copy, before=4).index == 1
    assert p.resolve_from("busybox:1.36", copy, before=4) is None
    assert p.stage_named("ASSETS").index == 1


def test_from_expansion_and_blank_base() -> None:
    p = plan("ARG REG=docker.io\nARG IMG=$REG/library/alpine\nFROM ${IMG}:3\n")
    assert p.stages[0].base == "docker.io/library/alpine:3"
    assert plan("ARG T=1\nFROM img:$T\n", {"T": "2"}).stages[0].base == "img:2"
    with pytest.raises(DockerfileError) as err:
        plan("FROM ${NOPE}\n")
    assert (err.value.line, err.value.message) == (1, "base name (${NOPE}) should not be blank")
    with pytest.raises(DockerfileError) as err:
        plan("FROM ${NOPE:?unset}\n")
    assert err.value.message.endswith("NOPE: unset")


def test_scope_args_env_and_history() -> None:
    p = plan("ARG G=global\nFROM scratch\nARG G\nARG A=1 B=$A\nENV E=env A=fromenv\nARG L=late\n",
             {"B": "given", "HTTP_PROXY": "http://p", "no_proxy": "x"})
    scope = StageScope(p.build_args, ["PATH=/bin"])
    expanded = [scope.apply(i) for i in p.stages[0].instructions]
    assert expanded[1].args == (("A", "1"), ("B", ""))  # B=$A sees A from before the instruction
    assert scope.env == ["PATH=/bin", "E=env", "A=fromenv"]
    assert scope.expansion_env()["A"] == "fromenv" and scope.expansion_env()["B"] == "given"
    assert scope.expansion_env()["HTTP_PROXY"] == "http://p"
    run_env = scope.run_env()
    assert run_env[:3] == ["PATH=/bin", "E=env", "A=fromenv"]
    assert set(run_env[3:]) == {"HTTP_PROXY=http://p", "no_proxy=x", "G=global", "B=given", "L=late"}
    assert scope.history_args() == ["B=given", "G=global", "L=late"]
    assert scope.arg_history(expanded[1]) == "ARG A=1 B="


def test_declared_proxy_lands_in_history() -> None:
    p = plan("FROM scratch\nARG HTTP_PROXY\n", {"HTTP_PROXY": "http://p"})
    scope = StageScope(p.build_args)
    for inst in p.stages[0].instructions:
        scope.apply(inst)
    assert scope.history_args() == ["HTTP_PROXY=http://p"]


def test_consumed_build_args() -> None:
    text = "ARG META\nFROM scratch AS a\nARG IN_A\nFROM scratch AS b\nARG IN_B\n"
    p = plan(text, {"META": "1", "IN_A": "1", "IN_B": "1", "NOPE": "1"}, target="a")
    assert p.build_args.unused() == ["IN_B", "NOPE"]


def test_load_reads_file(tmp_path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("FROM scratch\nLABEL a=1\n")
    assert load(df).stages[0].instructions[0].path == str(df)
    with pytest.raises(DockerfileError) as err:
        load(tmp_path / "missing")
    assert "cannot read Dockerfile" in str(err.value)
