"""Run a build plan: stages (independent ones in threads), steps, cache, image config.

Each instruction either edits the stage's config (a history entry with
``empty_layer``) or makes a layer: COPY/ADD/WORKDIR write into an overlay mount of
the stage whose upper dir is the diff, RUN runs in the runner's sandbox over the
same kind of overlay.  A non-empty upper dir becomes a layer blob and, renamed, the
snapshot the next step stacks on; an empty one gives an empty-layer history entry,
as docker's legacy builder does.  The cached path touches no mounts and no tar code.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from base.removal import remove_tree
from builder.dockerfile import instructions as ins
from builder.dockerfile.errors import DockerfileError
from builder.dockerfile.stages import Plan, Stage, StageScope, parse_triggers
from registry import oci
from registry import platform as platforms
from registry.errors import PybuildError

from .cache import BuildCache, CacheBlobMissing, step_key
from .context import Context, SourceError
from .metadata import ConfigEditor, nop_created_by
from .progress import Progress

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH_ZERO = "1970-01-01T00:00:00Z"


class BuildError(PybuildError):
    """A step failed; the message names the Dockerfile line."""


class BuildOptions:
    """What ``pybuild build`` was asked to do (the parts the executor needs).

    Plain classes here and below: ``dataclasses`` costs ~20 ms to import, and the
    fully cached rebuild is mostly start-up.
    """

    def __init__(self, root: str, context: Context, tags: list[str] | None = None, no_cache: bool = False,
                 network: str = "host", labels: dict[str, str] | None = None, secrets: dict[str, str] | None = None,
                 compression: str = "gzip", source_date_epoch: int | None = None,
                 platform: "platforms.Platform | None" = None, keep_untagged: bool = True,
                 cache_from: list | None = None, cache_to: list | None = None, insecure: bool = False,
                 pull: bool = False, named_contexts: dict[str, str] | None = None, ssh: dict[str, str] | None = None):
        self.root = root
        self.context = context
        self.tags = list(tags or [])
        self.no_cache = no_cache
        self.network = network
        self.labels = dict(labels or {})
        self.secrets = dict(secrets or {})
        self.compression = compression
        self.source_date_epoch = source_date_epoch
        self.platform = platform  # the target platform (None: the host's)
        self.keep_untagged = keep_untagged  # False when the image becomes part of an index
        self.cache_from = list(cache_from or [])  # CacheSpec (builder/build/cache_remote.py)
        self.cache_to = list(cache_to or [])
        self.insecure = insecure
        self.pull = pull  # --pull: ask the registry for a newer base even when the store has one
        from .named_contexts import NamedContexts  # noqa: PLC0415
        self.named = NamedContexts(named_contexts or {})  # --build-context
        self.ssh = dict(ssh or {})  # --ssh: agent id -> host socket


class StageState:
    """A stage's image as it is being built."""

    def __init__(self, config: dict[str, Any], layers: list[oci.Descriptor], key: str, created: str,
                 scope: StageScope, base_env: list[str] | None = None,
                 platform: "platforms.Platform | None" = None):
        self.config = config
        self.platform = platform or platforms.host()  # what this stage's RUN steps execute as
        self.layers = layers
        self.key = key
        self.created = created
        self.scope = scope
        self.base_env = base_env  # the base's Env, before the default PATH
        self.editor = ConfigEditor(config)  # metadata instructions; tracks CMD-was-set
        self.stage_index = -1

    @property
    def shell(self) -> list[str]:
        return self.editor.shell

    @property
    def diff_ids(self) -> list[str]:
        return self.config["rootfs"]["diff_ids"]

    @property
    def run_config(self) -> dict[str, Any]:
        return self.config["config"]

    def chain_id(self) -> str | None:
        ids = oci.chain_ids(self.diff_ids)
        return ids[-1] if ids else None


class _LayerView:
    """What :meth:`runner.snapshots.Snapshots.ensure` needs of an image."""

    def __init__(self, state: StageState):
        self.layers = state.layers
        self.diff_ids = state.diff_ids
        self.id = state.key


def _now(epoch: int | None) -> str:
    t = time.time() if epoch is None else epoch
    frac = "" if epoch is not None else f".{int((t % 1) * 1e9):09d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + frac + "Z"


class Executor:
    """Builds the needed stages of a :class:`Plan` into the store."""

    def __init__(self, plan: Plan, opts: BuildOptions, progress: Progress):
        self.plan = plan
        self.opts = opts
        self.progress = progress
        self.cache = BuildCache(opts.root)
        self.results: dict[int, StageState] = {}
        self._store: Any = None  # a Store, opened on first use
        self._snapshots: Any = None  # a Snapshots, opened on first use
        self._lock = threading.Lock()
        self._mount_lock = threading.Lock()
        self._stage_mounts: dict[str, str] = {}
        self._scratch: Path | None = None
        self.cancelled = threading.Event()
        self.running: set = set()  # RUN processes in flight (killed when a stage fails)
        self.base_images: dict[str, str] = {}  # image name as written -> manifest digest used (provenance)
        self.platform = opts.platform or platforms.host()
        self.steps: list = []  # StepRecord of every layer step, for --cache-to
        self.lazy: dict[str, set[str]] = {}  # blob digest -> keys of the cache hits that use it
        self.distrust: set[str] = set()  # keys whose imported layer was lost: run them
        self._imported: Any = None  # cache_import.ImportedCache, made on first use
        self._pulled: set[tuple[str, str]] = set()  # (name, platform) pulled by this build
        self._lazy_bases: dict = {}  # name -> cache_import.LazyImage
        self.cache_mounts: dict[str, str] = {}  # RUN --mount=type=cache id -> host dir, for cache-mounts=true

    @property
    def imported(self):
        """The ``--cache-from`` records (loaded on first use), or None."""
        if self._imported is None and self.opts.cache_from:
            from .cache_import import ImportedCache  # noqa: PLC0415
            self._imported = ImportedCache(self.opts.cache_from, self.store, self.progress.message,
                                           self.opts.insecure)
        return self._imported

    # -- lazily opened resources ------------------------------------------------------
    @property
    def store(self):
        if self._store is None:
            from registry.store import Store  # noqa: PLC0415
            self._store = Store(self.opts.root)
        return self._store

    @property
    def snapshots(self):
        if self._snapshots is None:
            from runner.snapshots import Snapshots  # noqa: PLC0415
            self._snapshots = Snapshots(self.opts.root)
        return self._snapshots

    def _lowerdirs(self, image) -> list[str]:
        """Snapshot dirs of ``image``'s layers (unpacked once, by chain ID), bottom first."""
        if self.lazy:
            wanted = [layer for layer, chain in zip(image.layers, oci.chain_ids(image.diff_ids))
                      if not self.snapshots.has(chain)]
            self._fetch(wanted)
        return [str(p) for p in self.snapshots.ensure(self.store, image)]

    def _fetch(self, layers: list[oci.Descriptor]) -> None:
        """Bring lazily cached layers into the store (a lost one raises CacheBlobMissing)."""
        for layer in layers:
            keys = self.lazy.get(layer.digest)
            if keys is not None and not self.store.has_blob(layer.digest):
                self.imported.fetch(layer, keys)

    def scratch(self, prefix: str) -> Path:
        """A private temp dir under ``$ROOT/tmp`` (same filesystem as the snapshots)."""
        with self._lock:
            if self._scratch is None:
                self._scratch = self.store.temp_dir("build")
            path = Path(self._scratch) / f"{prefix}-{len(os.listdir(self._scratch))}"
            path.mkdir()
        return path

    # -- the build --------------------------------------------------------------------
    def build(self) -> "StoredImageResult":
        """Build the target; tag it; return its id and config.

        Holds the store's GC lock (shared) throughout: blobs made or reused from the cache
        are reachable from no tag until the end, and ``prune`` must leave them alone.
        """
        with self.store.transaction():
            return self._build()

    def _build(self) -> "StoredImageResult":
        try:
            if self.opts.cache_from and not self.opts.no_cache:
                self.imported  # noqa: B018 (loaded before stage threads start)
            while True:
                try:
                    for wave in self.plan.waves():
                        self._run_wave(wave)
                    final = self.results[self.plan.target]
                    self._fetch(final.layers)
                    break
                except CacheBlobMissing as err:  # run what the lost layer would have given, from the top
                    if not err.keys or err.keys <= self.distrust:
                        raise  # a base image's layer, or a step that already ran: nothing to fall back to
                    self.progress.message(f"[Warning] {err}; running the step instead")
                    self.distrust |= err.keys
                    self._restart()
            config = self._final_config(final)
            if any(spec.kind == "inline" for spec in self.opts.cache_to):
                from .cache_export import inline_config  # noqa: PLC0415
                from .cache_remote import INLINE_KEY  # noqa: PLC0415
                config[INLINE_KEY] = inline_config(self.steps)
            image = self.store.commit_image(config, final.layers)
            if self._imported is not None and self._imported.fetched_blobs:
                self.progress.message(f"cache: fetched {self._imported.fetched_blobs} layers, "
                                      f"{self._imported.fetched_bytes} bytes")
            descriptor = oci.Descriptor(image.descriptor.media_type, image.descriptor.digest, image.descriptor.size,
                                        platform=(platforms.of_config(config) or self.platform).to_json())
            for tag in self.opts.tags:
                if self._tagged(tag) != image.descriptor.digest:  # a cached rebuild rewrites nothing
                    self.store.tag(tag, descriptor)
            if not self.opts.tags and self.opts.keep_untagged:
                self.store.keep(descriptor)
            self._export_cache()
            return StoredImageResult(image.id, config, descriptor)
        finally:
            self._cleanup()

    def _export_cache(self) -> None:
        specs = [spec for spec in self.opts.cache_to if spec.kind != "inline"]
        if not specs:
            return
        from .cache_export import export  # noqa: PLC0415
        final: set[int] = set()
        index: int | None = self.plan.target
        while index is not None:
            final.add(index)
            index = self.plan.stages[index].base_stage
        mounts = []
        if any(spec.mounts for spec in specs) and self.cache_mounts:
            from .cache_export import pack_mounts  # noqa: PLC0415
            mounts = pack_mounts(self.store, self.cache_mounts, self.opts.compression)
        for spec in specs:
            digest = export(spec, self.steps, final, self.store, self._imported, mounts if spec.mounts else [],
                            self.progress.message, self.opts.insecure)
            self.progress.message(f"exported cache to {spec} ({digest})")

    def _tagged(self, tag: str) -> str | None:
        try:
            return self.store.resolve(tag).digest
        except PybuildError:
            return None

    def _run_wave(self, wave: list[int]) -> None:
        if len(wave) == 1:
            self.results[wave[0]] = self._build_stage(self.plan.stages[wave[0]])
            return
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait  # noqa: PLC0415

        with ThreadPoolExecutor(len(wave), thread_name_prefix="stage") as pool:
            futures = {pool.submit(self._build_stage, self.plan.stages[i]): i for i in wave}
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                self.cancel()
                wait(futures)
                raise failed[0].exception()  # type: ignore[misc]  # checked not None above
            for fut, index in futures.items():
                self.results[index] = fut.result()

    def cancel(self) -> None:
        """Stop the build: no further steps, RUN processes in flight killed."""
        self.cancelled.set()
        for proc in list(self.running):
            proc.signal(signal.SIGKILL)
    def _restart(self) -> None:
        """Forget stage results and source mounts; steps that ran stay in the local cache."""
        if self._stage_mounts:
            from .mounting import unmount  # noqa: PLC0415
            for target in list(self._stage_mounts.values()):
                unmount(target)
            self._stage_mounts.clear()
        self.results.clear()
        self.steps.clear()
        self.lazy.clear()
        self._lazy_bases.clear()
        self.cancelled.clear()  # a parallel wave stopped its siblings when the layer went missing

    def _cleanup(self) -> None:
        if self._stage_mounts:
            from .mounting import unmount  # noqa: PLC0415
            for target in list(self._stage_mounts.values()):
                unmount(target)
        if self._scratch is not None:
            remove_tree(self._scratch, ignore_errors=True)

    def _final_config(self, state: StageState) -> dict[str, Any]:
        config = _copy.deepcopy(state.config)
        if self.opts.labels:
            labels = config["config"].setdefault("Labels", {}) or {}
            labels.update(self.opts.labels)
            config["config"]["Labels"] = labels
        config["created"] = state.created
        config["config"] = {k: v for k, v in config["config"].items() if v is not None}
        return config

    def _label_prefix(self, platform: "platforms.Platform") -> str:
        """BuildKit's step prefix: ``linux/arm64``, or ``linux/amd64->arm64`` for a stage that runs on
        another platform than the target (a cross-compiling stage); none for a plain host build."""
        if platform != self.platform:
            return f"{platform}->{str(self.platform).split('/', 1)[1]} "
        return "" if self.opts.platform is None else f"{platform} "

    def _explicit(self, stage: Stage) -> bool:
        """Whether the stage's platform was asked for (``--platform`` or ``FROM --platform``)."""
        return bool(stage.platform) or self.opts.platform is not None

    def _stage_platform(self, stage: Stage) -> "platforms.Platform":
        """``FROM --platform=P`` (expanded), else the build's target platform."""
        if not stage.platform:
            return self.platform
        try:
            return platforms.parse(stage.platform)
        except PybuildError as err:
            raise stage.from_.error(str(err)) from None

    def _base_key(self, image_key: str, platform: "platforms.Platform") -> str:
        """A base's cache key; a foreign platform is part of it (the same base runs differently)."""
        return image_key if platform == platforms.host() else step_key(image_key, ["platform", str(platform)])

    # -- stages -----------------------------------------------------------------------
    def _base_state(self, stage: Stage) -> StageState:
        scope = StageScope(self.plan.build_args)
        platform = self._stage_platform(stage)
        if stage.base_stage is not None:
            parent = self.results[stage.base_stage]
            if not stage.platform:  # FROM <stage> builds for that stage's platform
                platform = parent.platform
            config = _copy.deepcopy(parent.config)
            key = parent.key if parent.platform == platform else step_key(parent.key, ["platform", str(platform)])
            state = StageState(config, list(parent.layers), key, parent.created, scope, platform=platform)
        elif stage.is_scratch:
            config = {"architecture": platform.architecture, "os": platform.os, "config": {},
                      "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            created = EPOCH_ZERO if self.opts.source_date_epoch is None else _now(self.opts.source_date_epoch)
            state = StageState(config, [], self._base_key(step_key("scratch", None), platform), created, scope,
                               platform=platform)
        else:
            image = self._load_image(stage.base, stage.from_, platform=platform, warn=self._explicit(stage))
            if not self._explicit(stage):  # docker: a foreign base with no platform asked for is built as itself
                platform = platforms.of_config(image.config) or platform
            config = _copy.deepcopy(image.config)
            config.pop("dev.pybuild.cache.v1", None)  # a base's inline cache is not ours (cache_remote.INLINE_KEY)
            config.setdefault("config", {})
            config.setdefault("history", [])
            config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
            created = config.get("created") or EPOCH_ZERO
            state = StageState(config, list(image.layers), self._base_key(step_key("image", image.id), platform),
                               created, scope, platform=platform)
        # the image is for the stage's platform, whatever the base said (BuildKit does the same)
        config.pop("variant", None)
        config.update(platform.to_json())
        rc = state.run_config
        state.base_env = rc.get("Env")
        env = list(rc.get("Env") or [])
        if not any(e.startswith("PATH=") for e in env):
            env.insert(0, DEFAULT_PATH)
        scope.env = env
        rc["Env"] = scope.env
        return state

    def _load_image(self, name: str, inst: ins.Instruction, flag: bool = False,
                    platform: "platforms.Platform | None" = None, warn: bool = True):
        """An image from the store (for ``platform``), pulled if missing; ``flag``: named by ``--from``.

        A single-platform image of another platform is used, with BuildKit's warning if ``warn``.
        The manifest digest used is recorded for the provenance.
        """
        from registry.errors import ImageNotFound  # noqa: PLC0415
        platform = platform or self.platform
        if name in self.opts.named:
            try:
                name = self.opts.named.image_name(name, self.store) or name
            except PybuildError as err:
                raise inst.error(str(err)) from None
        image = None
        if not self.opts.pull:
            try:
                desc = self.store.resolve(name)
            except ImageNotFound:
                desc = None
            if desc is not None:  # in the store: an index without this platform is an error, not a pull
                try:
                    image = self.store.image_at(desc, str(platform))
                except ImageNotFound as err:
                    raise inst.error(f"base image {name}: {err}") from None
        if image is None and self.imported is not None and not self.opts.pull:  # a CI build from a shared cache
            image = self._lazy_base(name, inst, flag)
        if image is None:
            from registry.remote.pull import pull_image  # noqa: PLC0415
            try:
                with self._mount_lock:  # --pull: once per name, platform and build
                    if (name, str(platform)) not in self._pulled:
                        self.progress.message(f"pulling {name}" + ("" if self.opts.pull else " (not in the local store)"))
                        pull_image(self.store, name, platform=str(platform), insecure=self.opts.insecure)
                        self._pulled.add((name, str(platform)))
                image = self.store.image(name, str(platform))
            except PybuildError as err:
                raise self._pull_error(name, inst, flag, err) from None
        actual = platforms.of_config(image.config)
        if warn and actual is not None and actual != platform:
            self.progress.message(f"[Warning] InvalidBaseImagePlatform: Base image {name} was pulled with platform "
                                  f'"{actual}", expected "{platform}" for current build (line {inst.line})')
        self.base_images[name] = image.descriptor.digest
        return image

    def _pull_error(self, name: str, inst: ins.Instruction, flag: bool, err: Exception) -> Exception:
        what = (f"invalid from flag value {name}" if flag else f"pulling base image {name!r} failed" if self.opts.pull
                else f"base image {name!r} not found locally and pulling it failed")
        return inst.error(f"{what}: {err}")

    def _lazy_base(self, name: str, inst: ins.Instruction, flag: bool):
        """A base image not in the store, read by manifest and config only; its layers are fetched
        like cached layers, when a step or the final image needs them."""
        with self._mount_lock:
            image = self._lazy_bases.get(name)
            if image is None:
                self.progress.message(f"resolving {name} (layers are fetched when needed)")
                try:
                    image = self.imported.remote_image(name)
                except PybuildError as err:
                    raise self._pull_error(name, inst, flag, err) from None
                self._lazy_bases[name] = image
                with self._lock:
                    for layer in image.layers:
                        if not self.store.has_blob(layer.digest):
                            self.lazy.setdefault(layer.digest, set())
        return image

    def _build_stage(self, stage: Stage) -> StageState:
        state = self._base_state(stage)
        state.stage_index = stage.index
        total = len(stage.instructions) + 1
        name = self._label_prefix(state.platform) + (stage.name or f"stage-{stage.index}")
        label = f"[{name} 1/{total}] FROM {stage.base}"
        self.progress.step(label).done()
        triggers = state.run_config.get("OnBuild") or []
        if triggers:
            state.run_config["OnBuild"] = None
            for trigger in parse_triggers(triggers, self.plan.path):
                self._dispatch(stage, state, trigger, f"[{name} 1/{total}] ONBUILD")
        for n, inst in enumerate(stage.instructions, start=2):
            if self.cancelled.is_set():
                raise BuildError("build cancelled")
            self._dispatch(stage, state, inst, f"[{name} {n}/{total}]")
        if not stage.instructions and not triggers:
            # nothing was committed: the stage is its base as it was (no default PATH added)
            if stage.is_scratch and stage.index == self.plan.target:
                raise DockerfileError("No image was generated. Is your Dockerfile empty?", stage.from_.path,
                                      stage.from_.line)
            state.run_config["Env"] = state.base_env
        return state

    # -- one instruction --------------------------------------------------------------
    def _dispatch(self, stage: Stage, state: StageState, raw: ins.Instruction, label: str) -> None:
        inst = state.scope.apply(raw)
        text = f"{label} {raw.original}"
        if isinstance(inst, (ins.Run, ins.Copy, ins.Add, ins.Workdir)):
            try:
                self._layer_instruction(stage, state, inst, text)
            except (DockerfileError, BuildError, CacheBlobMissing):
                raise
            except (SourceError, PybuildError) as err:
                raise BuildError(f"{inst.path}:{inst.line}: {err}") from None
            except OSError as err:
                raise BuildError(f"{inst.path}:{inst.line}: {inst.name} failed: {err}") from None
            return
        if isinstance(inst, ins.Arg):
            history = state.scope.arg_history(inst)
        else:
            history = state.editor.apply(inst)
        state.key = step_key(state.key, ["meta", history])
        self._history(state, nop_created_by(state.shell, history), empty=True, created=state.created)
        self.progress.step(text).done()

    def _history(self, state: StageState, created_by: str, empty: bool, created: str) -> None:
        entry: dict[str, Any] = {"created": created, "created_by": created_by}
        if empty:
            entry["empty_layer"] = True
        state.config["history"].append(entry)
        state.created = created

    # -- layer steps ------------------------------------------------------------------
    def _layer_instruction(self, stage: Stage, state: StageState, inst, text: str) -> None:
        if isinstance(inst, ins.Workdir):
            path = state.editor.set_workdir(inst.value)
            desc = ["WORKDIR", path]
            created_by = nop_created_by(state.shell, f"WORKDIR {path}", metadata=False)

            def action(merged: str, upper: str) -> None:
                from .copy import CopyError, make_workdir  # noqa: PLC0415
                try:
                    make_workdir(merged, path)
                except CopyError as err:
                    raise inst.error(str(err)) from None
            self._layer_step(state, desc, created_by, text, mounted=action)
        elif isinstance(inst, ins.Run):
            from .run import RunStep  # noqa: PLC0415
            step = RunStep(self, stage, state, inst)
            self._layer_step(state, step.description(), step.created_by(), text, run=step)
        else:
            from .copy_step import CopyStep  # noqa: PLC0415
            copy = CopyStep(self, stage, state, inst)
            self._layer_step(state, copy.description(), copy.created_by, text, mounted=copy.apply, detached=copy.link)

    def _layer_step(self, state: StageState, description, created_by, text: str,
                    mounted=None, run=None, detached: bool = False) -> None:
        """One step that may make a layer.  ``created_by``: the history text, or a function
        giving it once the step ran (a COPY --from learns its source's kind then); the
        record keeps it for cached rebuilds."""
        key = step_key(state.key, description)
        with _IN_FLIGHT.claim(key) as made:
            self._layer_step_once(state, key, made, created_by, text, mounted, run, detached)

    def _layer_step_once(self, state: StageState, key: str, made: list, created_by, text: str,
                         mounted, run, detached: bool) -> None:
        record = made[0] or (None if self.opts.no_cache else self._cached_record(key))
        step = self.progress.step(text)
        if record is not None:
            record["created_by"] = record.get("created_by") or _text(created_by)
            self._apply_record(state, record, record["created_by"])
            self._note_step(state, key, record)
            state.key = key
            step.cached()
            return
        scratch = self.scratch("step")
        if detached:  # COPY --link: made on an empty tree, so the layer does not depend on the ones below
            lowers = [str(self.scratch("empty"))]
        else:
            lowers = self._lowerdirs(_LayerView(state))
        try:
            if run is not None:
                upper = run.execute(lowers, scratch, step)
            else:
                from .mounting import writable  # noqa: PLC0415
                with writable(lowers, str(scratch)) as (merged, upper):
                    mounted(merged, upper)
            started = time.monotonic()
            record = self._commit_layer(state, upper)
            layer_time = time.monotonic() - started
        except BaseException as err:
            if not isinstance(err, PybuildError):
                step.error(str(err) or type(err).__name__)
            raise
        record["created_by"] = _text(created_by)
        self.cache.put(key, record)
        made[0] = record
        self._note_step(state, key, record)
        self._apply_record(state, record, record["created_by"])
        state.key = key
        step.done(f"layer {layer_time:.3f}s" if record.get("layer") else "empty layer")

    def _cached_record(self, key: str) -> dict[str, Any] | None:
        """The local record of ``key`` if its layer is here, else an imported one (its layer
        fetched only when needed)."""
        record = self.cache.get(key)
        if record is not None and record.get("layer") and not self.store.has_blob(record["layer"]["digest"]):
            record = None
        if record is None and self.imported is not None and key not in self.distrust:
            record = self.imported.get(key)
            layer = record and record.get("layer")
            if layer and not self.store.has_blob(layer["digest"]):
                with self._lock:
                    self.lazy.setdefault(layer["digest"], set()).add(key)
        return record

    def _note_step(self, state: StageState, key: str, record: dict[str, Any]) -> None:
        if self.opts.cache_to:
            from .cache_export import StepRecord  # noqa: PLC0415
            with self._lock:
                self.steps.append(StepRecord(state.stage_index, key, record))

    def _commit_layer(self, state: StageState, upper: str) -> dict[str, Any]:
        created = _now(self.opts.source_date_epoch)
        if not any(os.scandir(upper)):
            return {"layer": None, "created": created}
        from registry.layer import write_layer  # noqa: PLC0415
        result = write_layer(self.store, upper, compression=self.opts.compression,
                             source_date_epoch=self.opts.source_date_epoch, overlay_upper=True)
        chain = oci.chain_ids(state.diff_ids + [result.diff_id])[-1]
        if not self.snapshots.has(chain):
            self.snapshots.adopt(chain, upper)
        return {"layer": result.descriptor.to_json(), "diff_id": result.diff_id, "created": created}

    def _apply_record(self, state: StageState, record: dict[str, Any], created_by: str) -> None:
        layer = record.get("layer")
        if layer:
            state.layers.append(oci.Descriptor.from_json(layer))
            state.diff_ids.append(record["diff_id"])
        self._history(state, created_by, empty=not layer, created=record["created"])

    # -- stage views for COPY --from / RUN --mount from= ------------------------------
    def source_root(self, ref: str, inst: ins.Instruction, stage: Stage) -> tuple[str, str]:
        """``(host dir, cache key)`` of a stage or image used as a source, mounted read-only."""
        directory = self.opts.named.directory(ref)
        if directory is not None:
            return directory, self.opts.named.directory_key(ref)
        src_stage = None if ref in self.opts.named else self.plan.resolve_from(ref, inst, stage.index)
        if src_stage is not None:
            state = self.results[src_stage.index]
            layers, key = _LayerView(state), state.key
        else:
            name = self.plan.build_args.expand_from(ref, inst)
            image = self._load_image(name, inst, flag=True, platform=self._stage_platform(stage),
                                     warn=self._explicit(stage))
            layers, key = image, step_key("image", image.id)
        return self._mounted(key, layers), key

    def source_key(self, ref: str, inst: ins.Instruction, stage: Stage) -> str:
        """The cache key of a ``--from`` source without mounting it."""
        if self.opts.named.directory(ref) is not None:
            return self.opts.named.directory_key(ref)
        src_stage = None if ref in self.opts.named else self.plan.resolve_from(ref, inst, stage.index)
        if src_stage is not None:
            return self.results[src_stage.index].key
        image = self._load_image(self.plan.build_args.expand_from(ref, inst), inst, flag=True,
                                 platform=self._stage_platform(stage), warn=False)
        return step_key("image", image.id)

    def _mounted(self, key: str, layers) -> str:
        with self._mount_lock:  # one mount per source, even when stages ask at once
            target = self._stage_mounts.get(key)
            if target is None:
                from .mounting import readonly  # noqa: PLC0415
                lowers = self._lowerdirs(layers)
                target = str(self.scratch("from") / "root")
                readonly(lowers, target)
                self._stage_mounts[key] = target
        return target


class _InFlight:
    """Layer steps of this process by cache key.  The same step of two executors (a
    ``--platform=$BUILDPLATFORM`` stage of a two-platform build) runs once: the second
    waits for the first and takes its record, even with ``--no-cache``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[threading.Lock, list]] = {}

    @contextlib.contextmanager
    def claim(self, key: str) -> Iterator[list]:
        with self._lock:
            lock, made = self._entries.setdefault(key, (threading.Lock(), [None]))
        with lock:
            yield made


_IN_FLIGHT = _InFlight()


class StoredImageResult:
    """The built image: its ID (config digest), config and manifest descriptor."""

    def __init__(self, id: str, config: dict[str, Any], descriptor: oci.Descriptor | None = None):
        self.id = id
        self.config = config
        self.descriptor = descriptor  # the manifest, with its platform


def _text(created_by) -> str:
    return created_by() if callable(created_by) else created_by

