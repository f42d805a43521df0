"""The study's vocabulary of end tasks, owned once: a task is image-level or pixel-wise (its *level*) and semantic or
structural (its *kind*); the four (level, kind) pairs are the study's task groups.

    LEVELS = ("image", "pixel")            KINDS = ("semantic", "structural")
    group_name(level, kind)                "image semantic"            (results, plots)
    group_title(level, kind)               "image-level semantic"      (the paper's wording, the data registry)

Every package names levels, kinds and groups through this module (stdlib only: importing it is free).
"""

from __future__ import annotations

LEVELS = ("image", "pixel")
KINDS = ("semantic", "structural")
LEVEL_TITLES = {"image": "image-level", "pixel": "pixel-wise"}


def group_name(level: str, kind: str) -> str:
    """The short group label ``"<level> <kind>"``, e.g. "pixel structural"."""
    return f"{level} {kind}"


def group_title(level: str, kind: str) -> str:
    """The paper's group label, e.g. "image-level semantic"."""
    return f"{LEVEL_TITLES[level]} {kind}"


def split_group_title(title: str) -> tuple[str, str]:
    """(level, kind) of a paper-style group label; ValueError naming the allowed labels otherwise."""
    for level in LEVELS:
        for kind in KINDS:
            if group_title(level, kind) == title:
                return level, kind
    raise ValueError(f"group: expected one of {', '.join(map(repr, GROUP_TITLES))}, got {title!r}")


GROUP_NAMES = tuple(group_name(level, kind) for level in LEVELS for kind in KINDS)
GROUP_TITLES = tuple(group_title(level, kind) for level in LEVELS for kind in KINDS)
