"""Reading configuration text without the training stack (no torch): ``key.path=value`` overrides and the
OmegaConf handle, shared by ``contrasting.encoders.config`` and the eval command line (``--hparams``).
"""

from __future__ import annotations

from typing import Any

import yaml


def omegaconf():
    """The ``OmegaConf`` class, imported on first use (``contrasting --help`` stays light)."""
    from omegaconf import OmegaConf

    return OmegaConf


def container(node) -> Any:
    """A plain Python value (dict, list, scalars) of an OmegaConf node, interpolations left as written."""
    return omegaconf().to_container(node, resolve=False)


def parse_override(text: str) -> dict:
    """``"a.b.c=value"`` → ``{"a": {"b": {"c": value}}}`` (``OmegaConf.from_dotlist``), ``value`` parsed as YAML
    (``3``, ``1e-4``, ``[0, 1]``, ``~``); a malformed override raises ``ValueError`` naming it."""
    key, sep, _ = text.partition("=")
    if not sep or not key or any(not part.strip() for part in key.split(".")):
        raise ValueError(f"override {text!r}: expected key.path=value, e.g. train.epochs=3")
    try:
        return container(omegaconf().from_dotlist([text]))
    except yaml.YAMLError as error:
        raise ValueError(f"override {text!r}: the value is not valid YAML ({first_line(error)})") from None
    except Exception as error:  # omegaconf's own errors (a key it cannot hold)
        raise ValueError(f"override {text!r}: {first_line(error)}") from None


def split_override(text: str) -> tuple[list[str], Any]:
    """``"a.b.c=value"`` → ``(["a", "b", "c"], value)``, the value read as ``parse_override`` reads it (for
    callers that walk the path themselves, e.g. into lists by entry name); the same ``ValueError``s."""
    node = parse_override(text)
    path = [part.strip() for part in text.partition("=")[0].split(".")]
    for part in path:
        node = node[part]
    return path, node


def first_line(error: BaseException) -> str:
    """An error's message folded to one line of at most 300 characters."""
    return " ".join(str(error).split())[:300]
