"""Command line: ``python -m contrasting.data.builtin [options]`` generates (or finds) the built-in world."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace

from contrasting.data.builtin.build import ENV_ROOT, WorldConfig, build_world, resolve_root
from contrasting.data.builtin.registry import get_corpus, get_task, list_corpora, list_tasks
from contrasting.data.builtin.scene import SceneSpec


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m contrasting.data.builtin",
                                description="Generate the built-in shapes world (pre-training corpora and end tasks).")
    p.add_argument("--root", help=f"cache root (default: ${ENV_ROOT} or ~/.cache/contrasting/builtin)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every corpus and split size (default 1)")
    p.add_argument("--resolution", type=int, default=SceneSpec().resolution, help="image side in pixels")
    p.add_argument("--corpora", nargs="*", metavar="NAME", help="only these corpora (none: no corpus)")
    p.add_argument("--tasks", nargs="*", metavar="NAME", help="only these tasks (none: no task)")
    p.add_argument("--workers", type=int, default=None, help="generator processes (default min(4, CPUs))")
    p.add_argument("--gallery", type=int, default=32, help="items per contact sheet (0: no gallery)")
    p.add_argument("--force", action="store_true", help="regenerate even if a valid copy is cached")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true", help="list the registered corpora and tasks, generate nothing")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), build or reuse the world, print where everything is; returns
    the exit status (0). With ``--list`` only prints the registry."""
    args = _parser().parse_args(argv)
    if args.list:
        for name in list_corpora():
            c = get_corpus(name)
            print(f"corpus  {name:<13} {c.size:>6} images  {c.description}")
        for name in list_tasks():
            t = get_task(name)
            sizes = "/".join(str(n) for _, n in t.splits)
            print(f"task    {name:<13} {t.group:<23} {t.kind:<19} {t.metric:<4} {sizes:>14}  {t.description}")
        return 0
    config = WorldConfig(seed=args.seed, scene=replace(SceneSpec(), resolution=args.resolution), scale=args.scale,
                         corpora=None if args.corpora is None else tuple(args.corpora),
                         tasks=None if args.tasks is None else tuple(args.tasks), gallery=args.gallery)
    world = build_world(resolve_root(args.root), config, progress=not args.no_progress, workers=args.workers,
                        force=args.force)
    timing = world.manifest["timing"]
    print(f"built-in world: {world.path}")
    print(f"  generated in {timing['total_s']:.1f} s ({timing['workers']} workers, "
          f"{world.manifest['files']['count']} files; cached, reused until the parameters change)")
    for name, files in world.corpora.items():
        print(f"  corpus {name:<13} {files.size:>6}  {files.root}")
    for name, splits in world.tasks.items():
        sizes = "/".join(str(s.size) for s in splits.values())
        print(f"  task   {name:<13} {sizes:>14}  {world.path / world.manifest['tasks'][name]['path']}")
    if world.gallery:
        print(f"  gallery {world.path / 'gallery'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
