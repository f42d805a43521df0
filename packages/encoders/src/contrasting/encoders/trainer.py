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
* Output: ``config.yaml``, ``log.jsonl`` (one JSON object per event: start, resume, step every ``log_every``,
  checkpoint, knn (the online k-NN monitor of ``train.knn_*``), end, error), ``tensorboard/`` when TensorBoard
  is installed, ``checkpoints/``, and at the end ``backbone.pt`` + ``backbone.pt.json``
  (``layouts.export_backbone``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import yaml

from .backbones import build_backbone
from .checkpoints import CheckpointError, CheckpointManager, atomic_write_bytes
from .config import RunConfig, merge
from .data import as_batch_source, build_source, check_corpus
from .distributed import DistInfo, setup_distributed
from .layouts import export_backbone
from .methods import Method, build_method
from .optim import apply_schedule, build_optimizer, check_zero_stage, make_schedule
from .precision import resolve_channels_last, resolve_precision


class NonFiniteLossError(RuntimeError):
    """The loss (or, at a checkpoint, a parameter) became NaN or Inf; the run stopped without checkpointing it."""


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
    from deepspeed.utils import safe_set_full_fp32_param  # noqa: PLC0415 - after setup_distributed

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
    """JSON-lines log (and TensorBoard scalars when installed) written by rank 0 only."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled, self.tb = path, enabled, None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - optional dependency

                self.tb = SummaryWriter(str(path.parent / "tensorboard"))
            except ImportError:
                self.tb = None

    def event(self, event: str, **fields) -> None:
        """Append one JSON object ``{"event": event, "time": ..., **fields}``; step events also go to TensorBoard."""
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, "time": time.time(), **fields}) + "\n")
        if self.tb is not None and event == "step":
            for key in ("loss", "lr", "images_per_s"):
                if fields.get(key) is not None:
                    self.tb.add_scalar(f"train/{key}", fields[key], fields["step"])

    def close(self) -> None:
        """Flush TensorBoard."""
        if self.tb is not None:
            self.tb.close()


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


def pretrain(config: RunConfig, data=None) -> PretrainResult:
    """Train ``config.method`` (module docstring) and export its backbone; returns a ``PretrainResult``.

    ``data``: a ``BatchSource`` or a sized iterable of (views, labels) for this rank (None: built from
    ``config.data``). Collective: under a launcher every rank calls it with the same config. Raises
    ``NonFiniteLossError``, ``CheckpointError`` and the configuration errors of the registries.
    """
    info = setup_distributed()
    _quiet_deepspeed()
    import deepspeed  # noqa: PLC0415 - after setup_distributed settled the accelerator

    train = config.train
    out = Path(train.output_dir)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False).encode())
    log = RunLog(out / "log.jsonl", info.is_main)

    torch.manual_seed(train.seed)  # identical initialisation on every rank
    backbone = build_backbone(config.backbone, config.backbone_options)
    if config.method == "random":  # the untrained baseline needs no data
        source = None
    elif data is None:
        check_corpus(config.data.corpus)
        source = build_source(config.data, config.method, batch_size=train.batch_size, seed=train.seed,
                              rank=info.rank, world_size=info.world_size, device=info.device)
    else:
        source = as_batch_source(data)
    method_options = dict(config.method_options)
    if config.method == "supervised" and method_options.get("num_classes") is None and source is not None:
        method_options["num_classes"] = source.num_classes
    method = build_method(config.method, backbone, method_options, process_group=info.process_group)
    meta = {"method": config.method, "seed": train.seed, "corpus": config.data.corpus, "run": str(out)}

    if not method.trainable:
        path = export_backbone(backbone, out / "backbone.pt", meta={**meta, "step": 0}) if info.is_main else None
        log.event("end", step=0, export=str(path) if path else None)
        return PretrainResult(out, 0, None, path, None, method)

    method.to(info.device)
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

    checkpoints = CheckpointManager(out / "checkpoints", info, keep=train.keep_checkpoints)
    fp = fingerprint(config, info.world_size)
    tag = checkpoints.latest_tag()
    if tag is not None and not train.resume:
        raise CheckpointError(f"{out / 'checkpoints'} already holds checkpoints (latest {tag}) and train.resume is "
                              "false; use another output_dir, or resume")
    if tag is not None:
        theirs = checkpoints.record(tag).get("meta", {}).get("fingerprint", {})
        ours = json.loads(json.dumps(fp))
        if theirs != ours:  # checked before DeepSpeed reads tensors of another shape
            diff = sorted(k for k in ours if theirs.get(k) != ours[k])
            raise CheckpointError(f"{out / 'checkpoints' / tag} belongs to a different run (differs in "
                                  f"{', '.join(diff)}); use another output_dir")
        checkpoints.load(engine, tag)
        log.event("resume", step=engine.global_steps, tag=tag)
    else:
        method.on_train_start()
        torch.manual_seed(train.seed * 1_000_003 + info.rank + 1)  # per-rank stream for in-training randomness
        log.event("start", total_steps=total_steps, steps_per_epoch=steps_per_epoch, global_batch=global_batch,
                  world_size=info.world_size, device=str(info.device), precision=precision,
                  channels_last=layout == torch.channels_last, threads=torch.get_num_threads(),
                  config=config.to_dict())

    saved_steps: set[int] = set()

    def monitor() -> None:
        if train.knn_train is None or not info.is_main:
            return
        from .knn import knn_folders  # noqa: PLC0415

        t0 = time.perf_counter()
        top1 = knn_folders(method.backbone, train.knn_train, train.knn_test, image_size=config.data.image_size or 224,
                           device=info.device, autocast=precision != "fp32")
        log.event("knn", step=engine.global_steps, top1=top1, seconds=round(time.perf_counter() - t0, 2))

    def save(epoch: int, micro: int) -> None:
        step = engine.global_steps
        if step in saved_steps:
            return
        saved_steps.add(step)
        if not _params_finite(method):
            raise NonFiniteLossError(f"parameters became NaN or Inf by step {step}; not checkpointed "
                                     f"(last good checkpoint: {checkpoints.latest_tag()})")
        saved = checkpoints.save(engine, step, {"fingerprint": fp, "epoch": epoch, "micro_in_epoch": micro,
                                                "step": step, "config": config.to_dict()},
                                 meta={"fingerprint": fp})
        log.event("checkpoint", step=step, tag=saved)

    from tqdm.auto import tqdm  # noqa: PLC0415 - only the training loop needs it

    step = engine.global_steps
    progress = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True,
                    disable=not (info.is_main and train.progress))
    last_loss, window_loss, window_n = None, 0.0, 0
    window_start, window_steps = time.perf_counter(), 0
    start_epoch, start_micro = step // steps_per_epoch, (step % steps_per_epoch) * train.grad_accum
    engine.train()
    try:
        for epoch in range(start_epoch, train.epochs):
            if step >= total_steps:
                break
            micro = start_micro if epoch == start_epoch else 0
            for views, labels in source.epoch(epoch, start=micro):
                if micro >= micro_per_epoch or step >= total_steps:
                    break
                if micro % train.grad_accum == 0:
                    method.step = step
                    lr = apply_schedule(ds_optimizer.param_groups, schedule, step)
                    method.before_step(set_param_everywhere)
                views = [v.to(info.device, non_blocking=True, memory_format=layout) for v in views]
                labels = labels.to(info.device, non_blocking=True) if labels is not None else None
                loss = engine(views, labels)
                value = global_loss(loss, info)
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"loss is {value} at step {step} (epoch {epoch}, batch {micro}) on at least one rank; "
                        f"stopped before the backward; last good checkpoint: "
                        f"{checkpoints.latest_tag() or 'none'} in {out / 'checkpoints'}")
                engine.backward(loss)
                engine.step()
                micro += 1
                window_loss, window_n = window_loss + value, window_n + 1
                if micro % train.grad_accum:
                    continue
                step = engine.global_steps
                window_steps += 1
                progress.update(1)
                if step % train.log_every == 0 or step == total_steps:
                    elapsed = time.perf_counter() - window_start
                    last_loss = window_loss / window_n
                    ips = window_steps * global_batch / elapsed if elapsed > 0 else None
                    log.event("step", step=step, epoch=epoch, loss=last_loss, lr=lr, images_per_s=ips)
                    progress.set_postfix(loss=f"{last_loss:.4f}", img_s=f"{ips:.1f}" if ips else "-")
                    window_loss, window_n, window_start, window_steps = 0.0, 0, time.perf_counter(), 0
                if train.checkpoint_every and step % train.checkpoint_every == 0:
                    save(epoch if micro < micro_per_epoch else epoch + 1, micro % micro_per_epoch)
                if train.knn_every and step % train.knn_every == 0 and step < total_steps:
                    monitor()
                if step in train.export_steps and step < total_steps and info.is_main:
                    export_backbone(method.backbone, out / f"backbone-step{step:06d}.pt", meta={**meta, "step": step})
                    log.event("export", step=step, export=str(out / f"backbone-step{step:06d}.pt"))
            if micro >= micro_per_epoch or step >= total_steps:
                save(epoch + 1 if micro >= micro_per_epoch else epoch, micro % micro_per_epoch)
    except NonFiniteLossError as error:
        log.event("error", step=step, message=str(error))
        log.close()
        raise
    finally:
        progress.close()
    monitor()
    path = None
    if info.is_main:
        path = export_backbone(method.backbone, out / "backbone.pt", meta={**meta, "step": step})
    log.event("end", step=step, loss=last_loss, export=str(path) if path else None)
    log.close()
    return PretrainResult(out, step, last_loss, path, tag, method)
