"""This package's ``contrasting`` subcommands: ``pretrain``, ``export``, ``inspect-checkpoint``.

    contrasting pretrain --method mocov2 --corpus shapes --backbone resnet18 --epochs 20 --batch-size 64 \\
        --out runs/moco [--config cfg.yaml] [train.precision=bf16 optim.lr=0.06 ...]
    contrasting pretrain --config mocov2 --config corpus/imagenet train.epochs=1 --dry-run   # shipped configs
    contrasting export runs/moco --out moco_r18.pt              # latest checkpoint → torchvision layout
    contrasting export moco_v2_800ep_pretrain.pth.tar --out moco.pt   # any known layout → ours
    contrasting inspect-checkpoint swav_800ep_pretrain.pth.tar    # layout, architecture, strict check

Many GPUs or nodes: ``deepspeed --hostfile hosts $(which contrasting) pretrain ...`` (same arguments).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

from contrasting.data.atomic import remove_stale_temps

from .args import existing_file, nonnegative_int, output_dir, output_file, positive_int
from .command import Command


def _configure_pretrain(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="dotted config overrides with YAML values, e.g. train.epochs=3 optim.lr=0.6 "
                        "deepspeed.zero_optimization.stage=2")
    p.add_argument("--config", type=config_file, action="append", default=[],
                   help="YAML file with the sections method, backbone, optim, data, train, deepspeed, or a shipped "
                        "config's name (mocov2, corpus/imagenet); repeat to merge several in order")
    p.add_argument("--method", help="simclr, mocov1, mocov2, swav, byol, pirl, supervised or random")
    p.add_argument("--corpus", help="a built-in corpus name, 'synthetic', an image-folder directory or a file list")
    p.add_argument("--backbone", help="resnet18 or resnet50")
    p.add_argument("--small-stem", action="store_true", default=None,
                   help="3x3 stride-1 stem without max-pool, for 32-64 px images")
    p.add_argument("--image-size", type=positive_int, help="size of the large crops (default: the recipe's)")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int, help="images per process and micro-step")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many optimizer steps")
    p.add_argument("--precision", help="auto, fp32, bf16 or fp16")
    p.add_argument("--seed", type=nonnegative_int)
    p.add_argument("--out", "--output", dest="output", type=output_dir,
                   help="run directory (config, logs, checkpoints, exported backbone); --output is the old name")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the JSON-lines log stays)")
    p.add_argument("--dry-run", "--print-config", dest="dry_run", action="store_true",
                   help="print the fully resolved configuration (every default included) and exit without training "
                        "or writing anything")


def config_file(text: str) -> Path:
    """``--config``: an existing file, else the name of a config shipped in ``contrasting/encoders/configs``."""
    path = Path(text).expanduser()
    if path.is_dir() or path.exists():
        return existing_file(text)
    from ..config import config_path, shipped_configs

    try:
        return config_path(text)
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"no such file: {text!r}, nor a shipped config (shipped: "
                                         f"{', '.join(shipped_configs())})") from None


def _flag_layer(args: argparse.Namespace) -> dict:
    flags = {
        ("method", "name"): args.method, ("backbone", "name"): args.backbone,
        ("backbone", "small_stem"): args.small_stem, ("data", "corpus"): args.corpus,
        ("data", "image_size"): args.image_size, ("train", "epochs"): args.epochs,
        ("train", "batch_size"): args.batch_size, ("train", "max_steps"): args.max_steps,
        ("train", "precision"): args.precision, ("train", "seed"): args.seed,
        ("train", "output_dir"): None if args.output is None else str(args.output),
        ("train", "progress"): False if args.no_progress else None,
    }
    layer: dict = {}
    for (section, key), value in flags.items():
        if value is not None:
            layer.setdefault(section, {})[key] = value
    return layer


def _check_run_paths(train) -> None:
    """The run folder can be written and the k-NN folders exist (``train`` of the resolved config)."""
    out = Path(train.output_dir).expanduser()
    existing = next(p for p in (out, *out.parents) if p.exists())
    if existing == out and not out.is_dir():
        raise ValueError(f"train.output_dir: expected a folder to write the run into, got the file {str(out)!r}")
    if not existing.is_dir():
        raise ValueError(f"train.output_dir: cannot make {str(out)!r}: {str(existing)!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "no permission to write the run folder (train.output_dir)", str(out))
    for key in ("knn_train", "knn_test"):
        folder = getattr(train, key)
        if folder is not None and not Path(folder).expanduser().is_dir():
            raise ValueError(f"train.{key}: expected an image folder (one sub-folder per class), got {folder!r}")


def _run_folders(out: Path) -> list[Path]:
    """Where a run's atomic writes go: the run folder, its checkpoints/ and each checkpoint's folder."""
    checkpoints = out / "checkpoints"
    return [out, checkpoints, *(p for p in sorted(checkpoints.glob("step_*")) if p.is_dir())]


def _run_pretrain(args: argparse.Namespace) -> int:
    import yaml  # subcommands import their dependencies when they run

    from ..config import load_yaml, resolve_config
    from ..methods import method_spec
    from ..overrides import parse_override

    layers = [load_yaml(path) for path in args.config]
    layers.append(_flag_layer(args))
    layers += [parse_override(o) for o in args.overrides]
    config = resolve_config(*layers)
    _check_run_paths(config.train)
    resolved = yaml.safe_dump(config.to_dict(), sort_keys=False)
    if method_spec(config.method).trainable:
        from ..training.data import check_corpus

        try:
            check_corpus(config.data.corpus)  # fail before DeepSpeed starts
        except FileNotFoundError as error:  # a corpus root not on this machine: a dry run still shows the config
            if not args.dry_run:
                raise
            print(f"contrasting pretrain: warning: {error} (a run would stop here)", file=sys.stderr)
    if args.dry_run:
        print(resolved, end="")
        return 0
    from ..training.trainer import pretrain  # imports DeepSpeed

    if os.environ.get("RANK", "0") == "0":  # one process cleans, before the others can write (rendezvous)
        print(f"# resolved config (saved as {Path(config.train.output_dir) / 'config.yaml'})\n{resolved}", end="",
              flush=True)
        for folder in _run_folders(Path(config.train.output_dir).expanduser()):
            remove_stale_temps(folder)
    result = pretrain(config)
    if result.export_path is not None:
        loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "-"
        print(f"pretrain: {result.steps} steps, last loss {loss}; backbone exported to {result.export_path}")
    return 0


def _configure_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a run directory, a checkpoint folder, or a checkpoint file in a known layout")
    p.add_argument("--out", required=True, type=output_file,
                   help="where to write the backbone (.pt, plus a .pt.json sidecar)")
    p.add_argument("--layout", default="auto", help="layout of a checkpoint file (default: detected)")
    p.add_argument("--trusted", action="store_true",
                   help="allow full unpickling of a checkpoint file (runs code from it: trusted files only)")


def _check_layout(layout: str) -> None:
    """An unknown ``--layout`` fails before any file is read (``UnknownNameError`` listing the known ones)."""
    from ..weights.layouts import get_layout

    if layout != "auto":
        get_layout(layout)


def _load_file(path: Path, layout: str, trusted: bool):
    """``layouts.load_backbone`` of a file; what torch raises on a damaged file becomes ``CheckpointError``."""
    import pickle
    import zipfile

    from ..weights.checkpoints import CheckpointError
    from ..weights.layouts import LayoutError, load_backbone

    try:
        return load_backbone(path, layout=layout, trusted=trusted)
    except CheckpointError:
        raise
    except LayoutError as error:
        if str(path) in str(error):
            raise
        raise type(error)(f"{path}: {error}") from None
    except (RuntimeError, EOFError, KeyError, IndexError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        first = " ".join(str(error).split())[:200] or ("the file ends early" if isinstance(error, EOFError) else "")
        raise CheckpointError(f"{path}: not a readable checkpoint file ({type(error).__name__}: {first}); expected "
                              "a file written by torch.save holding a state dict") from None


def _load_any(source: str, layout: str, trusted: bool):
    from ..weights.runs import find_checkpoint, load_run_backbone

    _check_layout(layout)
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file or directory (expected a checkpoint file, a run directory "
                                "or a checkpoint folder)")
    if path.is_dir():
        if find_checkpoint(path) is None and (path / "backbone.pt").is_file():
            path = path / "backbone.pt"
        else:
            backbone, meta = load_run_backbone(path)
            return backbone, {**meta, "layout": "deepspeed-run"}
    backbone, found = _load_file(path, layout, trusted)
    return backbone, {"layout": found, "source": str(path)}


def _run_export(args: argparse.Namespace) -> int:
    from ..weights.layouts import export_backbone

    backbone, meta = _load_any(args.source, args.layout, args.trusted)
    meta.pop("config", None)
    out = Path(args.out)
    remove_stale_temps(out.parent, (out.name, out.name + ".json"))  # left by an interrupted export
    out = export_backbone(backbone, out, meta={"exported_from": args.source, **meta})
    print(f"export: {backbone.name} (small_stem={backbone.config.small_stem}, width={backbone.config.width}) "
          f"from {meta['layout']} → {out}")
    return 0


def _configure_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a checkpoint file, a run directory or a checkpoint folder")
    p.add_argument("--layout", default="auto", help="layout to check against (default: detected)")
    p.add_argument("--trusted", action="store_true", help="allow full unpickling (trusted files only)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_inspect(args: argparse.Namespace) -> int:
    backbone, meta = _load_any(args.source, args.layout, args.trusted)
    meta.pop("config", None)
    report = {**meta, **backbone.describe(), "tensors": len(backbone.state_dict()),
              "parameters": sum(p.numel() for p in backbone.parameters()), "strict_load": "ok"}
    if args.json:
        print(json.dumps(report))
    else:
        width = max(map(len, report))
        for key, value in report.items():
            print(f"{key:<{width}}  {value}", file=sys.stdout)
    return 0


PRETRAIN = Command("pre-train an encoder (SimCLR, MoCo v1/v2, SwAV, BYOL, PIRL, supervised, random) through DeepSpeed",
                   _configure_pretrain, _run_pretrain)
EXPORT = Command("export a run's or a published checkpoint's backbone as a torchvision-layout state dict",
                 _configure_export, _run_export)
INSPECT = Command("detect a checkpoint's layout and architecture and check that it loads strictly",
                  _configure_inspect, _run_inspect)
COMMANDS = {"pretrain": PRETRAIN, "export": EXPORT, "inspect-checkpoint": INSPECT}
