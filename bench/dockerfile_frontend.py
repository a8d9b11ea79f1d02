"""Benchmark of the Dockerfile front-end (pure Python, on the cached-rebuild path).

Measures, medians over several runs:
- import time of ``builder.dockerfile`` and ``builder.dockerignore`` in a fresh
  interpreter (bytecode cached), next to ``dockerfile_parse``'s;
- parse + plan + expansion of a realistic 25-line multi-stage Dockerfile and of
  a 2,000-line one, next to ``dockerfile_parse``'s ``structure`` (lines only);
- a ``.dockerignore`` walk of a 20,000-file context;
- 10,000 and 100,000 ``LABEL`` lines planned and applied to a config with the
  build's ``ConfigEditor`` (issue 8 item 6: was quadratic, 157 s for 100,000), next to
  the same number of comment lines: the time per line must not grow with the count.

Run: ``.venv/bin/python bench/dockerfile_frontend.py``.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \\
    go build -o /out/app ./cmd/app && \\
    strip /out/app
FROM alpine:3.19 AS certs
RUN apk add --no-cache ca-certificates
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.version=$VERSION \\
      org.opencontainers.image.title="app"
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /out/app /app
COPY <<EOF /etc/app.conf
listen = :8080
EOF
EXPOSE 8080/tcp
USER 65532:65532
HEALTHCHECK --interval=30s CMD ["/app", "health"]
ENTRYPOINT ["/app"]
"""


def median_ms(fn, runs: int = 30) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def import_ms(module: str, runs: int = 15) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True, capture_output=True)
    values = [float(subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True,
                                   capture_output=True, text=True).stdout) for _ in range(runs)]
    return statistics.median(values)


def plan_and_expand(text: str) -> None:
    from builder.dockerfile import StageScope, plan
    p = plan(text, {"VERSION": "1.0"})
    for index in p.needed:
        scope = StageScope(p.build_args, ["PATH=/usr/bin:/bin"])
        for inst in p.stages[index].instructions:
            scope.apply(inst)


def labels_applied(text: str) -> None:
    """What a build does with metadata lines, without the store: plan, expand, edit the config."""
    from builder.build.metadata import ConfigEditor
    from builder.dockerfile import StageScope, plan
    p = plan(text)
    editor = ConfigEditor({"config": {}})
    for index in p.needed:
        scope = StageScope(p.build_args, ["PATH=/usr/bin:/bin"])
        for inst in p.stages[index].instructions:
            editor.apply(scope.apply(inst))


def dockerfile_parse_structure(text: str) -> None:
    from dockerfile_parse import DockerfileParser
    _ = DockerfileParser(fileobj=io.BytesIO(text.encode())).structure


def main() -> None:
    rows = [("import builder.dockerfile", import_ms("builder.dockerfile")),
            ("import builder.dockerignore", import_ms("builder.dockerignore")),
            ("import dockerfile_parse (reference)", import_ms("dockerfile_parse"))]
    big = DOCKERFILE + "".join(f"LABEL l{i}=${{VERSION}}-{i}\nRUN echo {i} \\\n  && true\n"
                               for i in range(700))
    plan_and_expand(DOCKERFILE)
    rows += [(f"plan+expand, {len(DOCKERFILE.splitlines())} lines", median_ms(lambda: plan_and_expand(DOCKERFILE))),
             ("dockerfile-parse .structure, same file", median_ms(lambda: dockerfile_parse_structure(DOCKERFILE))),
             (f"plan+expand, {len(big.splitlines())} lines", median_ms(lambda: plan_and_expand(big), 5)),
             ("dockerfile-parse .structure, same file", median_ms(lambda: dockerfile_parse_structure(big), 5))]
    for count in (10_000, 100_000):
        labels = "FROM scratch\n" + "".join(f"LABEL k{i}=v{i}\n" for i in range(count))
        comments = "FROM scratch\n" + "".join(f"# comment {i}\n" for i in range(count)) + "LABEL k=v\n"
        rows += [(f"{count:,} LABEL lines: plan+expand+config", median_ms(lambda t=labels: labels_applied(t), 3)),
                 (f"{count:,} comment lines: same", median_ms(lambda t=comments: labels_applied(t), 3))]
    from builder.dockerignore import DockerIgnore
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in range(200):
            sub = root / "src" / f"pkg{d}"
            sub.mkdir(parents=True)
            for f in range(100):
                (sub / f"f{f}.py").write_bytes(b"x")
        rules = DockerIgnore.from_text("*.pyc\n**/__pycache__\nnode_modules\n!src/pkg1/keep.pyc\n")
        rows.append(("walk 20,000-file context with .dockerignore",
                     median_ms(lambda: sum(1 for _ in rules.walk(root)), 5)))
        rules = DockerIgnore.from_text("src\n")
        rows.append(("same, context excluded whole (pruned)", median_ms(lambda: sum(1 for _ in rules.walk(root)), 5)))
    width = max(len(name) for name, _ in rows)
    for name, ms in rows:
        print(f"{name:<{width}}  {ms:8.2f} ms")


if __name__ == "__main__":
    main()
