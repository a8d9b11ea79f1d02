"""The line scanner and instruction typing: lines, continuations, directives, heredocs, flags, JSON."""

from __future__ import annotations

import io

import pytest
from dockerfile_parse import DockerfileParser

from builder.dockerfile import (
    Add,
    Copy,
    DockerfileError,
    From,
    Healthcheck,
    Onbuild,
    Run,
    parse,
    parse_instruction,
    parse_triggers,
    plan,
)


def insts(text: str, path: str = "Dockerfile"):
    doc = parse(text, path)
    return [parse_instruction(n, path, doc.escape) for n in doc.nodes]


def test_lines_and_continuations() -> None:
    text = ("# syntax=docker/dockerfile:1\n\nFROM scratch\n"
            "RUN a \\\n    # comment inside\n\n    b \\\n  c\n"
            "  LABEL x=1\n")
    doc = parse(text, "df/Dockerfile")
    assert doc.syntax == "docker/dockerfile:1"
    assert [(n.name, n.start, n.end) for n in doc.nodes] == [("FROM", 3, 3), ("RUN", 4, 8), ("LABEL", 9, 9)]
    assert doc.nodes[1].args == ("a     b   c",)
    assert doc.warnings and doc.warnings[0].startswith("df/Dockerfile:4: empty continuation line")


def test_line_grouping_agrees_with_dockerfile_parse() -> None:
    text = ("FROM busybox AS b\n# c\nRUN echo 1 \\\n  && echo 2\n\nENV A=1 \\\n    B=2\n"
            "COPY a b\nCMD [\"x\"]\nLABEL a=b \\\n\\\n  c=d\n")
    ours = [(n.name, n.start, n.end) for n in parse(text).nodes]
    theirs = [(s["instruction"], s["startline"] + 1, s["endline"] + 1)
              for s in DockerfileParser(fileobj=io.BytesIO(text.encode())).structure
              if s["instruction"] != "COMMENT"]
    assert ours == theirs


def test_escape_directive_backtick() -> None:
    doc = parse("# escape=`\nFROM scratch\nRUN dir C:\\ `\n  && x\nCOPY a\\b c\n")
    assert doc.escape == "`"
    assert doc.nodes[1].args == ("dir C:\\   && x",)
    assert doc.nodes[2].args == ("a\\b", "c")


def test_directives_only_at_top() -> None:
    assert parse("FROM scratch\n# escape=`\nRUN a \\\n b\n").escape == "\\"
    assert parse("# foo=bar\n# escape=`\nFROM scratch\n").escape == "\\"   # unknown directive ends them
    assert parse("# check=skip=all\n# escape=`\nFROM scratch\n").escape == "`"
    assert parse("  #  ESCAPE = ` \nFROM scratch\n").escape == "`"


def test_escaped_escape_does_not_continue() -> None:
    doc = parse("FROM scratch\nLABEL a=\\\\\nLABEL b=1\n")
    assert [n.name for n in doc.nodes] == ["FROM", "LABEL", "LABEL"]


def test_instruction_without_arguments_and_case() -> None:
    doc = parse("from scratch\nrun\ncmd\n")
    assert [(n.name, n.args) for n in doc.nodes] == [("FROM", ("scratch",)), ("RUN", ()), ("CMD", ())]
    run = insts("from scratch\nrun\n")[1]
    assert isinstance(run, Run) and run.argv() == ["/bin/sh", "-c"]


def test_json_forms() -> None:
    _, a, b, c, d, e = insts('FROM scratch\nCMD ["a", "b c"]\nCMD [\'a\']\nRUN [ "x" ] trailing\n'
                             'ENTRYPOINT []\nCOPY ["a b", "c"]\n')
    assert (a.command, a.shell_form) == (("a", "b c"), False)
    assert (b.command, b.shell_form) == (("['a']",), True)
    assert (c.command, c.shell_form) == (("x",), False)
    assert d.argv() == []
    assert e.sources == ("a b",) and e.dest == "c" and e.json


def test_flags() -> None:
    _, c, a, r = insts('FROM scratch\nCOPY --from=build --chown="1:2" --chmod=755 --link a b\n'
                       "ADD --checksum=sha256:00 --link=false http://x/y /z\n"
                       "RUN --network=none --mount=type=secret,id=s --mount=type=cache,target=/c x\n")
    assert (c.from_, c.chown, c.chmod, c.link) == ("build", "1:2", "755", True)
    assert (a.checksum, a.link, a.sources) == ("sha256:00", False, ("http://x/y",))
    assert r.network == "none" and [m.type for m in r.mounts] == ["secret", "cache"]
    assert r.mounts[0].target == "/run/secrets/s" and r.mounts[1].id == "/c" and not r.mounts[1].readonly


@pytest.mark.parametrize("line,message", [
    ("COPY --link=maybe a b", "Expecting boolean value for flag link, not: maybe"),
    ("COPY --chown a b", "Missing a value on flag: chown"),
    ("COPY --from=a --from=b a b", "Duplicate flag specified: from"),
    ("RUN --mount=type=nope x", "unsupported mount type 'nope'"),
    ("RUN --mount=type=cache x", "mount type 'cache' requires a target"),
    ("RUN --mount=type=bind,target=/x,mode=0644 x", "mode not allowed for 'bind' type mounts"),
    ("RUN --mount=type=secret,id=a,source=b x", "both source and id can't be set"),
    ("RUN --mount=type=cache,target=/x,bogus=1 x", "unexpected key 'bogus' in 'bogus=1'"),
    ("RUN --network=bridge x", "unsupported network mode 'bridge'"),
    ("RUN --mount=type=ssh,from=x y", "ssh mount should not have a from or source"),
    ("RUN --mount=type=tmpfs,target=/t,size=lots x", "invalid value for size: lots"),
    ("RUN --mount=type=cache,target=/c,sharing=weird x", "unsupported sharing value 'weird'"),
    ("RUN --mount=type=bind,target=/b,required x", "unexpected key 'required' for mount type 'bind'"),
    ("WORKDIR --x=1 /a", "Unknown flag: x"),
])
def test_flag_errors(line: str, message: str) -> None:
    with pytest.raises(DockerfileError) as err:
        insts(f"FROM scratch\n\n{line}\n", "ctx/Dockerfile")
    assert str(err.value) == f"ctx/Dockerfile:3: {message}"


def test_mount_options() -> None:
    run = insts("FROM scratch\nRUN --mount=type=tmpfs,target=/t,size=64m "
                "--mount=type=bind,from=st,source=/a,target=/b,rw "
                "--mount=type=secret,id=tok,required,mode=0400,uid=1 x\n")[1]
    tmpfs, bind, secret = run.mounts
    assert (tmpfs.size, tmpfs.readonly) == (64 << 20, False)
    assert (bind.from_, bind.source, bind.target, bind.readonly) == ("st", "/a", "/b", False)
    assert (secret.id, secret.target, secret.required, secret.mode, secret.uid) == (
        "tok", "/run/secrets/tok", True, 0o400, 1)


def test_mount_values_expand_later() -> None:
    run = insts("FROM scratch\nRUN --mount=type=$T,target=/x,id=$ID x\n")[1]
    expanded = run.expand({"T": "cache", "ID": "mine"})
    assert (expanded.mounts[0].type, expanded.mounts[0].id) == ("cache", "mine")


def test_heredocs_run() -> None:
    text = "FROM scratch\nRUN <<EOF\necho $A\n  indented\nEOF\nRUN echo after\n"
    doc = parse(text)
    assert [(n.name, n.start, n.end) for n in doc.nodes] == [("FROM", 1, 1), ("RUN", 2, 5), ("RUN", 6, 6)]
    run = insts(text)[1]
    assert run.heredocs[0].content == "echo $A\n  indented\n" and run.heredocs[0].expand
    assert run.script() == (["/bin/sh", "-c", "echo $A\n  indented\n"], {})


def test_heredoc_shebang_and_complex() -> None:
    _, shebang, multi = insts('FROM scratch\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n'
                              'RUN cat <<A > /a && cat <<"B" > /b\n$x\nA\n$y\nB\n')
    argv, files = shebang.script()
    assert argv == ["/dev/pipes/EOF"] and files == {"/dev/pipes/EOF": (b"#!/usr/bin/env python3\nprint(1)\n", 0o755)}
    assert [(h.name, h.expand) for h in multi.heredocs] == [("A", True), ("B", False)]
    assert multi.script()[0] == ["/bin/sh", "-c", 'cat <<A > /a && cat <<"B" > /b\n$x\nA\n$y\nB']


def test_heredoc_chomp_and_copy() -> None:
    _, copy = insts('FROM scratch\nCOPY <<-EOT <<\'RAW\' /dest/\n\t\thello $N\n\tEOT\n$N stays\nRAW\n')
    assert isinstance(copy, Copy) and copy.sources == () and copy.dest == "/dest/"
    assert [(c.path, c.data, c.expand) for c in copy.contents] == [("EOT", "hello $N\n", True),
                                                                 ("RAW", "$N stays\n", False)]
    expanded = copy.expand({"N": "1"})
    assert [c.data for c in expanded.contents] == ["hello 1\n", "$N stays\n"]


def test_heredoc_interleaved_terminators() -> None:
    _, copy = insts("FROM scratch\nCOPY <<X <<Y /dest\nY\nX\nX\nY\n")
    assert [(c.path, c.data) for c in copy.contents] == [("X", "Y\n"), ("Y", "X\n")]


def test_heredoc_errors_and_non_heredocs() -> None:
    with pytest.raises(DockerfileError) as err:
        parse("FROM scratch\nRUN <<EOF\necho\n")
    assert (err.value.line, err.value.message) == (2, "unterminated heredoc")
    with pytest.raises(DockerfileError) as err:
        insts("FROM scratch\nCOPY a <<EOF\nx\nEOF\n")
    assert err.value.message == "COPY cannot accept a heredoc as a destination"
    json_run = insts('FROM scratch\nRUN ["<<EOF"]\nLABEL a=b\n')
    assert json_run[1].heredocs == () and json_run[2].name == "LABEL"
    label = parse("FROM scratch\nLABEL a=<<EOF\nRUN x\n")
    assert [n.name for n in label.nodes] == ["FROM", "LABEL", "RUN"]


def test_onbuild() -> None:
    _, ob = insts("FROM scratch\nONBUILD   copy --from=x a b\n")
    assert isinstance(ob, Onbuild) and ob.expression == "copy --from=x a b" and ob.trigger == "COPY"
    inner = ob.instruction()
    assert isinstance(inner, Copy) and inner.from_ == "x" and inner.line == 2
    with pytest.raises(DockerfileError) as err:
        insts("FROM scratch\nONBUILD BOGUS x\n")[1].instruction()
    assert str(err.value) == "Dockerfile:2: unknown instruction: BOGUS"
    triggers = parse_triggers(["RUN echo $HOME", "COPY <<EOF /x\nhi\nEOF"])
    assert [t.name for t in triggers] == ["RUN", "COPY"] and triggers[1].contents[0].data == "hi\n"
    with pytest.raises(DockerfileError):
        parse_triggers(["FROM x"])


def test_healthcheck_and_from() -> None:
    _, hc, hc2 = insts("FROM --platform=linux/amd64 scratch AS Build\n"
                       "HEALTHCHECK --interval=1.5s --start-interval=2m CMD true\nHEALTHCHECK NONE\n")
    frm = insts("FROM --platform=linux/amd64 img AS Build\n")[0]
    assert isinstance(frm, From) and (frm.image, frm.stage_name, frm.platform) == ("img", "build", "linux/amd64")
    assert isinstance(hc, Healthcheck) and hc.config() == {"Test": ["CMD-SHELL", "true"], "Interval": 1_500_000_000,
                                                          "StartInterval": 120_000_000_000}
    assert hc2.test == ("NONE",)


def test_add_and_copy_expand() -> None:
    _, add, copy = insts("FROM scratch\nADD --chown=$U --checksum=$SUM $SRC ${DST:-/d}\n"
                         "COPY --chmod=$M \"a b\" c\n")
    a = add.expand({"U": "app", "SUM": "sha256:1", "SRC": "x"})
    assert isinstance(a, Add) and (a.chown, a.checksum, a.sources, a.dest) == ("app", "sha256:1", ("x",), "/d")
    with pytest.raises(DockerfileError) as err:
        copy.expand({"M": "644"})
    assert "unexpected end of statement while looking for matching double-quote" in err.value.message


def test_errors_name_file_and_line() -> None:
    with pytest.raises(DockerfileError) as err:
        plan("FROM scratch\nRUN ok\n\nBOGUS x\n", path="sub/my.Dockerfile")
    assert str(err.value) == "sub/my.Dockerfile:4: unknown instruction: BOGUS"


@pytest.mark.parametrize("line,names", [
    ("RUN <<A", [("A", True, False, 0)]),
    ("RUN 5<<-B", [("B", True, True, 5)]),
    ("RUN <<  C  > /out", [("C", True, False, 0)]),
    ("RUN <<- D", [("D", True, True, 0)]),
    ("RUN <<  -E", [("-E", True, False, 0)]),
    ("RUN <<f'g'", [("fg", False, False, 0)]),
    ("RUN <<h\\'i", [("h'i", True, False, 0)]),
    ("RUN <<'j k'", [("j k", False, False, 0)]),
    ("RUN <<$L", [("$L", True, False, 0)]),
    ("RUN <<M <<N", [("M", True, False, 0), ("N", True, False, 0)]),
    ("RUN '<<O'", []),
    ('RUN echo "<<P', []),
    ("RUN cat<<Q", []),
])
def test_heredoc_delimiters(line: str, names) -> None:
    docs = [(d.name, d.expand, d.chomp, d.fd) for d in parse(f"FROM scratch\n{line}\n" + "".join(
        f"body\n{name}\n" for name, *_ in names)).nodes[1].heredocs]
    assert docs == names


def test_heredoc_bodies_are_raw() -> None:
    run = insts("FROM scratch\nRUN <<X\n# not a comment\n\tkeep tab \\\n\nX\nLABEL after=1\n")[1]
    assert run.heredocs[0].content == "# not a comment\n\tkeep tab \\\n\n"
    copy = insts("FROM scratch\nCOPY <<EOF /q\n\"a\" 'b' \\$x $y\nEOF\n")[1]
    assert copy.expand({"y": "Y"}).contents[0].data == "\"a\" 'b' $x Y\n"
