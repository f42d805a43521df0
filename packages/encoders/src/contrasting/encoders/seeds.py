"""Seeds derived from several integers, so that nearby tuples (epoch, batch, rank; seed, draw) get unrelated streams."""

from __future__ import annotations

_GOLDEN = 0x9E3779B97F4A7C15
_MASK = 0xFFFFFFFFFFFFFFFF


def mix_seed(*values: int) -> int:
    """A 63-bit seed from ``values``: each folded in (boost's hash_combine with the golden-ratio constant), then
    splitmix64's finaliser h ← (h ⊕ h≫30)·0xBF58476D1CE4E5B9, h ← (h ⊕ h≫27)·0x94D049BB133111EB (mod 2⁶⁴)."""
    h = _GOLDEN
    for v in values:
        h = (h ^ (int(v) + _GOLDEN + (h << 6) + (h >> 2))) & _MASK
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK
    return h >> 1
