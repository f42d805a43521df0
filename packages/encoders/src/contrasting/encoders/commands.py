"""This package's ``contrasting`` subcommands: ``pretrain``, ``export``, ``inspect-checkpoint``.

    contrasting pretrain --method mocov2 --corpus shapes --backbone resnet18 --epochs 20 --batch-size 64 \\
        --output runs/moco [--config cfg.yaml] [train.precision=bf16 optim.lr=0.06 ...]
    contrasting export runs/moco --out moco_r18.pt              # latest checkpoint → torchvision layout
    contrasting export moco_v2_800ep_pretrain.pth.tar --out moco.pt   # any known layout → ours
    contrasting inspect-checkpoint swav_800ep_pretrain.pth.tar    # layout, architecture, strict check

Many GPUs or nodes: ``deepspeed --hostfile hosts $(which contrasting) pretrain ...`` (same arguments).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .command import Command


def _configure_pretrain(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="dotted config overrides with YAML values, e.g. train.epochs=3 optim.lr=0.6 "
                        "deepspeed.zero_optimization.stage=2")
    p.add_argument("--config", help="YAML file with the sections method, backbone, optim, data, train, deepspeed")
    p.add_argument("--method", help="simclr, mocov1, mocov2, swav, supervised or random")
    p.add_argument("--corpus", help="a built-in corpus name, 'synthetic', an image-folder directory or a file list")
    p.add_argument("--backbone", help="resnet18 or resnet50")
    p.add_argument("--small-stem", action="store_true", default=None,
                   help="3x3 stride-1 stem without max-pool, for 32-64 px images")
    p.add_argument("--image-size", type=int, help="size of the large crops (default: the recipe's)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="images per process and micro-step")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument("--precision", help="auto, fp32, bf16 or fp16")
    p.add_argument("--seed", type=int)
    p.add_argument("--output", help="run directory (config, logs, checkpoints, exported backbone)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the JSON-lines log stays)")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")


def _flag_layer(args: argparse.Namespace) -> dict:
    flags = {
        ("method", "name"): args.method, ("backbone", "name"): args.backbone,
        ("backbone", "small_stem"): args.small_stem, ("data", "corpus"): args.corpus,
        ("data", "image_size"): args.image_size, ("train", "epochs"): args.epochs,
        ("train", "batch_size"): args.batch_size, ("train", "max_steps"): args.max_steps,
        ("train", "precision"): args.precision, ("train", "seed"): args.seed,
        ("train", "output_dir"): args.output, ("train", "progress"): False if args.no_progress else None,
    }
    layer: dict = {}
    for (section, key), value in flags.items():
        if value is not None:
            layer.setdefault(section, {})[key] = value
    return layer


def _run_pretrain(args: argparse.Namespace) -> int:
    import yaml  # subcommands import their dependencies when they run

    from .config import load_yaml, parse_override, resolve_config
    from .methods import method_spec

    layers = [load_yaml(args.config)] if args.config else []
    layers.append(_flag_layer(args))
    layers += [parse_override(o) for o in args.overrides]
    config = resolve_config(*layers)
    if method_spec(config.method).trainable:
        from .data import check_corpus

        check_corpus(config.data.corpus)  # fail before DeepSpeed starts
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    from .trainer import pretrain  # imports DeepSpeed

    result = pretrain(config)
    if result.export_path is not None:
        loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "-"
        print(f"pretrain: {result.steps} steps, last loss {loss}; backbone exported to {result.export_path}")
    return 0


def _configure_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a run directory, a checkpoint folder, or a checkpoint file in a known layout")
    p.add_argument("--out", required=True, help="where to write the backbone (.pt, plus a .pt.json sidecar)")
    p.add_argument("--layout", default="auto", help="layout of a checkpoint file (default: detected)")
    p.add_argument("--trusted", action="store_true",
                   help="allow full unpickling of a checkpoint file (runs code from it: trusted files only)")


def _load_any(source: str, layout: str, trusted: bool):
    from .layouts import load_backbone
    from .runs import find_checkpoint, load_run_backbone

    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file or directory")
    if path.is_dir():
        if find_checkpoint(path) is None and (path / "backbone.pt").is_file():
            path = path / "backbone.pt"
        else:
            backbone, meta = load_run_backbone(path)
            return backbone, {**meta, "layout": "deepspeed-run"}
    backbone, found = load_backbone(path, layout=layout, trusted=trusted)
    return backbone, {"layout": found, "source": str(path)}


def _run_export(args: argparse.Namespace) -> int:
    from .layouts import export_backbone

    backbone, meta = _load_any(args.source, args.layout, args.trusted)
    meta.pop("config", None)
    out = export_backbone(backbone, args.out, meta={"exported_from": args.source, **meta})
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


PRETRAIN = Command("pre-train an encoder (SimCLR, MoCo v1/v2, SwAV, supervised, random) through DeepSpeed",
                   _configure_pretrain, _run_pretrain)
EXPORT = Command("export a run's or a published checkpoint's backbone as a torchvision-layout state dict",
                 _configure_export, _run_export)
INSPECT = Command("detect a checkpoint's layout and architecture and check that it loads strictly",
                  _configure_inspect, _run_inspect)
COMMANDS = {"pretrain": PRETRAIN, "export": EXPORT, "inspect-checkpoint": INSPECT}
