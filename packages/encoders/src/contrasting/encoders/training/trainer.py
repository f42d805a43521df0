"""Pre-training through DeepSpeed: one loop for one CPU process, one GPU, or many GPUs and nodes.

    result = pretrain(resolve_config({"method": {"name": "mocov2"}, "train": {"epochs": 200}}))

Per optimizer step s (``grad_accum`` micro-batches):

    method.step = s;  lr(s) → every parameter group;  method.before_step(set_param)      (once per step)
    for each micro-batch:  loss = engine(views, labels);  check finite on every rank;
                           engine.backward(loss);  engine.step()
    every ``checkpoint_every`` steps and at each epoch end: checkpoint (``checkpoints``)

* Processes: ``setup_distributed`` makes a plain ``python``/``contrasting pretrain`` call rank 0 of 1
  (CPU accelerator and gloo without a GPU); under ``deepspeed --hostfile ... $(which contrasting) pretrain``
  or ``torchrun`` the same command runs data-parallel, the methods gathering negatives over all ranks.
* DeepSpeed config: generated from ``train`` (micro batch, accumulation, ZeRO stage, clipping, precision as a
  ``torch_autocast`` block, so weights, BatchNorm and optimizer stay fp32), then the ``deepspeed`` section
  of the run config merged over it.
* Resume: with ``train.resume`` and a committed checkpoint in ``<output_dir>/checkpoints``, the module (momentum
  encoder and queues are buffers), optimizer, step counter and every rank's RNG are restored; the data
  continues at the next batch of the same epoch order and the schedule at the restored step. A checkpoint from
  a different method, backbone, optimizer, batch or process count is refused (``CheckpointError``), and so is
  an output directory with checkpoints when ``train.resume`` is false (nothing is overwritten).
* Faults: a NaN/Inf loss on any rank stops every rank before the backward with ``NonFiniteLossError`` (step,
  epoch, last good checkpoint); no checkpoint is written after it, so the last good one stays ``latest``.
  Parameters are checked finite before each checkpoint.
* Output: ``config.yaml`` (the fully resolved config), ``log.jsonl`` (one JSON object per event: start, resume,
  step every ``log_every``, checkpoint, knn (the online k-NN monitor of ``train.knn_*``), end, error), the other
  loggers of ``train.loggers`` (``metrics.csv``, ``tensorboard/``, W&B: ``loggers``), ``checkpoints/``, and at
  the end ``backbone.pt`` + ``backbone.pt.json``
  (``layouts.export_backbone``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import yaml

from contrasting.data.atomic import atomic_write_bytes

from ..backbones import BACKBONES, build_backbone
from ..config import RunConfig, merge
from ..distributed import DistInfo, setup_distributed
from ..methods import METHODS, Method, build_method, method_spec
from ..provenance import environment
from ..weights.checkpoints import CheckpointError, CheckpointManager
from ..weights.layouts import export_backbone
from .data import as_batch_source, build_source, check_corpus
from .loggers import open_loggers
from .optim import apply_schedule, build_optimizer, check_zero_stage, make_schedule
from .precision import resolve_channels_last, resolve_precision


class NonFiniteLossError(RuntimeError):
    """The loss (or, at a checkpoint, a parameter) became NaN or Inf; the run stopped without checkpointing it.
    ``value``, ``step`` and ``micro`` (the micro-batch within the step) are set for a loss."""

    def __init__(self, message: str, *, value: float | None = None, step: int | None = None, micro: int = 0):
        super().__init__(message)
        self.value, self.step, self.micro = value, step, micro


@dataclass
class PretrainResult:
    """What a finished run produced: its directory, optimizer steps done, last logged loss, the exported
    backbone (rank 0; None elsewhere), the checkpoint it resumed from (None for a fresh run) and the trained
    method module (on this rank's device)."""

    output_dir: Path
    steps: int
    final_loss: float | None
    export_path: Path | None
    resumed_from: str | None
    method: Method | None = None


def deepspeed_config(config: RunConfig, world_size: int, device: torch.device) -> dict:
    """The DeepSpeed config of a run: generated from ``config.train`` with ``config.deepspeed`` merged over it."""
    train = config.train
    generated = {
        "train_micro_batch_size_per_gpu": train.batch_size,
        "gradient_accumulation_steps": train.grad_accum,
        "train_batch_size": train.batch_size * train.grad_accum * world_size,
        "zero_optimization": {"stage": config.zero_stage_for(world_size)},
        "zero_allow_untested_optimizer": True,  # SGD / LARS under ZeRO (DeepSpeed tests Adam-type ones only)
        "gradient_clipping": float(train.grad_clip),
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    precision = resolve_precision(train.precision, device)
    if precision != "fp32":
        generated["torch_autocast"] = {"enabled": True, "dtype": "bfloat16" if precision == "bf16" else "float16"}
    merged = merge(generated, config.deepspeed)
    check_zero_stage(config.optimizer, int(merged.get("zero_optimization", {}).get("stage", 0)))
    return merged


def fingerprint(config: RunConfig, world_size: int) -> dict:
    """What a checkpoint must share with the run resuming it."""
    return {"method": config.method, "method_options": config.method_options, "backbone": config.backbone,
            "backbone_options": config.backbone_options, "optimizer": config.optimizer,
            "batch_size": config.train.batch_size, "grad_accum": config.train.grad_accum,
            "world_size": world_size, "zero_stage": config.zero_stage_for(world_size), "corpus": config.data.corpus}


# Options compared as the configs they resolve to: options key → (the key naming the entry, its registry).
_RESOLVED_OPTIONS = {"method_options": ("method", METHODS), "backbone_options": ("backbone", BACKBONES)}


def _same_config(registry, name, a: dict | None, b: dict) -> bool:
    """Whether options ``a`` and ``b`` of the registry entry ``name`` resolve to the same config (defaults filled)."""
    if name not in registry:
        return False
    entry = registry.get(name)
    try:
        return dataclasses.asdict(entry.config(**(a or {}))) == dataclasses.asdict(entry.config(**b))
    except (TypeError, ValueError):  # options the entry no longer accepts: not the same run
        return False


def fingerprint_differences(theirs: dict, ours: dict) -> list[str]:
    """The keys in which two fingerprints name different runs. Method and backbone options compare as the configs
    they resolve to (defaults filled in), so a run resumed with its own saved config.yaml, which spells out every
    default, is the same run as the one started from a sparse config."""
    def same(key: str) -> bool:
        if theirs.get(key) == ours[key]:
            return True
        if key not in _RESOLVED_OPTIONS:
            return False
        name_key, registry = _RESOLVED_OPTIONS[key]
        return theirs.get(name_key) == ours[name_key] and _same_config(registry, ours[name_key], theirs.get(key),
                                                                       ours[key])

    return sorted(key for key in ours if not same(key))


def skip_single_rank_allreduce(engine, world_size: int) -> None:
    """Without ZeRO and with one process, turn off DeepSpeed's gradient all-reduce (averaging over one rank).

    DeepSpeed 0.19.8 (runtime/engine.py, ``allreduce_gradients`` → ``buffered_allreduce_fallback``) flattens,
    all-reduces and copies back every gradient even when the data-parallel group has one rank: ~3 % of a small
    CPU step. ``enable_backward_allreduce`` is the engine's own switch (its pipeline engine clears it). Only
    stage 0: ZeRO's optimizers collect their gradients in that reduction. Remove when DeepSpeed skips it for one
    rank (checked 2026-11).
    """
    if world_size == 1 and engine.zero_optimization_stage() == 0:
        engine.enable_backward_allreduce = False


def set_param_everywhere(param: torch.nn.Parameter, value: torch.Tensor) -> None:
    """``Method.before_step``'s setter under DeepSpeed: ``value`` into ``param`` and into ZeRO's fp32 master copy."""
    from deepspeed.utils import safe_set_full_fp32_param  # after setup_distributed

    with torch.no_grad():
        param.copy_(value)
    safe_set_full_fp32_param(param, value)  # the optimizer's fp32 master copy under ZeRO; no-op otherwise


def global_loss(loss: torch.Tensor, info: DistInfo) -> float:
    """Mean loss over ranks, NaN when any rank's loss is not finite (one all-reduce, one device read)."""
    value = loss.detach().float().reshape(1)
    bad = (~torch.isfinite(value)).float()
    packed = torch.cat([torch.where(bad > 0, torch.zeros_like(value), value), bad])
    if info.world_size > 1:
        dist.all_reduce(packed)
    total, nonfinite = packed.tolist()
    return math.nan if nonfinite else total / info.world_size


def _params_finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


class RunLog:
    """The run's loggers (``train.loggers``: ``loggers.open_loggers``; log.jsonl always), written by rank 0 only."""

    def __init__(self, path: Path, enabled: bool, loggers=("jsonl",), config: dict | None = None):
        self.path, self.enabled = path, enabled
        self.config = config  # the resolved run config, recorded with the start event
        self.loggers = open_loggers(loggers, path.parent, config) if enabled else []

    def event(self, event: str, **fields) -> None:
        """Send ``{"event": event, "time": ..., **fields}`` to every logger (metric events become CSV rows and
        TensorBoard / W&B scalars)."""
        if not self.enabled:
            return
        record = {"event": event, "time": time.time(), **fields}
        for logger in self.loggers:
            logger.log(record)

    def close(self) -> None:
        """Flush and close every logger."""
        for logger in self.loggers:
            logger.close()


def _not_untested_optimizer_warning(record: logging.LogRecord) -> bool:
    # DeepSpeed warns on every engine that ZeRO runs an "untested optimizer" (SGD, LARS): we opt in knowingly
    # with zero_allow_untested_optimizer (deepspeed/runtime/engine.py, _do_optimizer_sanity_check, 0.19.8).
    # Remove when DeepSpeed no longer warns once the flag is set (checked 2026-11).
    return "untested optimizer" not in record.getMessage()


def _quiet_deepspeed() -> None:
    logger = logging.getLogger("DeepSpeed")
    logger.setLevel(logging.WARNING)
    if _not_untested_optimizer_warning not in logger.filters:
        logger.addFilter(_not_untested_optimizer_warning)


def train_step(engine, method: Method, optimizer, schedule, step: int, micro_batches, info: DistInfo,
               layout: torch.memory_format = torch.contiguous_format) -> tuple[float, float]:
    """One optimizer step ``s = step`` over the next ``grad_accum`` micro-batches of the iterator ``micro_batches``
    of (views, labels) or (views, labels, indices): ``method.step = s``; lr(s) → every group of ``optimizer`` (read
    now: loading a checkpoint replaces the groups); ``method.before_step``; then per micro-batch
    ``loss = engine(views, labels)`` (``engine(views, labels, indices=indices)`` for the latter), its mean over
    ranks checked finite, ``engine.backward(loss)``, ``engine.step()``. Returns (mean loss over micro-batches and
    ranks, lr).

    Raises ``NonFiniteLossError`` (with ``value``, ``step``, ``micro``) before the backward of a NaN/Inf loss, and
    ``ValueError`` when the iterator ends before ``grad_accum`` micro-batches. ``pretrain``, the benchmarks and
    the tests take this one step."""
    method.step = step
    lr = apply_schedule(optimizer.param_groups, schedule, step)
    method.before_step(set_param_everywhere)
    total, accum = 0.0, engine.gradient_accumulation_steps()
    for micro in range(accum):
        try:
            views, labels, *indices = next(micro_batches)
        except StopIteration:
            raise ValueError(f"micro_batches: ended after {micro} of {accum} micro-batches of step {step}") from None
        views = [v.to(info.device, non_blocking=True, memory_format=layout) for v in views]
        labels = labels.to(info.device, non_blocking=True) if labels is not None else None
        extra = {"indices": indices[0].to(info.device, non_blocking=True)} if indices else {}
        loss = engine(views, labels, **extra)
        value = global_loss(loss, info)
        if not math.isfinite(value):
            raise NonFiniteLossError(f"loss is {value} at step {step} (micro-batch {micro}) on at least one rank",
                                     value=value, step=step, micro=micro)
        engine.backward(loss)
        engine.step()
        total += value
    return total / accum, lr


@dataclass
class _Plan:
    """A trainable run once DeepSpeed holds it: the engine, its optimizer's groups, the schedule and the counts."""

    engine: object
    optimizer: object
    schedule: object
    precision: str
    layout: torch.memory_format
    micro_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    global_batch: int


def _build(config: RunConfig, info: DistInfo, data) -> tuple[Method, object]:
    """The method module (initialised identically on every rank) and this rank's batch source (None for a method
    that is not trained)."""
    spec = method_spec(config.method)
    torch.manual_seed(config.train.seed)
    backbone = build_backbone(config.backbone, config.backbone_options)
    source = None
    if spec.trainable and data is None:
        check_corpus(config.data.corpus)
        source = build_source(config.data, config.method, batch_size=config.train.batch_size, seed=config.train.seed,
                              rank=info.rank, world_size=info.world_size, device=info.device)
    elif spec.trainable:
        source = as_batch_source(data)
    options = dict(config.method_options)
    if spec.corpus_classes and options.get("num_classes") is None and source is not None:
        options["num_classes"] = source.num_classes
    if spec.corpus_indices and options.get("corpus_size") is None and source is not None:
        options["corpus_size"] = getattr(source, "corpus_size", None)
    return build_method(config.method, backbone, options, process_group=info.process_group), source


def _plan(config: RunConfig, info: DistInfo, method: Method, source) -> _Plan:
    """Optimizer, schedule and DeepSpeed engine of a trainable run; the module in channels-last where it pays."""
    import deepspeed  # after setup_distributed settled the accelerator

    train = config.train
    precision = resolve_precision(train.precision, info.device)
    layout = torch.channels_last if resolve_channels_last(train.channels_last, precision) else torch.contiguous_format
    optimizer, optimizer_config = build_optimizer(config.optimizer, method, config.optimizer_options,
                                                  method.group_options())
    micro_per_epoch = (len(source) // train.grad_accum) * train.grad_accum
    if micro_per_epoch == 0:
        raise ValueError(f"data: {len(source)} batches per epoch on this rank, fewer than grad_accum="
                         f"{train.grad_accum}; use more data, a smaller batch or less accumulation")
    steps_per_epoch = micro_per_epoch // train.grad_accum
    total_steps = train.epochs * steps_per_epoch
    if train.max_steps is not None:
        total_steps = min(total_steps, train.max_steps)
    global_batch = train.batch_size * train.grad_accum * info.world_size
    schedule = make_schedule(optimizer_config, global_batch=global_batch, steps_per_epoch=steps_per_epoch,
                             total_steps=total_steps)
    engine, ds_optimizer, _, _ = deepspeed.initialize(model=method, optimizer=optimizer,
                                                      config=deepspeed_config(config, info.world_size, info.device))
    skip_single_rank_allreduce(engine, info.world_size)
    if layout == torch.channels_last and engine.zero_optimization_stage() == 0:
        # After initialize: DeepSpeed's parameter broadcast views every weight as bytes, which a channels-last
        # conv weight refuses (deepspeed/runtime/engine.py _broadcast_model, 0.19.8). In place, so the optimizer
        # keeps its parameters; ZeRO's flat buffers would not survive it, so with ZeRO only inputs go NHWC.
        method.to(memory_format=torch.channels_last)
    method.total_steps = total_steps
    return _Plan(engine, ds_optimizer, schedule, precision, layout, micro_per_epoch, steps_per_epoch,
                 total_steps, global_batch)


def _resume_or_start(config: RunConfig, info: DistInfo, plan: _Plan, method: Method, checkpoints: CheckpointManager,
                     log: RunLog) -> str | None:
    """Restore the latest checkpoint of this run (refusing another run's, or any when ``train.resume`` is false),
    or start fresh; returns the tag resumed from (None: fresh)."""
    train, out = config.train, Path(config.train.output_dir)
    tag = checkpoints.latest_tag()
    if tag is not None and not train.resume:
        raise CheckpointError(f"{out / 'checkpoints'} already holds checkpoints (latest {tag}) and train.resume is "
                              "false; use another output_dir, or resume")
    if tag is not None:
        theirs = checkpoints.record(tag).get("meta", {}).get("fingerprint", {})
        ours = json.loads(json.dumps(fingerprint(config, info.world_size)))
        diff = fingerprint_differences(theirs, ours)
        if diff:  # checked before DeepSpeed reads tensors of another shape
            raise CheckpointError(f"{out / 'checkpoints' / tag} belongs to a different run (differs in "
                                  f"{', '.join(diff)}); use another output_dir")
        checkpoints.load(plan.engine, tag)
        log.event("resume", step=plan.engine.global_steps, tag=tag)
        return tag
    method.on_train_start()
    torch.manual_seed(train.seed * 1_000_003 + info.rank + 1)  # per-rank stream for in-training randomness
    log.event("start", total_steps=plan.total_steps, steps_per_epoch=plan.steps_per_epoch,
              global_batch=plan.global_batch, world_size=info.world_size, device=str(info.device),
              precision=plan.precision, channels_last=plan.layout == torch.channels_last,
              threads=torch.get_num_threads(), environment=environment(), config=log.config)
    return None


class _StepHooks:
    """What happens between optimizer steps: the loss window logged every ``log_every`` steps (and the progress
    bar), checkpoints, the online k-NN monitor and intermediate backbone exports."""

    def __init__(self, config: RunConfig, info: DistInfo, plan: _Plan, method: Method,
                 checkpoints: CheckpointManager, log: RunLog, meta: dict):
        from tqdm.auto import tqdm  # only the training loop needs it

        self.config, self.info, self.plan, self.method = config, info, plan, method
        self.checkpoints, self.log, self.meta = checkpoints, log, meta
        self.out = Path(config.train.output_dir)
        self.fingerprint = fingerprint(config, info.world_size)
        self.saved: set[int] = set()
        self.last_loss: float | None = None
        self.window = [0.0, 0, time.perf_counter(), 0]  # loss sum, micro-batches, start time, steps
        self.progress = tqdm(total=plan.total_steps, initial=plan.engine.global_steps, unit="step",
                             dynamic_ncols=True, disable=not (info.is_main and config.train.progress))

    def after_step(self, step: int, epoch: int, micro: int, loss: float, lr: float) -> None:
        """Log, checkpoint, monitor and export as ``train`` asks after optimizer step ``step``."""
        train, accum = self.config.train, self.config.train.grad_accum
        self.window[0] += loss * accum
        self.window[1] += accum
        self.window[3] += 1
        self.progress.update(1)
        if step % train.log_every == 0 or step == self.plan.total_steps:
            elapsed = time.perf_counter() - self.window[2]
            self.last_loss = self.window[0] / self.window[1]
            ips = self.window[3] * self.plan.global_batch / elapsed if elapsed > 0 else None
            self.log.event("step", step=step, epoch=epoch, loss=self.last_loss, lr=lr, images_per_s=ips)
            self.progress.set_postfix(loss=f"{self.last_loss:.4f}", img_s=f"{ips:.1f}" if ips else "-")
            self.window = [0.0, 0, time.perf_counter(), 0]
        per_epoch = self.plan.micro_per_epoch
        if train.checkpoint_every and step % train.checkpoint_every == 0:
            self.save(epoch if micro < per_epoch else epoch + 1, micro % per_epoch)
        if train.knn_every and step % train.knn_every == 0 and step < self.plan.total_steps:
            self.monitor()
        if step in train.export_steps and step < self.plan.total_steps and self.info.is_main:
            path = self.out / f"backbone-step{step:06d}.pt"
            export_backbone(self.method.backbone, path, meta={**self.meta, "step": step})
            self.log.event("export", step=step, export=str(path))

    def save(self, epoch: int, micro: int) -> None:
        """Checkpoint the current step (once), after checking every parameter finite."""
        step = self.plan.engine.global_steps
        if step in self.saved:
            return
        self.saved.add(step)
        if not _params_finite(self.method):
            raise NonFiniteLossError(f"parameters became NaN or Inf by step {step}; not checkpointed "
                                     f"(last good checkpoint: {self.checkpoints.latest_tag()})")
        fp = self.fingerprint
        tag = self.checkpoints.save(self.plan.engine, step, {"fingerprint": fp, "epoch": epoch, "micro_in_epoch": micro,
                                                             "step": step, "config": self.config.to_dict()},
                                    meta={"fingerprint": fp})
        self.log.event("checkpoint", step=step, tag=tag)

    def monitor(self) -> None:
        """The online k-NN top-1 on ``train.knn_test`` (rank 0; nothing when no k-NN folders are set)."""
        train = self.config.train
        if train.knn_train is None or not self.info.is_main:
            return
        from .knn import knn_folders

        t0 = time.perf_counter()
        top1 = knn_folders(self.method.backbone, train.knn_train, train.knn_test,
                           image_size=self.config.data.image_size or 224, device=self.info.device,
                           autocast=self.plan.precision != "fp32")
        self.log.event("knn", step=self.plan.engine.global_steps, top1=top1,
                       seconds=round(time.perf_counter() - t0, 2))


def _train(config: RunConfig, info: DistInfo, plan: _Plan, method: Method, source, hooks: _StepHooks) -> int:
    """The epochs from the engine's step on (a resumed run continues at the next batch of the same epoch order);
    returns the last step. A NaN/Inf loss stops every rank with ``NonFiniteLossError`` naming the epoch and batch."""
    engine, accum = plan.engine, config.train.grad_accum
    step = engine.global_steps
    start_epoch, start_micro = step // plan.steps_per_epoch, (step % plan.steps_per_epoch) * accum
    engine.train()
    for epoch in range(start_epoch, config.train.epochs):
        if step >= plan.total_steps:
            break
        micro = start_micro if epoch == start_epoch else 0
        batches = iter(source.epoch(epoch, start=micro))
        while micro < plan.micro_per_epoch and step < plan.total_steps:
            try:
                loss, lr = train_step(engine, method, plan.optimizer, plan.schedule, step, batches, info,
                                      plan.layout)
            except NonFiniteLossError as error:
                if error.step is None:
                    raise
                raise NonFiniteLossError(
                    f"loss is {error.value} at step {step} (epoch {epoch}, batch {micro + error.micro}) on at least "
                    f"one rank; stopped before the backward; last good checkpoint: "
                    f"{hooks.checkpoints.latest_tag() or 'none'} in {Path(config.train.output_dir) / 'checkpoints'}"
                ) from None
            micro += accum
            step = engine.global_steps
            hooks.after_step(step, epoch, micro, loss, lr)
        hooks.save(epoch + 1 if micro >= plan.micro_per_epoch else epoch, micro % plan.micro_per_epoch)
    return step


def pretrain(config: RunConfig, data=None) -> PretrainResult:
    """Train ``config.method`` (module docstring) and export its backbone; returns a ``PretrainResult``.

    ``data``: a ``BatchSource`` or a sized iterable of (views, labels) for this rank (None: built from
    ``config.data``). Collective: under a launcher every rank calls it with the same config. Raises
    ``NonFiniteLossError``, ``CheckpointError`` and the configuration errors of the registries.
    """
    info = setup_distributed()
    _quiet_deepspeed()
    out = Path(config.train.output_dir)
    resolved = config.to_dict()
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False).encode())
    log = RunLog(out / "log.jsonl", info.is_main, config.train.loggers, resolved)
    method, source = _build(config, info, data)
    meta = {"method": config.method, "seed": config.train.seed, "corpus": config.data.corpus, "run": str(out)}
    if not method.trainable:
        path = export_backbone(method.backbone, out / "backbone.pt", meta={**meta, "step": 0}) if info.is_main else None
        log.event("end", step=0, export=str(path) if path else None)
        log.close()
        return PretrainResult(out, 0, None, path, None, method)

    method.to(info.device)
    plan = _plan(config, info, method, source)
    checkpoints = CheckpointManager(out / "checkpoints", info, keep=config.train.keep_checkpoints)
    tag = _resume_or_start(config, info, plan, method, checkpoints, log)
    hooks = _StepHooks(config, info, plan, method, checkpoints, log, meta)
    try:
        step = _train(config, info, plan, method, source, hooks)
    except NonFiniteLossError as error:
        log.event("error", step=plan.engine.global_steps, message=str(error))
        log.close()
        raise
    finally:
        hooks.progress.close()
    hooks.monitor()
    path = export_backbone(method.backbone, out / "backbone.pt", meta={**meta, "step": step}) if info.is_main else None
    log.event("end", step=step, loss=hooks.last_loss, export=str(path) if path else None)
    log.close()
    return PretrainResult(out, step, hooks.last_loss, path, tag, method)
