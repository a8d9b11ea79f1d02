"""Docker's word expansion, table-driven; the table is checked against docker itself.

The expectations below are what docker 20.10 gives for ``LABEL k=<word>`` with
``ENV A=1 E= S="a b" Q="'q'" A_B=ab``; ``test_table_matches_docker`` rebuilds
them with docker so the table cannot drift.
"""

from __future__ import annotations

import pytest

from builder.dockerfile import DockerfileError, ExpansionError, Lexer, StageScope, expand_word, plan
from dockerfile_helpers import docker_build, docker_config, docker_error, docker_rmi, write_context

ENV = {"A": "1", "E": "", "S": "a b", "Q": "'q'", "A_B": "ab"}
ENV_LINE = "ENV A=1 E= S=\"a b\" Q=\"'q'\" A_B=ab"

TABLE = [
    ("$A", "1"), ("${A}", "1"), ("$A$A", "11"), ("${A}x", "1x"), ("$Ax", ""), ("x$A", "x1"),
    ("$U", ""), ("${U}", ""), ("${U:-d}", "d"), ("${A:-d}", "1"), ("${E:-d}", "d"),
    ("${U:+p}", ""), ("${A:+p}", "p"), ("${E:+p}", ""), ("${U:-$A}", "1"),
    ("${U:-${A:-z}}", "1"), ("${A:+${A}${A}}", "11"), ('"${S}"', "a b"), ("'$A'", "$A"),
    ("\"'$A'\"", "'1'"), ("\\$A", "$A"), ('"\\$A"', "$A"), ('"\\"$A"', '"1'), ('"a\\b"', "a\\b"),
    ("a\\b", "ab"), ("\\\\", "\\"), ('"\\\\"', "\\"), ("$", "$"), ("a$", "a$"), ("$1", ""),
    ("$1x", "x"), ("$$", ""), ("$@", ""), ("$-", ""), ("${A:-}", "1"), ('"${U:-a b}"', "a b"),
    ("'\"'", '"'), ("\"'\"", "'"), ("'a'\"b\"c", "abc"), ("${A?oops}", "1"), ("${E?oops}", ""),
    ("${E:+}", ""), ("${Q}", "'q'"), ('"$Q"', "'q'"), ("a=b", "a=b"), ("=x", "=x"),
    ("${A:-\\}}", "1"), ("${U:-a\\}b}", "a}b"), ("$A/$E/$A", "1//1"), ("${U:-'q q'}", "q q"),
    ('${U:-"q q"}', "q q"), ("\"${U:-'q q'}\"", "q q"), ("${A:+'lit'}", "lit"), ("${Ä}", ""),
    ("$Ä", ""), ("${A_B}", "ab"), ("$A-B", "1-B"), ("${A}_${A}", "1_1"), ('\\"', '"'),
    ("\\'", "'"), ("\"\\'\"", "\\'"),
]

ERRORS = [
    ("${A", "missing ':' in substitution"),
    ("${", "syntax error: missing '}'"),
    ("${}", "syntax error: bad substitution"),
    ("${:a}", "syntax error: bad substitution"),
    ("${A:-x", "syntax error: missing '}'"),
    ("${A-x}", "missing ':' in substitution"),
    ("${A:=x}", "unsupported modifier (=) in substitution"),
    ("${U?}", "U: is not allowed to be unset"),
    ("${U:?custom}", "U: custom"),
    ("${E:?}", "E: is not allowed to be empty"),
    ("'abc", "unexpected end of statement while looking for matching single-quote"),
    ('"abc', "unexpected end of statement while looking for matching double-quote"),
]


@pytest.mark.parametrize("word,expected", TABLE)
def test_expand_word(word: str, expected: str) -> None:
    assert expand_word(word, ENV) == expected


@pytest.mark.parametrize("word,message", ERRORS)
def test_expand_errors(word: str, message: str) -> None:
    with pytest.raises(ExpansionError) as err:
        expand_word(word, ENV)
    assert str(err.value).endswith(message)
    assert word in str(err.value)


def test_backtick_escape() -> None:
    assert expand_word("`$A", ENV, escape="`") == "$A"
    assert expand_word("a\\b", ENV, escape="`") == "a\\b"
    assert expand_word('"`"x"', ENV, escape="`") == '"x'


def test_words_split_after_expansion() -> None:
    lex = Lexer()
    assert lex.process_words("$S c", ENV) == ["a", "b", "c"]
    assert lex.process_words('"$S" c', ENV) == ["a b", "c"]
    assert lex.process_words("  80  $A/udp ", ENV) == ["80", "1/udp"]


def test_raw_modes_keep_quotes_and_unset() -> None:
    assert Lexer(skip_quotes=True).process_word("echo '$A' \"$U\"", ENV) == "echo '1' \"\""
    assert Lexer(raw_quotes=True, raw_escapes=True, skip_unset=True).process_word(
        "'a' \\b ${U} $U ${U:-x}", ENV) == "'a' \\b ${U} $U ${U:-x}"


def _labels_dockerfile(words) -> str:
    lines = ["FROM scratch", ENV_LINE]
    lines += [f"LABEL l{i:02d}={word}" for i, (word, _) in enumerate(words)]
    return "\n".join(lines) + "\n"


def _pybuild_labels(text: str) -> dict[str, str]:
    p = plan(text)
    scope = StageScope(p.build_args)
    labels: dict[str, str] = {}
    for inst in p.stages[0].instructions:
        expanded = scope.apply(inst)
        if expanded.name == "LABEL":
            labels.update(expanded.pairs)
    return labels


def test_table_through_label_instructions() -> None:
    labels = _pybuild_labels(_labels_dockerfile(TABLE))
    assert labels == {f"l{i:02d}": expected for i, (_, expected) in enumerate(TABLE)}


def _assert_docker_labels_match(tmp_path, text: str) -> None:
    write_context(tmp_path, {"Dockerfile": text})
    rc, out, image = docker_build(tmp_path)
    try:
        assert rc == 0, out
        assert docker_config(image)["Labels"] == _pybuild_labels(text)
    finally:
        docker_rmi(image)


@pytest.mark.docker
@pytest.mark.slow
def test_table_matches_docker(docker, tmp_path) -> None:
    _assert_docker_labels_match(tmp_path, _labels_dockerfile(TABLE))


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("word,message", ERRORS[:8])
def test_errors_match_docker(docker, tmp_path, word: str, message: str) -> None:
    text = f"FROM scratch\n{ENV_LINE}\nLABEL x={word}\n"
    write_context(tmp_path, {"Dockerfile": text})
    rc, out, image = docker_build(tmp_path)
    docker_rmi(image)
    assert rc != 0
    with pytest.raises(DockerfileError) as err:
        _pybuild_labels(text)
    assert err.value.line == 3
    assert err.value.message == docker_error(out)


def _random_words(seed: int, count: int) -> list[str]:
    import random
    rng = random.Random(seed)
    alphabet = ["$", "{", "}", ":", "-", "+", "?", "'", '"', "\\", "A", "E", "U", "x", "_", "1", "="]
    words = []
    while len(words) < count:
        word = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))
        if not word.endswith("\\") and word not in words:
            words.append(word)
    return words


@pytest.mark.docker
@pytest.mark.slow
def test_random_words_match_docker(docker, tmp_path) -> None:
    """Random words over the lexer's special characters: same value, or both fail."""
    ok, failing = [], []
    for word in _random_words(20261127, 400):
        try:
            _pybuild_labels(f"FROM scratch\n{ENV_LINE}\nLABEL x={word}\n")
            ok.append((word, None))
        except DockerfileError:
            failing.append(word)
    _assert_docker_labels_match(tmp_path, _labels_dockerfile(ok))
    for word in failing[:6]:
        write_context(tmp_path, {"Dockerfile": f"FROM scratch\n{ENV_LINE}\nLABEL x={word}\n"})
        rc, out, image = docker_build(tmp_path)
        docker_rmi(image)
        assert rc != 0, word
