"""``contrasting demo``: the whole study on the built-in world, end to end, on a CPU.

    contrasting demo                         # quick preset: ~15 min on an idle 2-core CPU, no GPU
    contrasting demo --full                  # longer pre-training (55 min) for clearer statistics
    contrasting demo --out runs/demo --workers 2 --budget-minutes 25

Steps (each resumable; a rerun reuses everything that is finished):

1. **World.** ``contrasting.data.builtin.build_world`` with the preset's ``WorldConfig`` (32 px, half the default
   sizes for the quick preset), cached by parameter hash under ``<data root>/`` (default
   ``$CONTRASTING_DATA/demo`` or ``~/.cache/contrasting/builtin/demo``: a folder of its own, so that the
   built-in tasks of ``contrasting eval`` keep finding the default world).
2. **Pre-training.** One ``contrasting pretrain`` subprocess per (method × corpus) — MoCo v2 and SwAV (SimCLR too
   in ``--full``) on every corpus of the preset — plus the supervised baseline (the labels of the preset's
   ``supervised_corpus``) and the random baseline (``--method random``: the untrained initialisation, exported
   like the others). Runs use the DALI CPU executor and bf16 autocast with channels-last tensors where the CPU
   has bf16 matrix instructions (3.1× the former torchvision + fp32 step, ``bench/bench_training.py``), log their
   loss and an online k-NN top-1 on the reference task, and export half-way backbones on the balanced /
   unbalanced corpora (the study's epoch series, extra encoders of the grid). A run has a fixed number of
   optimizer steps (the preset's, scaled by ``--budget-minutes``); ``--workers`` runs go in parallel with
   ``cores // workers`` threads each. Run directories are ``<out>/pretrain/<method>-<corpus>-<hash>``, the hash
   covering the run's configuration: a run with ``demo-done.json`` is reused, an interrupted one resumes from
   its last checkpoint (the trainer's ``train.resume``), a changed preset trains new ones.
3. **Grid.** A grid spec (``<out>/grid.yaml``: every encoder × every task of the preset, with the metadata the
   analysis needs: method, corpus, corpus size, epochs, the balanced/unbalanced pair ``shapes``/``shapes-lt``,
   the supervised/random roles, the reference task and each task's ``similar_corpus`` from the data registry)
   run by ``contrasting.eval.grid.pool.run_grid`` into ``<out>/grid.sqlite`` (finished cells are
   kept across runs). Cells run through ``demo_cell``: the protocol's ``run_cell`` at the preset's image size —
   image-level tasks on cached features, selecting among a few settings on the validation split; pixel-wise
   tasks with the U-Net head for 8 epochs on cached multi-scale features (``pixel_cache``).
4. **Report.** ``contrasting.eval.analysis.report.build_report`` into ``<out>/report/`` (HTML, Markdown,
   ``findings.json``, the long ``results.csv``, figures; ``figures/scatter_vs_reference.png`` is the main one, with
   every cell's gain over its task's trivial baseline and the cells at chance greyed); the findings, their effects
   with intervals and verdicts are printed, and ``<out>/demo.json`` records what ran, what was reused, the wall and
   CPU time of every step and the findings.

Presets (``PRESETS``): ``quick`` (the default), ``full`` (``--full``), ``tiny`` (the test suite's: two corpora,
two methods, two tasks, a handful of steps). ``--world-seed`` draws another world of the same design.

The world (``DEMO_SCENE``) and the reference task. As in the study, the reference is an object-classification
task whose labels the supervised encoder learned: ``shapes-shape`` (the dominant object's shape), with the
supervised baseline trained on the ``shapes`` corpus's labels. The scenes are object-centric — one large
dominant object among 0–3 smaller ones, on backgrounds at half contrast — because on the default world (objects
of 6–9 px on full-contrast textures at 32 px) every encoder, supervised included, stayed at chance on shape and
the self-supervised ones learned the background texture shared by both views instead.

What the quick demo shows (measured on the idle 2-core development machine from a fresh clone, world cached:
13:12 wall / 25:23 CPU; pre-training 8:32, grid 4:31): on every built-in task at least one encoder is above the
trivial baseline by more than 2 standard errors (cells above chance, of 12: shape 11, texture 6, digit 2, count 12,
camera shift 3, segmentation 12, foreground 12, depth 2), the supervised encoder is above it on every semantic task
and the random encoder is the best on none. Every self-supervised loss ends at 76–88 % of its no-learning value
(MoCo v2 82–88 % of ln 513, SwAV 76–85 % of ln 100). The supervised encoder dominates the reference (top-1 0.80
against ≤ 0.31 for the self-supervised ones: 250 steps on 1,500 images teach shape weakly; their k-NN top-1 is
0.18–0.27 against chance 0.17), and the encoders pre-trained on ``textures`` are the best self-supervised ones on
texture. Findings (world seed 0): supervised-domain-specific, similar-data-helps and unbalanced-as-good supported,
the other three inconclusive — what a dozen small encoders and one seed can tell apart; the report says why for
each. Another world (``--world-seed 1 --compare runs/demo``, 13:54 wall) kept four verdicts and changed two:
moco-pixel-swav-image supported (+0.039 [+0.008, +0.070]) and structural-gain-more refuted (−0.086
[−0.141, −0.031]); a verdict is about the encoders this world trained, and the intervals do not include the
variation between worlds — run several seeds before reading one of them as the study's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

EXECUTOR = "contrasting.eval.demo:demo_cell"
DONE = "demo-done.json"
SUMMARY = "demo.json"
BALANCED_PAIR = ("shapes", "shapes-lt")  # (balanced, unbalanced): the same scenes, the study's ImageNet / log-ImageNet
# The demo's world: object-centric scenes (one large dominant object among smaller distractors, as ImageNet's
# photographs), backgrounds at half contrast so that they do not outshine the objects both views share, and camera
# shifts of 20–35 % of the view. Measured on the quick world: a supervised encoder reaches 0.70 top-1 on shape-cls
# after 150 steps (the default scene, small objects on full-contrast textures: at chance for every encoder).
DEMO_SCENE = {"size": (0.07, 0.1), "dominant_size": 0.16, "objects": (1, 4), "background_contrast": 0.5,
              "shift": (0.2, 0.35)}
DEMO_HPARAMS = "demo"


# ------------------------------------------------------------------------------------------------ presets


@dataclass(frozen=True)
class Preset:
    """Everything a demo run does. ``minutes``: nominal wall time on an idle 2-core CPU (world generation,
    pre-training, grid and report), of which ``pretrain_minutes`` pre-training (the part ``--budget-minutes``
    scales). World: ``resolution`` px, every corpus and split scaled by ``scale``. Encoders: ResNet-18 with
    the small stem at ``width``; ``ssl_steps`` optimizer steps of ``batch_size`` images for every
    self-supervised run (the same for all methods, so that pairs compare equal epochs), ``supervised_steps``
    for the supervised baseline on ``supervised_corpus``. Grid: ``tasks`` (None: every built-in task),
    ``reference_task`` (the study's ImageNet: the image-level semantic task whose labels the supervised baseline
    learned),
    ``image_hparams`` / ``pixel_hparams`` (``Schedule`` settings selected among on the validation split;
    ``pixel_cache``: pixel heads train on frozen features computed once), ``seeds``; ``n_boot`` bootstrap
    replicates. ``scene``: ``SceneSpec`` fields of the world (``DEMO_SCENE``). ``series``: fractions of the
    self-supervised steps at which runs on ``series_corpora`` also export their backbone, evaluated as extra
    encoders (the study's epoch series); ``knn_every``: steps between online k-NN checks on the reference task
    (0: at the end only)."""

    name: str
    description: str
    minutes: float
    pretrain_minutes: float
    corpora: tuple[str, ...]
    methods: tuple[str, ...] = ("simclr", "mocov2", "swav")
    tasks: tuple[str, ...] | None = None
    resolution: int = 32
    scale: float = 0.5
    world_seed: int = 0
    gallery: int = 16
    width: int = 16
    batch_size: int = 128
    ssl_steps: int = 50
    supervised_steps: int = 50
    supervised_corpus: str = "shapes"
    reference_task: str = "shapes-shape"
    checkpoint_every: int = 10
    image_hparams: tuple = ({"lr": 1e-2, "epochs": 30}, {"lr": 1e-3, "epochs": 30})
    pixel_hparams: tuple = ({"lr": 3e-3, "epochs": 8, "batch_size": 32},)
    pixel_cache: bool = True
    seeds: tuple[int, ...] = (0,)
    n_boot: int = 2000
    scene: tuple = tuple(DEMO_SCENE.items())
    series: tuple[float, ...] = (0.5,)
    series_corpora: tuple[str, ...] = ("shapes", "shapes-lt")
    knn_every: int = 0

    def scaled(self, budget_minutes: float | None) -> Preset:
        """This preset with its pre-training steps scaled so that its nominal time is ``budget_minutes``
        (evaluation and world generation stay as they are); itself when None."""
        if budget_minutes is None:
            return self
        fixed = self.minutes - self.pretrain_minutes
        factor = max(0.05, (budget_minutes - fixed) / self.pretrain_minutes)
        return dataclasses.replace(self, minutes=budget_minutes, pretrain_minutes=self.pretrain_minutes * factor,
                                   ssl_steps=max(1, round(self.ssl_steps * factor)),
                                   supervised_steps=max(1, round(self.supervised_steps * factor)))


PRESETS: dict[str, Preset] = {
    # Budget (2 idle cores; DALI CPU augmentation and bf16; measured at 200 steps: pre-training 7:08 wall, grid
    # 4:05, 11:22 in all): 6 self-supervised runs of 250 steps (~330 img/s for MoCo v2, ~190 for SwAV, two at a
    # time), supervised 150 steps, world ~25 s, then 12 encoders (6 final, 4 at half their steps, supervised,
    # random) x 8 tasks: image-level cells ~2 s on cached features, pixel-wise ~8 s on cached multi-scale features.
    "quick": Preset(
        "quick", "MoCo v2 and SwAV x 3 corpora (+ their half-way checkpoints on two) + supervised + random, every "
        "built-in task, 32 px, half-size world, 1 seed",
        minutes=13.0, pretrain_minutes=7.0, corpora=("shapes", "shapes-lt", "textures"), methods=("mocov2", "swav"),
        ssl_steps=250, supervised_steps=150, checkpoint_every=50, knn_every=50),
    # --full at 600 steps and 12 pixel-head epochs cost 1:57 CPU (2026-12-04): over 58 min on two busy cores.
    # At 550 steps and 10 epochs: 55:04 wall, 1:45 CPU on the idle machine (bench/results/2026-12-04-full-idle.md).
    "full": Preset(
        "full", "SimCLR, MoCo v2 and SwAV x 4 corpora (+ checkpoints at 1/4 and 1/2 on two) + supervised + random, "
        "every built-in task, 32 px, full-size world, 1 seed",
        minutes=54.0, pretrain_minutes=31.0, corpora=("shapes", "shapes-lt", "textures", "digits"), scale=1.0,
        ssl_steps=550, supervised_steps=400, checkpoint_every=110, knn_every=110, series=(0.25, 0.5),
        image_hparams=({"lr": 1e-2, "epochs": 40}, {"lr": 3e-3, "epochs": 40}, {"lr": 1e-3, "epochs": 40}),
        pixel_hparams=({"lr": 3e-3, "epochs": 10, "batch_size": 32},)),
    "tiny": Preset(
        "tiny", "the test suite's: MoCo v2 and SwAV x shapes / shapes-lt + baselines, 2 tasks, two steps per run",
        minutes=1.5, pretrain_minutes=0.8, corpora=("shapes", "shapes-lt"), methods=("mocov2", "swav"),
        tasks=("shapes-shape", "shapes-foreground"),
        scale=0.04, gallery=0, width=8, batch_size=32, ssl_steps=2, supervised_steps=2, supervised_corpus="shapes",
        reference_task="shapes-shape", checkpoint_every=1, image_hparams=({"lr": 1e-2, "epochs": 2},),
        pixel_hparams=({"lr": 1e-3, "epochs": 1, "batch_size": 32},), n_boot=20, series=()),
}


def method_layer(method: str, preset: Preset, steps: int, corpus_size: int) -> dict:
    """The ``method``/``optim``/``data`` config sections of one run: the papers' methods with the settings that
    learn within a few hundred steps on ~1,500 images of 32 px (measured on the quick world; the k-NN top-1 on
    shape-cls and the loss relative to its no-learning value after 100 steps are in the demo's docstring):

    * every method: warm-up over 10 % of the steps; crops of 30–100 % of the image and no blur (SimCLR's CIFAR
      setting: at 32 px the study's 8–20 % crops lose the object and a σ = 2 blur erases it);
    * SimCLR: LARS at 4.8 (its large-batch peak rate: LARS steps are relative to each weight's norm);
    * MoCo v2: a queue of 512 keys, shorter than an epoch of batches (an epoch-long queue holds the query's own
      key from the previous epoch), momentum 0.99 (0.999 leaves the key encoder at its initialisation in a short
      run), SGD at 0.1 and τ = 0.2 (250 steps on shapes-lt: at lr 0.3 the loss fell to 77 % of ln 513 by step
      25, then climbed back to 91–97 %; at lr 0.1 it ends at 89 % with τ = 0.2, 92 % with 0.1, 94 % with 0.07);
    * SwAV: 100 prototypes for ~1,500 images, frozen for the first 20 % of the steps, ε = 0.01 (at ε = 0.05 and
      0.03 the codes of nearly identical initial embeddings stay uniform and the loss sits at ln K), LARS at 0.6,
      two 16 px crops of 15–40 % beside the two 32 px ones, colour distortion at half strength;
    * supervised: SGD at 0.05 on the corpus's labels.
    """
    from contrasting.encoders.methods import ShortRun, method_spec

    spec = method_spec(method)
    per_epoch = max(1, corpus_size // preset.batch_size)
    run = ShortRun(steps, preset.batch_size, preset.resolution, round(max(1.0, 0.1 * steps) / per_epoch, 4))
    layer = spec.short_run(run) if spec.short_run is not None else {}
    return {"method": {"name": method, **layer.get("method", {})}, **{k: v for k, v in layer.items() if k != "method"}}


def no_learning_loss(method: str, layer: Mapping, batch_size: int) -> float | None:
    """The loss of a run that learned nothing (the method's ``MethodSpec.chance_loss`` under the run's method
    options): ln of the candidates each row scores (SimCLR: the 2N − 1 other views; MoCo: the positive and the
    queue), ln K for SwAV (uniform predictions over K prototypes); None where there is none (supervised, random)."""
    from contrasting.encoders.methods import method_spec

    return method_spec(method).chance_loss(layer.get("method") or {}, batch_size)


def _role(method: str) -> str:
    from contrasting.encoders.methods import method_spec

    return method_spec(method).role


def _title(method: str) -> str:
    from contrasting.encoders.methods import method_spec

    return method_spec(method).title


# ------------------------------------------------------------------------------------------------- world


def default_data_root() -> Path:
    """``<the built-in data cache root>/demo``: beside the default world, in a folder of its own."""
    from contrasting.data.builtin import resolve_root

    return resolve_root(None) / "demo"


def world_config(preset: Preset):
    """The ``WorldConfig`` of a preset: its corpora (and the supervised one) and the tasks it evaluates."""
    from contrasting.data.builtin import SceneSpec, WorldConfig

    corpora = tuple(dict.fromkeys([*preset.corpora, preset.supervised_corpus]))
    scene = SceneSpec(resolution=preset.resolution, **dict(preset.scene))
    return WorldConfig(seed=preset.world_seed, scene=scene, scale=preset.scale, corpora=corpora,
                       tasks=tuple(world_task(t) for t in eval_tasks(preset)), gallery=preset.gallery)


def eval_tasks(preset: Preset) -> list[str]:
    """The evaluation task names of a preset (every built-in task of the catalog when it names none)."""
    from contrasting.eval.catalog.tasks import get_task, list_tasks

    if preset.tasks is None:
        return [t.name for t in list_tasks(builtin=True)]
    for name in preset.tasks:
        if not get_task(name).builtin:
            raise ValueError(f"task {name!r} is not a built-in task")
    return list(preset.tasks)


def world_task(task: str) -> str:
    """The data registry's name of a built-in evaluation task (``shapes-shape`` → ``shape-cls``)."""
    from contrasting.eval.catalog.tasks import get_task

    return get_task(task).layout.options["world_task"]


def similar_corpora(task: str) -> list[str]:
    """Corpora whose data the task's resembles (the data registry's ``similar_tasks``, read backwards)."""
    from contrasting.data.builtin import get_corpus, list_corpora

    wt = world_task(task)
    return [c for c in list_corpora() if wt in get_corpus(c).similar_tasks]


# ---------------------------------------------------------------------------------------------- pre-training


@dataclass(frozen=True)
class PretrainRun:
    """One pre-training run: the grid's encoder ``name``, ``method``, ``corpus`` (None for random), optimizer
    ``steps``, its config ``layer`` (what ``contrasting pretrain --config`` reads), its directory, the
    analysis metadata (``corpus_size``, pre-training ``epochs``) and the intermediate steps it exports
    (``series``: ``backbone-step<N>.pt``, extra encoders of the grid)."""

    name: str
    method: str
    corpus: str | None
    steps: int
    layer: dict
    dir: Path
    corpus_size: int | None = None
    epochs: float | None = None
    series: tuple[int, ...] = ()

    @property
    def done(self) -> bool:
        """Finished earlier (``demo-done.json`` and the exported backbone are there)."""
        return (self.dir / DONE).is_file() and (self.dir / "backbone.pt").is_file()

    @property
    def backbone(self) -> Path:
        """The exported backbone."""
        return self.dir / "backbone.pt"

    @property
    def cost(self) -> float:
        """Relative CPU cost, to start the longest runs first."""
        from contrasting.encoders.methods import method_spec

        return method_spec(self.method).step_cost * self.steps


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:10]


def plan_runs(preset: Preset, world, out: Path) -> list[PretrainRun]:
    """The pre-training runs of a preset on ``world``: random, supervised, then method × corpus. Every run uses
    the DALI CPU executor (one thread beside the run's torch thread) and ``precision: auto`` (bf16 and
    channels-last on CPUs with bf16 matrix instructions); self-supervised ones log an online k-NN top-1 on the
    reference task's train → test split."""
    base = {"backbone": {"name": "resnet18", "small_stem": True, "width": preset.width}}
    jobs = [("random", None, 0), ("supervised", preset.supervised_corpus, preset.supervised_steps)]
    jobs += [(m, c, preset.ssl_steps) for m in preset.methods for c in preset.corpora]
    reference = world.tasks[world_task(preset.reference_task)]
    runs = []
    for method, corpus, steps in jobs:
        layer = {**base, **method_layer(method, preset, max(steps, 1), _corpus_size(world, corpus))}
        size, series = None, ()
        if corpus is not None:
            size = world.corpora[corpus].size
            per_epoch = max(1, size // preset.batch_size)
            if _role(method) == "ssl" and corpus in preset.series_corpora:
                series = tuple(sorted({max(1, round(f * steps)) for f in preset.series} - {steps}))
            layer["data"] = {"corpus": str(world.corpora[corpus].root), "image_size": preset.resolution,
                             "executor": "dali", "workers": 1, **layer.get("data", {})}
            layer["train"] = {"epochs": math.ceil(steps / per_epoch), "max_steps": steps,
                              "batch_size": preset.batch_size, "seed": 0, "precision": "auto",
                              "checkpoint_every": preset.checkpoint_every, "keep_checkpoints": 1,
                              "log_every": max(1, min(5, steps // 10)), "progress": False, "resume": True,
                              "export_steps": list(series)}
            if _role(method) == "ssl":
                layer["train"].update(knn_train=str(reference["train"].root), knn_test=str(reference["test"].root),
                                      knn_every=preset.knn_every)
        else:
            layer["train"] = {"seed": 0, "progress": False}
        # The directory's hash covers the configuration, with paths named by world key and name (not location).
        ident = json.loads(json.dumps(layer))
        if corpus is not None:
            ident["data"]["corpus"] = f"builtin:{world.key}/{corpus}"
            for k in ("knn_train", "knn_test"):
                if k in ident["train"]:
                    ident["train"][k] = f"builtin:{world.key}/{preset.reference_task}/{k}"
        slug = method if corpus is None else f"{method}-{corpus}"
        run_dir = out / "pretrain" / f"{slug}-{_digest(ident)}"
        layer["train"]["output_dir"] = str(run_dir)
        name = _title(method) if corpus is None else f"{_title(method)}-{corpus}"
        epochs = None if size is None else round(steps * preset.batch_size / size, 3)
        runs.append(PretrainRun(name, method, corpus, steps, layer, run_dir, size, epochs, series))
    return runs


def run_curves(runs: list[PretrainRun], batch_size: int) -> dict[str, dict]:
    """Per finished self-supervised run, from its ``log.jsonl``: the loss curve (``steps``, ``loss``), its
    ``no_learning`` value (``no_learning_loss``), the last logged loss and the online k-NN checks
    (``knn``: [(step, top-1)]) — what the report's pre-training section shows."""
    out = {}
    for r in runs:
        if _role(r.method) != "ssl" or not (r.dir / "log.jsonl").is_file():
            continue
        steps, loss, knn = [], [], []
        for line in (r.dir / "log.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError):
                e = json.loads(line)
                if e.get("event") == "step" and e.get("loss") is not None:
                    steps.append(int(e["step"]))
                    loss.append(float(e["loss"]))
                elif e.get("event") == "knn":
                    knn.append((int(e["step"]), float(e["top1"])))
        if steps:
            out[r.name] = {"steps": steps, "loss": loss, "no_learning": no_learning_loss(r.method, r.layer, batch_size),
                           "final_loss": loss[-1], "knn": knn}
    return out


def _corpus_size(world, corpus: str | None) -> int:
    return 0 if corpus is None else world.corpora[corpus].size


def _child_env(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


@dataclass
class _Running:
    run: PretrainRun
    proc: subprocess.Popen
    started: float
    log_pos: int = 0
    step: int = 0
    total: int = 0
    loss: float | None = None
    ips: float | None = None
    resumed_from: int | None = None
    last_print: float = 0.0
    printed_step: int = -1


@dataclass
class PretrainSummary:
    """What the pre-training step did: runs reused, run now, failed (name → last lines of its log)."""

    reused: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_s: float = 0.0


def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _read_events(r: _Running) -> list[dict]:
    path = r.run.dir / "log.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(r.log_pos)
            data = f.read()
    except OSError:
        return []
    end = data.rfind(b"\n")
    if end < 0:
        return []
    r.log_pos += end + 1
    events = []
    for line in data[:end].splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return events


def _follow(r: _Running) -> None:
    """Update a running run's step, loss and throughput from the new lines of its ``log.jsonl``."""
    for e in _read_events(r):
        if e.get("event") == "step":
            r.step, r.loss, r.ips = int(e.get("step", r.step)), e.get("loss"), e.get("images_per_s")
        elif e.get("event") == "resume":
            r.step = r.resumed_from = int(e.get("step", 0))
        elif e.get("event") == "start":
            r.total = int(e.get("total_steps", r.total))


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:])


def run_pretraining(runs: list[PretrainRun], *, workers: int, threads: int, say: Callable[[str], None],
                    interval_s: float = 15.0, poll_s: float = 1.0) -> PretrainSummary:
    """Run every unfinished run as a ``contrasting pretrain`` subprocess, ``workers`` at a time (costliest
    first), printing progress from the runs' ``log.jsonl`` (a line per run every ``interval_s`` while it advances,
    every ``4 * interval_s`` when it does not; ``math.inf``: start and end lines only); finished ones are reused.
    A run that fails is reported (its log's tail) and left out; Ctrl-C stops the running ones (rerun to resume
    them)."""
    summary = PretrainSummary(reused=[r.name for r in runs if r.done])
    queue = sorted((r for r in runs if not r.done), key=lambda r: -r.cost)
    total = len(runs)
    for name in summary.reused:
        say(f"[pretrain] reusing finished run {name}")
    running: list[_Running] = []
    t0 = time.monotonic()

    def finished_count() -> int:
        return len(summary.reused) + len(summary.ran) + len(summary.failed)

    try:
        while queue or running:
            while queue and len(running) < workers:
                run = queue.pop(0)
                run.dir.mkdir(parents=True, exist_ok=True)
                cfg = run.dir / "demo-config.yaml"
                _write_yaml(cfg, run.layer)
                resume = (run.dir / "checkpoints").is_dir()
                with open(run.dir / "pretrain.log", "ab") as log:
                    proc = subprocess.Popen([sys.executable, "-m", "contrasting.encoders", "pretrain", "--config",
                                             str(cfg), "--no-progress"], stdout=log, stderr=subprocess.STDOUT,
                                            env=_child_env(threads), cwd=run.dir, start_new_session=True,
                                            preexec_fn=_die_with_parent)
                r = _Running(run, proc, time.monotonic(), total=run.steps)
                r.log_pos = (run.dir / "log.jsonl").stat().st_size if (run.dir / "log.jsonl").is_file() else 0
                running.append(r)
                say(f"[pretrain] started {run.name}: {run.method}, {run.steps} steps"
                    + (" (resuming from its last checkpoint)" if resume else "") + f"  [{run.dir}]")
            time.sleep(poll_s)
            now = time.monotonic()
            for r in list(running):
                code = r.proc.poll()  # before reading: the events of a finished run are then all there
                _follow(r)
                if code is None:
                    due = now - r.last_print >= (interval_s if r.step != r.printed_step else 4 * interval_s)
                    if r.step and due:
                        r.last_print, r.printed_step = now, r.step
                        loss = f", loss {r.loss:.3f}" if r.loss is not None else ""
                        ips = f", {r.ips:.0f} img/s" if r.ips else ""
                        say(f"[pretrain] {r.run.name}: step {r.step}/{r.total}{loss}{ips}, "
                            f"{_fmt_s(now - r.started)} elapsed")
                    continue
                running.remove(r)
                if code == 0 and r.run.backbone.is_file():
                    _write_json(r.run.dir / DONE, {"name": r.run.name, "method": r.run.method,
                                                   "corpus": r.run.corpus, "steps": r.run.steps,
                                                   "last_loss": r.loss, "wall_s": round(now - r.started, 1),
                                                   "finished": time.time()})
                    summary.ran.append(r.run.name)
                    loss = f", last loss {r.loss:.3f}" if r.loss is not None else ""
                    say(f"[pretrain] {finished_count()}/{total} done {r.run.name} ({r.run.steps} steps{loss}, "
                        f"{_fmt_s(now - r.started)})")
                else:
                    summary.failed[r.run.name] = _tail(r.run.dir / "pretrain.log")
                    say(f"[pretrain] {finished_count()}/{total} FAILED {r.run.name} (exit code {code}); "
                        f"log: {r.run.dir / 'pretrain.log'}\n{summary.failed[r.run.name]}")
    except BaseException:
        for r in running:
            _stop(r.proc)
        raise
    summary.wall_s = time.monotonic() - t0
    return summary


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the demo dies (Linux ``PR_SET_PDEATHSIG``; elsewhere a no-op),
    so that a killed demo leaves no run writing into a directory the next demo resumes."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop a pre-training subprocess we started (its own session: its loader workers go with it)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _write_yaml(path: Path, data: Mapping) -> None:
    import yaml

    from contrasting.data.atomic import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False))


def _write_json(path: Path, data) -> None:
    from contrasting.data.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1, default=str))


# ------------------------------------------------------------------------------------------------------ grid


def grid_spec(preset: Preset, runs: list[PretrainRun], world, out: Path, workers: int) -> dict:
    """The grid spec (the YAML layout of ``contrasting.eval.grid.spec``) of the finished ``runs`` × the
    preset's tasks, with the analysis metadata."""
    encoders = []
    balanced, unbalanced = BALANCED_PAIR
    for r in runs:
        role = _role(r.method)
        if role == "random":
            encoders.append({"name": r.name, "kind": "checkpoint", "path": str(r.backbone), "arch": "resnet18",
                             "method": r.method})
            continue
        entry = {"name": r.name, "kind": "supervised" if role == "supervised" else "run",
                 "path": str(r.backbone if role == "supervised" else r.dir), "arch": "resnet18",
                 "method": r.method, "corpus": r.corpus, "corpus_size": r.corpus_size, "epochs": r.epochs}
        if role == "ssl" and r.corpus in BALANCED_PAIR:
            entry.update(balanced=r.corpus == balanced, pair=balanced)
        encoders.append(entry)
        for step in r.series:  # the run's epoch series: the same run, exported part-way
            epochs = round(step * preset.batch_size / r.corpus_size, 3)
            extra = {**entry, "name": f"{r.name}@{step}", "kind": "checkpoint",
                     "path": str(r.dir / f"backbone-step{step:06d}.pt"), "epochs": epochs}
            if "pair" in extra:
                extra["pair"] = f"{balanced}@{step}"
            encoders.append(extra)
    tasks = []
    for t in eval_tasks(preset):
        entry = {"name": t, "similar_corpus": similar_corpora(t)}
        if t == preset.reference_task:
            entry["reference"] = True
        tasks.append(entry)
    hparams = {"image_size": preset.resolution, "image": [dict(h) for h in preset.image_hparams],
               "pixel": [dict(h) for h in preset.pixel_hparams], "pixel_cache": preset.pixel_cache}
    return {
        "name": f"demo-{preset.name}",
        "store": str(out / "grid.sqlite"),
        "data_root": str(world.path),
        "cache_dir": str(out / "features"),
        "encoders": encoders,
        "tasks": tasks,
        "hparams": {DEMO_HPARAMS: hparams},
        "seeds": list(preset.seeds),
        "runner": {"workers": workers, "device": "cpu", "timeout_s": 3600.0, "executor": EXECUTOR},
        "analysis": {"reference_task": preset.reference_task},
    }


def _check_hparams(values: Mapping) -> None:
    from contrasting.eval.catalog.tasks import Schedule

    unknown = set(values) - {"image_size", "image", "pixel", "pixel_cache"}
    if unknown:
        raise ValueError(f"demo hparams: unknown keys {sorted(unknown)} (expected image_size, image, pixel, "
                         "pixel_cache)")
    for level in ("image", "pixel"):
        for setting in values.get(level) or []:
            bad = set(setting) - set(Schedule.__dataclass_fields__)
            if bad:
                raise ValueError(f"demo hparams.{level}: unknown Schedule fields {sorted(bad)}")


def demo_cell(request, progress):
    """The demo grid's executor (``runner.executor``): ``run_cell`` on the request's encoder and task at
    ``hparams["image_size"]``, with the settings of the task's level (``hparams["image"]`` or
    ``hparams["pixel"]``, a list of ``Schedule`` field mappings selected among on the validation split)."""
    from contrasting.eval.catalog.tasks import get_task
    from contrasting.eval.cell.protocol import run_cell  # torch is imported by the grid's workers only

    values = dict(request.hparams)
    _check_hparams(values)
    settings = values.get("pixel" if get_task(request.task).pixelwise else "image") or None
    progress(0.0, "running")
    return run_cell(request.encoder_spec, request.task, hparams=settings, seed=request.seed, device=request.device,
                    data_root=request.data_root, cache_dir=request.cache_dir, progress=False, arch=request.arch,
                    image_size=values.get("image_size"), pixel_cache=bool(values.get("pixel_cache", False)))


# ---------------------------------------------------------------------------------------------------- driver


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and of every child it has reaped."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class _Clock:
    """Wall and CPU time per step."""

    def __init__(self):
        self.steps: dict[str, dict] = {}
        self.t0, self.c0 = time.monotonic(), _cpu_s()

    @contextlib.contextmanager
    def step(self, name: str):
        t, c = time.monotonic(), _cpu_s()
        try:
            yield
        finally:
            self.steps[name] = {"wall_s": round(time.monotonic() - t, 1), "cpu_s": round(_cpu_s() - c, 1)}

    def total(self) -> dict:
        return {"wall_s": round(time.monotonic() - self.t0, 1), "cpu_s": round(_cpu_s() - self.c0, 1)}


def _parser() -> argparse.ArgumentParser:
    from contrasting.encoders.cli.args import (
        OneLineParser,
        existing_dir,
        nonnegative_int,
        output_dir,
        positive_float,
        positive_int,
    )

    p = OneLineParser(
        prog="contrasting demo",
        description="Generate the built-in world, pre-train SimCLR, MoCo v2 and SwAV on its corpora plus the "
                    "supervised and random baselines, evaluate every encoder on every built-in task and write the "
                    "report. Everything is resumable: a rerun reuses what is finished.")
    p.add_argument("--out", type=output_dir, default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                   help="quick (default, ~15 min on 2 CPU cores), full (~55 min) or tiny (the tests')")
    p.add_argument("--full", action="store_true", help="the full preset: longer pre-training, clearer statistics")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="parallel pre-training runs and grid workers (default: min(2, CPU cores))")
    p.add_argument("--budget-minutes", type=positive_float, default=None,
                   help="scale the pre-training steps so that the nominal time (idle 2-core CPU) is this")
    p.add_argument("--methods", type=_method_list, default=None, metavar="M1,M2,...",
                   help="the self-supervised methods to pre-train (default: the preset's); any registered one "
                        "(contrasting pretrain --help lists them), e.g. mocov2,swav,byol,pirl: each adds one run per "
                        "corpus beyond the preset's time")
    p.add_argument("--world-seed", type=nonnegative_int, default=None,
                   help="seed of the built-in world (default: the preset's, 0); another seed draws other scenes")
    p.add_argument("--compare", type=existing_dir, default=None,
                   help="another demo's output folder (e.g. on another --world-seed): the report sets its verdicts "
                        "beside this one's and names those that changed")
    p.add_argument("--data-root", type=output_dir, default=None,
                   help="where the demo's world is cached (default: $CONTRASTING_DATA/demo or "
                        "~/.cache/contrasting/builtin/demo)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars or per-step lines: only each run's start and end and the step summaries")
    return p


def _method_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct comma-separated method names, got {text!r}")
    return names


def checked_methods(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` when each is a registered self-supervised method with demo settings (``MethodSpec.short_run``);
    else ValueError naming ``--methods`` and the valid names."""
    from contrasting.encoders.methods import method_spec, methods_with_role

    valid = [n for n in methods_with_role("ssl") if method_spec(n).short_run is not None]
    bad = [n for n in names if n not in valid]
    if bad:
        raise ValueError(f"--methods: {', '.join(map(repr, bad))} not a self-supervised method with demo settings "
                         f"(valid: {', '.join(valid)})")
    return names


def demo_main(argv: list[str] | None = None) -> int:
    """Run the whole study on the built-in world: pre-train, evaluate, report (resumable).

    The ``contrasting demo`` subcommand (entry point ``contrasting.commands``: a callable taking ``argv`` and
    returning the exit status): 0 when the report was written from a complete grid, 1 when runs or cells
    failed (the report then covers what finished), 2 on bad arguments (one line on stderr, argparse's
    ``SystemExit(2)`` for a bad option, before anything is written), 130 when interrupted."""
    args = _parser().parse_args(argv)
    preset = PRESETS["full" if args.full else args.preset]
    if args.budget_minutes is not None:
        preset = preset.scaled(args.budget_minutes)
    cores = os.cpu_count() or 1
    workers = args.workers or min(2, cores)
    if args.world_seed is not None:
        preset = dataclasses.replace(preset, world_seed=args.world_seed)
    if args.methods is not None:
        try:
            preset = dataclasses.replace(preset, methods=checked_methods(args.methods))
        except ValueError as error:
            print(f"contrasting demo: error: {error}", file=sys.stderr)
            return 2
    if preset.reference_task not in eval_tasks(preset):
        print(f"contrasting demo: error: preset {preset.name!r}: its reference task {preset.reference_task!r} is not "
              "among its tasks", file=sys.stderr)
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    lock = open(out / ".demo.lock", "a")  # held for the whole run, closed below
    try:
        try:
            import fcntl  # POSIX only; elsewhere two demos into one folder are not prevented

            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:
            pass
        except OSError:
            print(f"contrasting demo: error: another demo is running into {out}", file=sys.stderr)
            return 2
        return _demo(preset, out, workers, max(1, cores // workers), args)
    except KeyboardInterrupt:
        print("\ncontrasting demo: interrupted; finished runs and cells are kept, rerun the same command to resume",
              file=sys.stderr)
        return 130
    finally:
        lock.close()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def encoder_count(preset: Preset) -> tuple[int, int]:
    """(encoders in the preset's grid, of which intermediate exports): the random and supervised baselines, one
    per method × corpus, and one per method × ``series`` fraction × corpus in ``series_corpora``."""
    series = len(preset.methods) * len(preset.series) * sum(c in preset.series_corpora for c in preset.corpora)
    return 2 + len(preset.methods) * len(preset.corpora) + series, series


def _demo(preset: Preset, out: Path, workers: int, threads: int, args) -> int:
    from contrasting.data.builtin import build_world

    clock = _Clock()
    tasks = eval_tasks(preset)
    n_enc, n_series = encoder_count(preset)
    series = f", + {n_series} exported at {'/'.join(f'{f:g}' for f in preset.series)} of their steps" \
        if n_series else ""
    _say(f"contrasting demo, preset {preset.name!r}: {preset.description}")
    _say(f"  {n_enc} encoders ({len(preset.methods)} methods x {len(preset.corpora)} corpora at {preset.ssl_steps} "
         f"steps of {preset.batch_size}{series}, supervised {preset.supervised_steps} steps, random) x "
         f"{len(tasks)} tasks x "
         f"{len(preset.seeds)} seed(s) = {n_enc * len(tasks) * len(preset.seeds)} cells; nominal "
         f"{preset.minutes:g} min on an idle 2-core CPU; {workers} worker(s) x {threads} thread(s); output {out}")

    root = Path(args.data_root).expanduser() if args.data_root else default_data_root()
    _say(f"[1/4 world] building or reusing the built-in world under {root}")
    with clock.step("world"):
        world = build_world(root, world_config(preset), progress=not args.no_progress, workers=min(workers, 4))
    _say(f"[1/4 world] {world.path} ({clock.steps['world']['wall_s']:.0f} s)")

    runs = plan_runs(preset, world, out)
    _say(f"[2/4 pretrain] {len(runs)} runs under {out / 'pretrain'}")
    with clock.step("pretrain"):
        pre = run_pretraining(runs, workers=workers, threads=threads, say=_say,
                              interval_s=math.inf if args.no_progress else 15.0)
    pre.wall_s, pre.cpu_s = clock.steps["pretrain"]["wall_s"], clock.steps["pretrain"]["cpu_s"]
    _say(f"[2/4 pretrain] {len(pre.ran)} ran, {len(pre.reused)} reused, {len(pre.failed)} failed in "
         f"{_fmt_s(pre.wall_s)} (CPU {_fmt_s(pre.cpu_s)})")
    finished = [r for r in runs if r.done]
    if not any(_role(r.method) == "ssl" for r in finished):
        _say("contrasting demo: no self-supervised run finished; nothing to evaluate")
        _save_summary(out, preset, world, runs, pre, None, None, clock)
        return 1

    from contrasting.eval.grid.pool import run_grid
    from contrasting.eval.grid.spec import load_spec

    spec_dict = grid_spec(preset, finished, world, out, workers)
    _write_yaml(out / "grid.yaml", spec_dict)
    spec = load_spec(out / "grid.yaml")
    _say(f"[3/4 grid] {len(spec.encoders)} encoders x {len(spec.tasks)} tasks x {len(spec.seeds)} seed(s) into "
         f"{spec.store_path} (spec {out / 'grid.yaml'})")
    with clock.step("grid"):
        grid = run_grid(spec, workers=workers, device="cpu", progress=False if args.no_progress else "auto")
    _say(f"[3/4 grid] {grid.done}/{grid.total} cells done ({grid.ran} ran now, {grid.failed} failed) in "
         f"{_fmt_s(clock.steps['grid']['wall_s'])} (CPU {_fmt_s(clock.steps['grid']['cpu_s'])})")
    for label, err in grid.failures[:10]:
        _say(f"  failed: {label}: {err}")

    from contrasting.eval.analysis.report import MAIN_FIGURE, build_report

    _say(f"[4/4 report] analysing the grid ({preset.n_boot} bootstrap replicates per finding)")
    with clock.step("report"):
        files = build_report(spec.store_path, out / "report", reference=spec.analysis.reference_task,
                             spec_hash=grid.spec_hash, title=f"contrasting demo ({preset.name} preset)",
                             replicates=preset.n_boot, runs=run_curves(finished, preset.batch_size),
                             compare=None if args.compare is None else Path(args.compare) / "report")
    total = clock.total()
    figure = files.folder / "figures" / MAIN_FIGURE
    print(f"report: {files.html}")
    print(f"        {files.markdown}")
    if figure.is_file():
        print(f"main figure: {figure}")
    print(f"findings ({preset.name} preset; effects in gain units with their intervals; {files.findings_json}):")
    for f in files.findings:
        effect = "" if f.effect is None else f"effect {f.effect:+.3f} [{f.ci_low:+.3f}, {f.ci_high:+.3f}], "
        print(f"  {f.number}. {f.verdict:<13} {f.claim}")
        print(f"     {effect}{'; '.join(f.reasons)}")
    print(f"time: {_fmt_s(total['wall_s'])} wall, {_fmt_s(total['cpu_s'])} CPU "
          + "; ".join(f"{k} {_fmt_s(v['wall_s'])}/{_fmt_s(v['cpu_s'])}" for k, v in clock.steps.items())
          + " (wall/CPU)")
    _save_summary(out, preset, world, runs, pre, grid, files, clock)
    return 0 if not pre.failed and grid.complete else 1


def _save_summary(out: Path, preset: Preset, world, runs, pre, grid, files, clock: _Clock) -> None:
    data = {
        "preset": dataclasses.asdict(preset),
        "world": {"path": str(world.path), "key": world.key},
        "pretrain": {"runs": {r.name: str(r.dir) for r in runs}, "ran": pre.ran, "reused": pre.reused,
                     "failed": sorted(pre.failed)},
        "grid": None if grid is None else {"store": grid.store, "spec_hash": grid.spec_hash, "total": grid.total,
                                           "done": grid.done, "failed": grid.failed, "ran": grid.ran},
        "report": None if files is None else {"html": str(files.html), "markdown": str(files.markdown),
                                              "figures": {k: str(v) for k, v in files.figures.items()}},
        "findings": [] if files is None else [f.to_json() for f in files.findings],
        "timings": {**clock.steps, "total": clock.total()},
        "cpu_count": os.cpu_count(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "finished": time.time(),
    }
    _write_json(out / SUMMARY, data)


if __name__ == "__main__":
    sys.exit(demo_main())
