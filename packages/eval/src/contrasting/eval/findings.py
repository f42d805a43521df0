"""The study's six findings, each tested on a grid's numbers by an explicit rule, with its confidence.

Every finding is a rule ``rule(table, reference, fast) -> (verdict, statistic text, numbers)`` with verdict
``supported`` / ``not supported`` / ``not testable`` (the grid lacks the encoders or tasks the rule needs;
the text says which). All comparisons use oriented scores (lower-is-better metrics negated). ``fast`` (used
for bootstrap replicates) skips p-values the verdict does not depend on.

1. *Supervised ImageNet is the best encoder only for ImageNet and Pets classification.* Supported iff the
   supervised encoder is the best on the reference task and on no task outside the reference and the tasks
   marked ``supervised_domain`` (Pets). Needs a supervised and two self-supervised encoders, the reference
   and one other task.
2. *Little or no correlation between ImageNet accuracy and tasks that are not image-level semantic.*
   Supported iff the median Spearman ρ (over self-supervised encoders) of those tasks with the reference is
   below ``RHO_LITTLE`` = 0.5. Needs ≥ ``MIN_CORR_ENCODERS`` self-supervised encoders and one such task.
3. *MoCo v2 is better on pixel-wise tasks, SwAV on image-level tasks.* Supported iff the mean relative
   difference (MoCo v2 − SwAV)/|SwAV| over matched pairs is positive over pixel-wise tasks and negative over
   image-level tasks. Needs a MoCo v2 and a SwAV encoder on the same corpus and tasks of both levels.
4. *Structural tasks benefit more from self-supervision than semantic ones.* Supported iff the mean relative
   improvement of the best self-supervised encoder over the supervised one is larger over structural tasks
   than over semantic tasks (Mann–Whitney U p-value, one-sided, reported). Needs supervised and
   self-supervised encoders and tasks of both kinds.
5. *Pre-training on data similar to the end task's gives better results.* Supported iff, in at least
   ``SIMILAR_SHARE`` = 2/3 of the comparisons, the encoder pre-trained on a corpus similar to the task
   (``similar_corpus``) scores above the mean of the other encoders of its method (binomial p reported).
6. *Unbalanced pre-training data is as good as, or slightly better than, balanced data.* Not supported iff
   balanced data is better with p < 0.05 in the ANOVA of some metric family, or the mean relative
   improvement of unbalanced over balanced is below −``BALANCE_TOLERANCE_PCT`` = 2 %; supported otherwise.
   Needs a balanced/unbalanced pair.

Confidence: the rule is re-run on ``n_boot`` bootstrap replicates that resample the encoders the finding
rests on (self-supervised encoders, matched pairs or balanced pairs; baselines stay) and each cell's seeds.
``agreement`` is the share of replicates giving the observed verdict. high: agreement ≥ 0.9 with ≥ 5
resampled units; moderate: agreement ≥ 0.75 with ≥ 3 units; low otherwise. Few encoders or seeds mean the
bootstrap itself is coarse, hence the unit counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from contrasting.eval.analysis import (
    ResultsTable,
    balanced_vs_unbalanced,
    best_vs_supervised,
    correlations_with_reference,
    fmt,
    fmt_p,
    matched_method_pairs,
    method_difference,
    method_key,
    resample,
    sample_array,
    similar_data,
)

SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE = "supported", "not supported", "not testable"
RHO_LITTLE = 0.5  # |ρ| below 0.5 is at most a weak correlation (the usual convention)
MIN_CORR_ENCODERS = 5  # rank correlations over fewer than 5 encoders cannot reach p < 0.05 reliably
SIMILAR_SHARE = 2 / 3
BALANCE_TOLERANCE_PCT = 2.0  # "as good as": unbalanced may trail balanced by at most 2 % on average
ALPHA = 0.05
HIGH_AGREEMENT, MODERATE_AGREEMENT = 0.9, 0.75

CLAIMS = {
    1: "Supervised ImageNet is the best encoder only for ImageNet and Pets classification.",
    2: "Little or no correlation between ImageNet accuracy and tasks that are not image-level semantic.",
    3: "MoCo v2 is better on pixel-wise tasks, SwAV on image-level tasks.",
    4: "Structural tasks benefit more from self-supervision than semantic ones.",
    5: "Pre-training on data similar to the end task's gives better results.",
    6: "Unbalanced pre-training data is as good as, or slightly better than, balanced data.",
}


@dataclass
class Finding:
    """One finding's evaluation: the ``verdict``, the ``statistic`` behind it (text), ``confidence`` (high /
    moderate / low, or ``'—'`` when not testable) with ``agreement`` (bootstrap share) and ``units`` (how many
    resampled units it rests on), and the ``numbers`` used."""

    number: int
    claim: str
    verdict: str
    statistic: str
    confidence: str = "—"
    agreement: float | None = None
    units: int = 0
    numbers: dict = field(default_factory=dict)

    @property
    def confidence_note(self) -> str:
        """``'high (bootstrap agreement 96 % over 9 encoders)'`` and the like."""
        if self.verdict == NOT_TESTABLE or self.agreement is None:
            return "—"
        return f"{self.confidence} (bootstrap agreement {100 * self.agreement:.0f} % over {self.units} units)"


Rule = Callable[[ResultsTable, str | None, bool], tuple[str, str, dict]]


def _untestable(why: str) -> tuple[str, str, dict]:
    return NOT_TESTABLE, why, {}


# --------------------------------------------------------------------------------------------------- rules


def rule_1(table: ResultsTable, reference: str | None, fast: bool = False) -> tuple[str, str, dict]:
    """Finding 1 (see the module docstring)."""
    sup, ssl = table.by_role("supervised"), table.by_role("ssl")
    if not sup or len(ssl) < 2 or reference is None or len(table.tasks) < 2:
        return _untestable("needs a supervised encoder, two self-supervised encoders, the reference task and "
                           "another task")
    o = table.oriented()
    i_sup, rows = table.encoders.index(sup[0]), table.rows(ssl)
    allowed = {reference} | {t for t in table.tasks if table.task_meta[t].get("supervised_domain")}
    best_on = []
    for j, t in enumerate(table.tasks):
        col = o[rows, j]
        if np.isfinite(o[i_sup, j]) and np.isfinite(col).any() and o[i_sup, j] >= np.nanmax(col):
            best_on.append(t)
    outside = [t for t in best_on if t not in allowed]
    ok = reference in best_on and not outside
    text = (f"supervised is best on {len(best_on)} of {len(table.tasks)} tasks ({', '.join(best_on) or 'none'}); "
            f"on the reference {reference}: {'yes' if reference in best_on else 'no'}; outside "
            f"{{{', '.join(sorted(allowed))}}}: {len(outside)}")
    return (SUPPORTED if ok else NOT_SUPPORTED), text, {"best_on": best_on, "outside": outside}


def rule_2(table: ResultsTable, reference: str | None, fast: bool = False) -> tuple[str, str, dict]:
    """Finding 2 (see the module docstring)."""
    ssl = table.by_role("ssl")
    others = [t for t in table.tasks if t != reference and table.group(t) != "image semantic"]
    if reference is None or not others or len(ssl) < MIN_CORR_ENCODERS:
        return _untestable(f"needs the reference task, a task that is not image-level semantic and "
                           f"≥ {MIN_CORR_ENCODERS} self-supervised encoders (has {len(ssl)})")
    corr = {c.task: c for c in correlations_with_reference(table, reference, pvalues=not fast)}
    rhos = [corr[t].spearman for t in others if math.isfinite(corr[t].spearman)]
    if not rhos:
        return _untestable("no task outside image-level semantic has enough finite scores")
    med = float(np.median(rhos))
    sem = [corr[t].spearman for t in table.tasks if t != reference and table.group(t) == "image semantic"
           and math.isfinite(corr[t].spearman)]
    med_sem = float(np.median(sem)) if sem else math.nan
    per = "; ".join(f"{t} ρ={fmt(corr[t].spearman, 2)} (p={fmt_p(corr[t].spearman_p)})" for t in others)
    text = (f"median Spearman ρ with {reference} over {len(others)} non-image-semantic task(s) = {med:.2f} "
            f"(threshold {RHO_LITTLE}); image-semantic median ρ = {fmt(med_sem, 2)}; {per}")
    return (SUPPORTED if med < RHO_LITTLE else NOT_SUPPORTED), text, {"median_rho": med,
                                                                      "median_rho_semantic": med_sem}


def rule_3(table: ResultsTable, reference: str | None, fast: bool = False) -> tuple[str, str, dict]:
    """Finding 3 (see the module docstring)."""
    diffs = method_difference(table, "mocov2", "swav")
    pix = [d.rel_diff_pct for d in diffs if table.level(d.task) == "pixel" and math.isfinite(d.rel_diff_pct)]
    img = [d.rel_diff_pct for d in diffs if table.level(d.task) == "image" and math.isfinite(d.rel_diff_pct)]
    if not diffs or not pix or not img:
        return _untestable("needs a MoCo v2 and a SwAV encoder pre-trained on the same corpus, and both "
                           "pixel-wise and image-level tasks")
    mp, mi = float(np.mean(pix)), float(np.mean(img))
    p_pix = math.nan if fast else _sign_p(pix, greater=True)
    p_img = math.nan if fast else _sign_p(img, greater=False)
    n_pairs = len(matched_method_pairs(table, "mocov2", "swav"))
    text = (f"mean (MoCo v2 − SwAV)/|SwAV| over {n_pairs} matched pair(s): pixel-wise {mp:+.1f} % "
            f"({len(pix)} tasks, sign-test p={fmt_p(p_pix)}), image-level {mi:+.1f} % ({len(img)} tasks, "
            f"p={fmt_p(p_img)})")
    return (SUPPORTED if mp > 0 and mi < 0 else NOT_SUPPORTED), text, {"pixel_pct": mp, "image_pct": mi}


def _sign_p(values: list[float], greater: bool) -> float:
    """One-sided sign test that values are > 0 (``greater``) or < 0."""
    nz = [v for v in values if v != 0]
    if not nz:
        return math.nan
    k = sum(v > 0 for v in nz) if greater else sum(v < 0 for v in nz)
    return float(stats.binomtest(k, len(nz), 0.5, alternative="greater").pvalue)


def rule_4(table: ResultsTable, reference: str | None, fast: bool = False) -> tuple[str, str, dict]:
    """Finding 4 (see the module docstring)."""
    rows = best_vs_supervised(table)
    struct = [r.rel_improvement_pct for r in rows if table.kind(r.task) == "structural"
              and math.isfinite(r.rel_improvement_pct)]
    sem = [r.rel_improvement_pct for r in rows if table.kind(r.task) == "semantic"
           and math.isfinite(r.rel_improvement_pct)]
    if not struct or not sem:
        return _untestable("needs supervised and self-supervised encoders, and structural and semantic tasks")
    ms, mm = float(np.mean(struct)), float(np.mean(sem))
    p = math.nan
    if len(struct) >= 2 and len(sem) >= 2 and not fast:
        p = float(stats.mannwhitneyu(struct, sem, alternative="greater").pvalue)
    text = (f"best self-supervised vs supervised: structural tasks {ms:+.1f} % (mean of {len(struct)}), semantic "
            f"{mm:+.1f} % (mean of {len(sem)}); Mann–Whitney U one-sided p={fmt_p(p)}")
    return (SUPPORTED if ms > mm else NOT_SUPPORTED), text, {"structural_pct": ms, "semantic_pct": mm, "p": p}


def rule_5(table: ResultsTable, reference: str | None, fast: bool = False) -> tuple[str, str, dict]:
    """Finding 5 (see the module docstring)."""
    rows = similar_data(table)
    if not rows:
        return _untestable("needs a task annotated with similar_corpus, an encoder pre-trained on that corpus and "
                           "another encoder of the same method pre-trained elsewhere")
    wins = sum(r.beats_mean for r in rows)
    share = wins / len(rows)
    p = float(stats.binomtest(wins, len(rows), 0.5, alternative="greater").pvalue)
    per = "; ".join(f"{r.task}: {r.encoder} rank {r.rank}/{r.n_others + 1}" for r in rows)
    text = (f"the similar-corpus encoder beats its method's other encoders on average in {wins} of {len(rows)} "
            f"comparison(s) ({100 * share:.0f} %, threshold {100 * SIMILAR_SHARE:.0f} %; binomial p={fmt_p(p)}); "
            f"{per}")
    return (SUPPORTED if share >= SIMILAR_SHARE else NOT_SUPPORTED), text, {"share": share, "p": p}


def rule_6(table: ResultsTable, reference: str | None, fast: bool = False) -> tuple[str, str, dict]:
    """Finding 6 (see the module docstring)."""
    pairs, per_task, anovas = balanced_vs_unbalanced(table, fast=fast)
    if not pairs or not per_task:
        return _untestable("needs a balanced and an unbalanced encoder with the same pair id and method")
    mean_rel = float(np.mean([t.rel_improvement_pct for t in per_task if math.isfinite(t.rel_improvement_pct)]))
    worse = [a for a in anovas if a.p < ALPHA and a.mean_difference < 0]
    ok = not worse and mean_rel >= -BALANCE_TOLERANCE_PCT
    an = "; ".join(f"{a.family}: F={a.f:.2f}, p={fmt_p(a.p)}, unbalanced−balanced {a.mean_difference:+.2f} sd"
                   for a in anovas) or "ANOVA needs two pairs"
    text = (f"unbalanced vs balanced over {len(pairs)} pair(s): mean relative improvement {mean_rel:+.1f} % "
            f"(tolerance −{BALANCE_TOLERANCE_PCT:g} %); one-way ANOVA per metric family: {an}")
    return (SUPPORTED if ok else NOT_SUPPORTED), text, {"mean_rel_pct": mean_rel,
                                                        "anova": [a.__dict__ for a in anovas]}


RULES: dict[int, Rule] = {1: rule_1, 2: rule_2, 3: rule_3, 4: rule_4, 5: rule_5, 6: rule_6}


# ----------------------------------------------------------------------------------------------- bootstrap


def _units(table: ResultsTable, number: int) -> tuple[list[tuple[str, ...]], tuple[str, ...]]:
    """What the bootstrap resamples for a finding, and which metadata keys keep duplicated units apart."""
    if number == 3:
        return [tuple(p) for p in matched_method_pairs(table, "mocov2", "swav")], ("corpus", "pair")
    if number == 6:
        return [tuple(p) for p in balanced_vs_unbalanced(table)[0]], ("pair",)
    if number == 5:  # the other encoders, unless every one is some task's similar-corpus encoder
        similar = {r.encoder for r in similar_data(table)}
        others = [(e,) for e in table.by_role("ssl") if e not in similar]
        return others or [(e,) for e in table.by_role("ssl")], ()
    return [(e,) for e in table.by_role("ssl")], ()


def _label(agreement: float, units: int) -> str:
    if agreement >= HIGH_AGREEMENT and units >= 5:
        return "high"
    if agreement >= MODERATE_AGREEMENT and units >= 3:
        return "moderate"
    return "low"


def evaluate_finding(number: int, table: ResultsTable, reference: str | None = None, *, n_boot: int = 500,
                     seed: int = 0) -> Finding:
    """Evaluate finding ``number`` (1–6) on ``table`` with the reference task ``reference`` (default:
    ``table.reference_task()``), with ``n_boot`` bootstrap replicates for its confidence."""
    reference = table.reference_task(reference) if reference in (None, "") else reference
    verdict, text, numbers = RULES[number](table, reference)
    f = Finding(number, CLAIMS[number], verdict, text, numbers=numbers)
    if verdict == NOT_TESTABLE or n_boot <= 0:
        return f
    units, suffix = _units(table, number)
    rng = np.random.default_rng(seed + number)
    same = 0
    arrays = sample_array(table)
    for _ in range(n_boot):
        rep = resample(table, rng, units=units, suffix_keys=suffix, _samples=arrays)
        same += RULES[number](rep, reference, True)[0] == verdict
    f.agreement = same / n_boot
    f.units = len(units)
    f.confidence = _label(f.agreement, f.units)
    return f


def evaluate_findings(table: ResultsTable, reference: str | None = None, *, n_boot: int = 500,
                      seed: int = 0) -> list[Finding]:
    """All six findings, in order (see ``evaluate_finding``)."""
    return [evaluate_finding(n, table, reference, n_boot=n_boot, seed=seed) for n in sorted(RULES)]


def method_names(table: ResultsTable) -> dict[str, list[str]]:
    """Encoders per normalised method name (for reports)."""
    out: dict[str, list[str]] = {}
    for e in table.encoders:
        out.setdefault(method_key(table.encoder_meta[e].get("method")) or table.role(e), []).append(e)
    return out
