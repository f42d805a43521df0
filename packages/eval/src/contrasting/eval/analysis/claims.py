"""The study's six findings as named claims, each tested on a results table: effect, interval, p, verdict.

Every claim is a registry entry (``CLAIMS``): its number and name, the paper's sentence, what it needs, its
effect statistic (on gains over chance, ``stats``), its test and, for claims of no difference, its margin.
Verdicts:

* **supported** — the 95 % interval of the effect excludes the null on the claimed side (claims of a
  difference), or the equivalence / non-inferiority test passes at 5 % against the stated margin;
* **refuted** — the interval excludes the null on the other side (for claims of no difference: the effect
  is beyond the margin with 95 % confidence);
* **inconclusive** — neither;
* **not testable** — the grid lacks the encoders or tasks with signal that the claim needs (the reasons say
  which, naming the cells at chance).

Which cells count. A task enters a claim only where at least one of the cells the claim compares there is above
chance (``stats.above_chance``), at the family-wise level for the number of cells compared
(``stats.family_gate``): a comparison between cells that are all at chance is noise. Within a task that
enters, every compared cell counts at its measured gain (dropping the cells at chance would keep only the lucky
ones). Intervals come from the hierarchical bootstrap of ``stats`` (units and tasks resampled within their
strata, the cells' test-set replicates, seeds) with the small-sample expansion for the number of units.

The six claims (effects in gain units: the share of the way from the trivial baseline to a perfect score):

1. *supervised-domain-specific* — "Supervised ImageNet is the best encoder only for ImageNet and Pets
   classification": the supervised encoder's advantage over the mean self-supervised encoder, averaged over
   its own domain (the reference task and tasks marked ``supervised_domain``), minus the same average over
   every other task. Claimed > 0. Units: self-supervised encoders.
2. *imagenet-uncorrelated* — "Little or no correlation between ImageNet accuracy and tasks that are not
   image-level semantic": the mean over those tasks of the Pearson correlation (over self-supervised encoders)
   of their gains with the reference's, corrected for the attenuation by test-set noise. Equivalence with
   margin 0.3 (TOST); control: the same mean over the other image-level semantic tasks must be > 0 (95 %), or
   the grid cannot show a correlation at all. Units: self-supervised encoders.
3. *moco-pixel-swav-image* — "MoCo v2 is better on pixel-wise tasks, SwAV on image-level tasks": the crossover
   mean(MoCo v2 − SwAV) over pixel-wise tasks minus the same over image-level tasks, over encoder pairs
   pre-trained on the same corpus (and epochs). Claimed > 0. Units: MoCo v2 / SwAV pairs.
4. *structural-gain-more* — "Structural tasks benefit more from self-supervision than semantic ones": the
   mean self-supervised advantage over the supervised encoder on structural tasks minus the same on semantic
   tasks (the reference task left out: the supervised encoder learned its labels). Claimed > 0. Units:
   self-supervised encoders.
5. *similar-data-helps* — "Pre-training on data similar to the end task's gives better results": for each
   encoder pre-trained on a corpus listed in a task's ``similar_corpus``, its advantage over the other encoders
   of its method on that task minus its mean advantage on the tasks it is not similar to (a
   difference-in-differences: a corpus that is simply better everywhere does not count). Claimed > 0. Units:
   (encoder, similar task) comparisons.
6. *unbalanced-as-good* — "Unbalanced pre-training data is as good as, or slightly better than, balanced
   data": mean(unbalanced − balanced) over pairs with the same ``pair`` id and method, over tasks.
   Non-inferiority with margin 0.05. Units: balanced / unbalanced pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from contrasting.eval.analysis import stats
from contrasting.eval.analysis.results import Results
from contrasting.eval.analysis.stats import Interval, interval, nanmean, p_value

SUPPORTED, REFUTED, INCONCLUSIVE, NOT_TESTABLE = "supported", "refuted", "inconclusive", "not testable"
VERDICTS = (SUPPORTED, REFUTED, INCONCLUSIVE, NOT_TESTABLE)
REPLICATES = 2000
MIN_CORRELATION_ENCODERS = 5
MIN_CORRELATION_SIGNAL = 3  # a task enters a correlation when at least this many encoders are above chance on it


# ------------------------------------------------------------------------------------------------- grid


@dataclass
class Grid:
    """What the claims read. ``gain`` (E, T): mean gain over seeds (NaN where missing); ``gain_se`` its
    standard error; ``signal`` the gate; ``reps`` (E, T, B) the cells' test-set (and seed) replicates of the
    gain; metadata per encoder and task; ``reference`` the reference task (None when there is none); ``value`` /
    ``value_se`` the raw scores (mean over seeds) and their standard errors."""

    encoders: list[str]
    tasks: list[str]
    gain: np.ndarray
    gain_se: np.ndarray
    signal: np.ndarray
    reps: np.ndarray
    encoder_meta: dict[str, dict]
    task_meta: dict[str, dict]
    reference: str | None
    seed: int = 0
    value: np.ndarray | None = None
    value_se: np.ndarray | None = None

    @property
    def replicates(self) -> int:
        """B: replicates per bootstrap."""
        return self.reps.shape[2]

    def rows(self, role: str) -> list[int]:
        """Row indices of the encoders with ``role``."""
        return [i for i, e in enumerate(self.encoders) if self.encoder_meta[e]["role"] == role]

    def col(self, task: str) -> int:
        """Column index of ``task``."""
        return self.tasks.index(task)

    def at_chance(self, rows: Sequence[int], cols: Sequence[int]) -> list[str]:
        """``encoder × task`` labels of the cells at chance (or missing) among ``rows`` × ``cols``."""
        return [f"{self.encoders[i]} × {self.tasks[j]}" for j in cols for i in rows if not self.signal[i, j]]

    def usable(self, rows: Sequence[int], cols: Sequence[int]) -> list[int]:
        """The columns where at least one of ``rows`` is above chance at the family-wise level for the number of
        cells compared (``stats.family_gate``), so that a column of chance cells enters 2.3 % of the time."""
        rows = list(rows)
        if not rows:
            return []
        k = stats.family_gate(len(rows))
        strong = stats.above_chance(self.gain[rows], self.gain_se[rows], k)
        return [j for j in cols if strong[:, j].any()]


def _value_replicates(results: Results, rows: list, weights: dict, rng: np.random.Generator, B: int) -> np.ndarray:
    """(seeds, B) replicates of each seed's value: from per-sample statistics with the task's shared weights, else
    value + se·z."""
    from contrasting.eval.catalog.metric_stats import resample_values  # numpy only

    out = np.empty((len(rows), B))
    for k, r in enumerate(rows):
        ps = results.samples.get((r.encoder, r.task, int(r.seed)))
        w = weights.get((r.task, None if ps is None else len(ps.stats)))
        if ps is not None and w is not None:
            out[k] = resample_values(ps.metric, ps.stats, w)
        else:
            out[k] = r.value + (r.se if math.isfinite(r.se) else 0.0) * rng.standard_normal(B)
    return out


def prepare(results: Results, *, replicates: int = REPLICATES, seed: int = 0, reference: str | None = None) -> Grid:
    """The ``Grid`` of a validated results table: seeds averaged, gains, gates and B test-set replicates per
    cell (``stats`` module docstring). A cell's standard error combines its test-set one (the mean over seeds:
    the seeds share the test set) with the spread of its seeds (variance / seeds). ``reference``: the reference
    task (default: the one marked ``reference``, else ``imagenet`` when present, else none)."""
    from contrasting.eval.catalog.metric_stats import bootstrap_weights

    encoders, tasks = results.encoders, results.tasks
    emeta, tmeta = results.encoder_meta(), results.task_meta()
    E, T, B = len(encoders), len(tasks), replicates
    frame = results.frame
    ei = frame["encoder"].map({e: i for i, e in enumerate(encoders)}).to_numpy()
    tj = frame["task"].map({t: j for j, t in enumerate(tasks)}).to_numpy()
    val, se_in = frame["value"].to_numpy(float), frame["se"].to_numpy(float)
    count = np.zeros((E, T), dtype=int)
    np.add.at(count, (ei, tj), 1)
    sampled = np.array([(r.encoder, r.task, int(r.seed)) in results.samples for r in frame.itertuples(index=False)])
    simple = (count[ei, tj] == 1) & ~sampled
    rng = np.random.default_rng(seed)
    value, se = np.full((E, T), np.nan), np.full((E, T), np.nan)
    reps = np.full((E, T, B), np.nan)
    value[ei[simple], tj[simple]] = val[simple]
    se[ei[simple], tj[simple]] = se_in[simple]
    noise = np.where(np.isfinite(se_in[simple]), se_in[simple], 0.0)[:, None]
    reps[ei[simple], tj[simple]] = val[simple][:, None] + noise * rng.standard_normal((int(simple.sum()), B))
    weights: dict = {}  # one multinomial draw per task and test-set size: every encoder of the task shares it
    for (t, n) in sorted({(k[1], len(ps.stats)) for k, ps in results.samples.items()}):
        if t in tasks:
            weights[(t, n)] = bootstrap_weights(n, B, np.random.default_rng([seed, tasks.index(t), n]))
    grouped: dict[tuple[int, int], list] = {}
    for r, i, j, s in zip(frame.itertuples(index=False), ei, tj, simple, strict=True):
        if not s:
            grouped.setdefault((i, j), []).append(r)
    for (i, j), rows in grouped.items():
        vals, ses = np.array([r.value for r in rows]), np.array([r.se for r in rows])
        value[i, j] = vals.mean()
        spread = vals.var(ddof=1) / len(vals) if len(vals) > 1 else 0.0
        test_se = float(np.mean(ses))
        se[i, j] = math.sqrt(test_se ** 2 + spread) if math.isfinite(test_se) else (
            math.sqrt(spread) if len(vals) > 1 else math.nan)
        per_seed = _value_replicates(results, rows, weights, rng, B)
        if len(rows) > 1:
            per_seed = np.take_along_axis(per_seed, rng.integers(0, len(rows), size=(len(rows), B)), axis=0)
        reps[i, j] = per_seed.mean(axis=0)
    base = np.array([tmeta[t]["baseline"] for t in tasks])[None, :]
    best = np.array([tmeta[t]["best"] for t in tasks])[None, :]
    gain = stats.gains(value, base, best)
    gse = stats.gain_se(se, base, best)
    greps = stats.gains(reps, base[..., None], best[..., None])
    marked = [t for t in tasks if tmeta[t]["reference"]]
    if reference is not None and reference not in tasks:
        raise KeyError(f"reference task {reference!r} is not in the results (tasks: {', '.join(tasks)})")
    ref = reference or (marked[0] if marked else ("imagenet" if "imagenet" in tasks else None))
    return Grid(encoders, tasks, gain, gse, stats.above_chance(gain, gse), greps, emeta, tmeta, ref, seed, value,
                se)


# ------------------------------------------------------------------------------------------------- designs


@dataclass
class Stratum:
    """Positions resampled together (with replacement, keeping the count) or kept as they are. ``members``:
    row or column indices, or tuples of row indices for paired units (drawn together, laid out as one block
    per tuple position)."""

    members: list
    resample: bool = True

    @property
    def width(self) -> int:
        """Blocks this stratum lays out: 1, or the tuple length for paired units."""
        return len(self.members[0]) if self.members and isinstance(self.members[0], tuple) else 1


def _layout(strata: list[Stratum], B: int, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray]:
    """(observed positions (1, n), replicate positions (B, n), block sizes, whether each position is resampled)."""
    obs, rep, sizes, resampled = [], [], [], []
    for s in strata:
        idx = np.arange(len(s.members))
        drawn = stats.draw(rng, idx, B) if s.resample else np.tile(idx, (B, 1))
        members = np.array(s.members, dtype=np.int64).reshape(len(s.members), s.width)
        for k in range(s.width):
            obs.append(members[idx, k][None, :])
            rep.append(members[drawn, k])
            sizes.append(len(idx))
            resampled.append(np.full(len(idx), s.resample))
    return np.concatenate(obs, axis=1), np.concatenate(rep, axis=1), sizes, np.concatenate(resampled)


Effect = Callable[[np.ndarray, list[int], list[int]], np.ndarray]


@dataclass
class Design:
    """A claim's bootstrap: row strata (encoders), column strata (tasks), the ``effect`` of a (B, rows, cols)
    cube given the row and column block sizes, the number of units for the interval, whether the cells'
    test-set replicates enter (``test_noise``), an optional ``control`` effect on the same cube, whether the
    effects take the cells' gain standard errors laid out the same way (``needs_noise``: ``noise=`` keyword),
    and what the claim's text reports (``details``)."""

    rows: list[Stratum]
    cols: list[Stratum]
    effect: Effect
    n_units: int
    units: str
    test_noise: bool = True
    control: Effect | None = None
    needs_noise: bool = False
    details: dict = field(default_factory=dict)


def _blocks(x: np.ndarray, sizes: list[int], axis: int) -> list[np.ndarray]:
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


def run_design(grid: Grid, d: Design, seed_offset: int) -> tuple[float, np.ndarray, float | None, np.ndarray | None]:
    """(observed effect, replicate effects, observed control, replicate controls) of a design.

    Each source of variation enters once: rows (units) from resampled strata take their observed gains — their
    test-set noise is already in the spread between units — and fixed rows take their cells' test-set
    replicates (when ``test_noise``). Columns (tasks) are strata, as in rliable's stratified bootstrap."""
    rng = np.random.default_rng([grid.seed, seed_offset])
    B = grid.replicates
    r_obs, r_rep, r_sizes, r_resampled = _layout(d.rows, B, rng)
    c_obs, c_rep, c_sizes, _ = _layout(d.cols, B, rng)
    observed = grid.gain[r_obs[0]][:, c_obs[0]][None]
    fixed = stats.gather(grid.reps, r_rep, c_rep) if d.test_noise else None
    replicated = grid.gain[r_rep[:, :, None], c_rep[:, None, :]]
    if fixed is not None:
        replicated = np.where(r_resampled[None, :, None], replicated, fixed)
    kw_obs, kw_rep = {}, {}
    if d.needs_noise:
        kw_obs = {"noise": grid.gain_se[r_obs[0]][:, c_obs[0]][None]}
        kw_rep = {"noise": grid.gain_se[r_rep[:, :, None], c_rep[:, None, :]]}
    est = float(d.effect(observed, r_sizes, c_sizes, **kw_obs)[0])
    reps = d.effect(replicated, r_sizes, c_sizes, **kw_rep)
    if d.control is None:
        return est, reps, None, None
    return (est, reps, float(d.control(observed, r_sizes, c_sizes, **kw_obs)[0]),
            d.control(replicated, r_sizes, c_sizes, **kw_rep))


# ------------------------------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """One finding: ``number``, ``name``, the paper's ``sentence``, its ``test`` ("difference",
    "equivalence", "non-inferiority"), ``margin`` (claims of no difference), what it ``needs``, what its effect
    ``statistic`` is, and ``design(grid)`` → a Design, or a list of reasons it is not testable."""

    number: int
    name: str
    sentence: str
    test: str
    needs: str
    statistic: str
    design: Callable[[Grid], Design | list[str]]
    margin: float | None = None


CLAIMS: dict[int, Claim] = {}


def register_claim(claim: Claim) -> Claim:
    """Add ``claim`` to ``CLAIMS`` (numbers and names unique)."""
    if claim.number in CLAIMS or any(c.name == claim.name for c in CLAIMS.values()):
        raise ValueError(f"claim {claim.number} / {claim.name!r} is already registered")
    if claim.test not in ("difference", "equivalence", "non-inferiority"):
        raise ValueError(f"claim {claim.name!r}: unknown test {claim.test!r}")
    CLAIMS[claim.number] = claim
    return claim


def _chance_note(grid: Grid, rows: Sequence[int], cols: Sequence[int]) -> str:
    cells = grid.at_chance(rows, cols)
    if not cells:
        return ""
    shown = ", ".join(cells[:8]) + (f", … ({len(cells)} in all)" if len(cells) > 8 else "")
    return f"cells at chance: {shown}"


def _untestable(*reasons: str) -> list[str]:
    return [r for r in reasons if r]


def _supervised_vs_ssl(grid: Grid, exclude: Sequence[str] = ()) -> tuple[list[int], list[int], list[int]] | list[str]:
    sup, ssl = grid.rows("supervised"), grid.rows("ssl")
    if not sup or len(ssl) < 2:
        return _untestable(f"needs a supervised encoder and two self-supervised ones (has {len(sup)} and "
                           f"{len(ssl)})")
    cols = [j for j, t in enumerate(grid.tasks) if t not in exclude and np.isfinite(grid.gain[sup, j]).all()
            and np.isfinite(grid.gain[ssl, j]).sum() >= 2]
    return sup, ssl, grid.usable(sup + ssl, cols)


def _advantage(cube: np.ndarray, rs: list[int]) -> np.ndarray:
    """(B, T): mean supervised gain − mean self-supervised gain, rows laid out [supervised | ssl]."""
    sup, ssl = _blocks(cube, rs, 1)
    return nanmean(sup, 1) - nanmean(ssl, 1)


def _contrast(adv: np.ndarray, cs: list[int]) -> np.ndarray:
    first, second = _blocks(adv, cs, 1)
    return nanmean(first, 1) - nanmean(second, 1)


def _design_1(grid: Grid) -> Design | list[str]:
    if grid.reference is None:
        return _untestable("needs a reference task (a task marked reference, or imagenet)")
    got = _supervised_vs_ssl(grid)
    if isinstance(got, list):
        return got
    sup, ssl, usable = got
    domain = {grid.reference} | {t for t in grid.tasks if grid.task_meta[t]["supervised_domain"]}
    inside = [j for j in usable if grid.tasks[j] in domain]
    outside = [j for j in usable if grid.tasks[j] not in domain]
    if not inside or not outside:
        all_in = [grid.col(t) for t in domain]
        return _untestable(f"needs a task of the supervised encoder's domain ({', '.join(sorted(domain))}) and another "
                           f"task, each with a compared cell above chance (usable: {len(inside)} and {len(outside)})",
                           _chance_note(grid, sup + ssl, all_in if not inside else
                                        [j for j in range(len(grid.tasks)) if grid.tasks[j] not in domain]))
    return Design([Stratum(sup, False), Stratum(ssl)], [Stratum(inside, False), Stratum(outside, False)],
                  lambda c, rs, cs: _contrast(_advantage(c, rs), cs), len(ssl), "self-supervised encoders",
                  details={"domain tasks": [grid.tasks[j] for j in inside],
                           "other tasks": [grid.tasks[j] for j in outside]})


def _design_2(grid: Grid, margin: float) -> Design | list[str]:
    ssl = grid.rows("ssl")
    if grid.reference is None:
        return _untestable("needs a reference task")
    if len(ssl) < MIN_CORRELATION_ENCODERS:
        return _untestable(f"needs ≥ {MIN_CORRELATION_ENCODERS} self-supervised encoders (has {len(ssl)})")
    jr = grid.col(grid.reference)

    def enough(j):
        return int(grid.signal[ssl, j].sum()) >= MIN_CORRELATION_SIGNAL and np.isfinite(grid.gain[ssl, j]).sum() >= 3

    if not enough(jr):
        return _untestable(f"the reference {grid.reference} has fewer than {MIN_CORRELATION_SIGNAL} self-supervised "
                           "encoders above chance", _chance_note(grid, ssl, [jr]))
    others = [j for j, t in enumerate(grid.tasks) if j != jr and not _image_semantic(grid, t)]
    controls = [j for j, t in enumerate(grid.tasks) if j != jr and _image_semantic(grid, t)]
    o_ok, c_ok = [j for j in others if enough(j)], [j for j in controls if enough(j)]
    if not o_ok or not c_ok:
        return _untestable(f"needs a task that is not image-level semantic and another image-level semantic task "
                           f"(the control), each with ≥ {MIN_CORRELATION_SIGNAL} self-supervised encoders above chance "
                           f"(usable: {len(o_ok)} and {len(c_ok)})", _chance_note(grid, ssl, others + controls))
    def corr(cube, rs, cs, block, noise):
        ref, parts = cube[:, :, 0], _blocks(cube[:, :, 1:], cs[1:], 2)[block]
        ref_noise, part_noise = noise[:, :, 0], _blocks(noise[:, :, 1:], cs[1:], 2)[block]
        r = np.stack([stats.corrected_correlation(ref, parts[:, :, k], ref_noise, part_noise[:, :, k])
                      for k in range(parts.shape[2])], axis=1)
        return nanmean(r, 1)

    return Design([Stratum(ssl)], [Stratum([jr], False), Stratum(o_ok, False), Stratum(c_ok, False)],
                  lambda c, rs, cs, noise: corr(c, rs, cs, 0, noise), len(ssl), "self-supervised encoders",
                  test_noise=False, control=lambda c, rs, cs, noise: corr(c, rs, cs, 1, noise), needs_noise=True,
                  details={"tasks": [grid.tasks[j] for j in o_ok], "control tasks": [grid.tasks[j] for j in c_ok]})


def _image_semantic(grid: Grid, task: str) -> bool:
    m = grid.task_meta[task]
    return m["level"] == "image" and m["kind"] == "semantic"


def _key(s) -> str:
    return "".join(ch for ch in str(s or "").lower() if ch.isalnum())


def method_pairs(grid: Grid, a: str, b: str) -> list[tuple[int, int]]:
    """(row of method a, row of method b) for encoders pre-trained on the same corpus (and epochs when both are
    known); each encoder in at most one pair."""
    ka, kb = _key(a), _key(b)
    left: dict = {}
    for i in grid.rows("ssl"):
        m = grid.encoder_meta[grid.encoders[i]]
        if _key(m["method"]) == ka and m["corpus"]:
            left.setdefault((m["corpus"], m["epochs"]), []).append(i)
    pairs = []
    for i in grid.rows("ssl"):
        m = grid.encoder_meta[grid.encoders[i]]
        if _key(m["method"]) != kb or not m["corpus"]:
            continue
        pool = left.get((m["corpus"], m["epochs"])) or next(
            (v for (c, ep), v in left.items() if c == m["corpus"] and (ep is None or m["epochs"] is None) and v), None)
        if pool:
            pairs.append((pool.pop(0), i))
    return pairs


def _pair_difference(cube: np.ndarray, rs: list[int]) -> np.ndarray:
    """(B, pairs, T): second − first member, rows laid out [first members | second members]."""
    first, second = _blocks(cube, rs, 1)
    return second - first


def _design_3(grid: Grid) -> Design | list[str]:
    pairs = method_pairs(grid, "swav", "mocov2")  # (SwAV, MoCo v2): differences are MoCo v2 − SwAV
    if len(pairs) < 2:
        return _untestable(f"needs two MoCo v2 / SwAV pairs pre-trained on the same corpus (has {len(pairs)})")
    rows = [r for p in pairs for r in p]
    pixel = grid.usable(rows, [j for j, t in enumerate(grid.tasks) if grid.task_meta[t]["level"] == "pixel"])
    image = grid.usable(rows, [j for j, t in enumerate(grid.tasks) if grid.task_meta[t]["level"] == "image"])
    if not pixel or not image:
        return _untestable(f"needs pixel-wise and image-level tasks where a MoCo v2 or SwAV encoder is above chance "
                           f"(usable: {len(pixel)} and {len(image)})", _chance_note(grid, rows, range(len(grid.tasks))))

    def effect(c, rs, cs):
        d = nanmean(_pair_difference(c, rs), 1)  # (B, T): mean over pairs
        return _contrast(d, cs)

    return Design([Stratum(list(pairs))], [Stratum(pixel, False), Stratum(image, False)], effect, len(pairs),
                  "MoCo v2 / SwAV pairs", details={
                      "pairs": [f"{grid.encoders[b]} / {grid.encoders[a]}" for a, b in pairs],
                      "pixel-wise tasks": [grid.tasks[j] for j in pixel],
                      "image-level tasks": [grid.tasks[j] for j in image]})


def _design_4(grid: Grid) -> Design | list[str]:
    got = _supervised_vs_ssl(grid, exclude=[grid.reference] if grid.reference else [])
    if isinstance(got, list):
        return got
    sup, ssl, usable = got
    struct = [j for j in usable if grid.task_meta[grid.tasks[j]]["kind"] == "structural"]
    sem = [j for j in usable if grid.task_meta[grid.tasks[j]]["kind"] == "semantic"]
    if not struct or not sem:
        return _untestable(f"needs structural and semantic tasks (besides the reference) where the supervised or a "
                           f"self-supervised encoder is above chance (usable: {len(struct)} and {len(sem)})",
                           _chance_note(grid, sup + ssl, range(len(grid.tasks))))
    return Design([Stratum(sup, False), Stratum(ssl)], [Stratum(struct, False), Stratum(sem, False)],
                  lambda c, rs, cs: -_contrast(_advantage(c, rs), cs), len(ssl), "self-supervised encoders",
                  details={"structural tasks": [grid.tasks[j] for j in struct],
                           "semantic tasks": [grid.tasks[j] for j in sem]})


def similar_comparisons(grid: Grid) -> list[dict]:
    """Each (encoder pre-trained on a corpus similar to a task, that task) with the other encoders of its method
    (not similar to the task) and the tasks the encoder's corpus is not similar to."""
    out = []
    ssl = grid.rows("ssl")
    for j, t in enumerate(grid.tasks):
        similar = {c.lower() for c in grid.task_meta[t]["similar_corpus"]}
        for i in ssl:
            m = grid.encoder_meta[grid.encoders[i]]
            if not m["corpus"] or m["corpus"].lower() not in similar or not np.isfinite(grid.gain[i, j]):
                continue
            others = [k for k in ssl if k != i and _key(grid.encoder_meta[grid.encoders[k]]["method"]) == _key(
                m["method"]) and str(grid.encoder_meta[grid.encoders[k]]["corpus"] or "").lower() not in similar]
            dissimilar = [jj for jj, tt in enumerate(grid.tasks) if jj != j and m["corpus"].lower() not in
                          {c.lower() for c in grid.task_meta[tt]["similar_corpus"]}]
            if others and dissimilar:
                out.append({"row": i, "col": j, "others": others, "dissimilar": dissimilar})
    return out


def _design_5(grid: Grid) -> Design | list[str]:
    comps = []
    for c in similar_comparisons(grid):
        rows = [c["row"]] + c["others"]
        if not grid.usable(rows, [c["col"]]):
            continue
        dissimilar = grid.usable(rows, c["dissimilar"])
        if dissimilar:
            comps.append({**c, "dissimilar": dissimilar})
    if len(comps) < 2:
        return _untestable(f"needs two comparisons of an encoder pre-trained on a corpus similar to a task (the task's "
                           f"similar_corpus) with other encoders of its method, above chance on that task and on a "
                           f"dissimilar one (has {len(comps)})")
    return _SimilarDesign(comps, grid)


class _SimilarDesign(Design):
    """Claim 5's bootstrap: the comparisons are the units, resampled; each comparison's effect is computed once
    (its own noise is in the spread between comparisons)."""

    def __init__(self, comps: list[dict], grid: Grid):
        super().__init__([], [], lambda *_: None, len(comps), "(encoder, similar task) comparisons",
                         details={"comparisons": [f"{grid.encoders[c['row']]} on {grid.tasks[c['col']]}"
                                                  for c in comps]})
        self.comps = comps

    def evaluate(self, grid: Grid, seed_offset: int) -> tuple[float, np.ndarray]:
        effects = []
        for c in self.comps:
            cube = grid.gain[[c["row"]] + c["others"]][:, [c["col"]] + c["dissimilar"]][None]
            # rows [encoder | others]: _advantage is the encoder's gain − the others' mean, per task
            effects.append(float(_contrast(_advantage(cube, [1, len(c["others"])]), [1, len(c["dissimilar"])])[0]))
        effects = np.array(effects)
        rng = np.random.default_rng([grid.seed, seed_offset])
        pick = stats.draw(rng, np.arange(len(effects)), grid.replicates)
        return float(np.mean(effects)), effects[pick].mean(axis=1)


def balanced_pairs(grid: Grid) -> list[tuple[int, int]]:
    """(balanced row, unbalanced row) with the same ``pair`` id and method."""
    groups: dict = {}
    for i in grid.rows("ssl"):
        m = grid.encoder_meta[grid.encoders[i]]
        if m["pair"] is None or m["balanced"] is None:
            continue
        groups.setdefault((m["pair"], _key(m["method"])), {}).setdefault(bool(m["balanced"]), []).append(i)
    return [p for g in groups.values() for p in zip(g.get(True, []), g.get(False, []), strict=False)]


def _design_6(grid: Grid) -> Design | list[str]:
    pairs = balanced_pairs(grid)
    if len(pairs) < 2:
        return _untestable(f"needs two balanced / unbalanced pairs (encoders with the same pair id and method, "
                           f"balanced true and false; has {len(pairs)})")
    rows = [r for p in pairs for r in p]
    cols = grid.usable(rows, range(len(grid.tasks)))
    if not cols:
        return _untestable("no task where a paired encoder is above chance", _chance_note(grid, rows,
                                                                                         range(len(grid.tasks))))
    return Design([Stratum(list(pairs))], [Stratum(cols, False)],
                  lambda c, rs, cs: nanmean(nanmean(_pair_difference(c, rs), 1), 1), len(pairs),
                  "balanced / unbalanced pairs",
                  details={"pairs": [f"{grid.encoders[a]} / {grid.encoders[b]}" for a, b in pairs],
                           "tasks": [grid.tasks[j] for j in cols]})


CORRELATION_MARGIN = 0.3  # |ρ| < 0.3: at most a weak correlation (the usual convention)
BALANCE_MARGIN = 0.05  # "as good as": at most 5 % of the headroom above chance worse

register_claim(Claim(1, "supervised-domain-specific",
                     "Supervised ImageNet is the best encoder only for ImageNet and Pets classification.",
                     "difference", "a supervised and two self-supervised encoders, the reference task (or a task "
                     "marked supervised_domain) and another task with signal",
                     "mean over the supervised domain's tasks of (supervised − mean self-supervised gain) minus the "
                     "same over the other tasks; > 0 supports", _design_1))
register_claim(Claim(2, "imagenet-uncorrelated",
                     "Little or no correlation between ImageNet accuracy and tasks that are not image-level semantic.",
                     "equivalence", f"≥ {MIN_CORRELATION_ENCODERS} self-supervised encoders, the reference, a task "
                     "that is not image-level semantic and another image-level semantic task (the control), with "
                     "signal", "mean correlation (corrected for test-set noise) of those tasks' gains with the "
                     "reference's, over self-supervised encoders; equivalent to 0 within the margin supports, if "
                     "the image-level semantic control correlates (> 0)",
                     lambda g: _design_2(g, CORRELATION_MARGIN), CORRELATION_MARGIN))
register_claim(Claim(3, "moco-pixel-swav-image", "MoCo v2 is better on pixel-wise tasks, SwAV on image-level tasks.",
                     "difference", "two MoCo v2 / SwAV pairs on the same corpus and pixel-wise and image-level tasks "
                     "with signal", "mean (MoCo v2 − SwAV) gain over pixel-wise tasks minus the same over "
                     "image-level tasks (the crossover); > 0 supports", _design_3))
register_claim(Claim(4, "structural-gain-more",
                     "Structural tasks benefit more from self-supervision than semantic ones.",
                     "difference", "a supervised and two self-supervised encoders, structural and semantic tasks "
                     "(besides the reference) with signal", "mean (self-supervised − supervised) gain over "
                     "structural tasks minus the same over semantic tasks; > 0 supports", _design_4))
register_claim(Claim(5, "similar-data-helps", "Pre-training on data similar to the end task's gives better results.",
                     "difference", "two encoders pre-trained on a corpus in a task's similar_corpus, with other "
                     "encoders of their method", "the similar-corpus encoder's advantage over its method's other "
                     "encoders on the similar task minus its mean advantage on dissimilar tasks, averaged over "
                     "comparisons; > 0 supports", _design_5))
register_claim(Claim(6, "unbalanced-as-good",
                     "Unbalanced pre-training data is as good as, or slightly better than, balanced data.",
                     "non-inferiority", "two balanced / unbalanced pairs (same pair id and method)",
                     "mean (unbalanced − balanced) gain over pairs and tasks; above −margin (one-sided 95 %) supports",
                     _design_6, BALANCE_MARGIN))


# ------------------------------------------------------------------------------------------------- verdicts


@dataclass
class FindingRecord:
    """One claim's evaluation (the records of ``findings.json``): ``effect`` with its interval [``ci_low``,
    ``ci_high``] at ``ci_level``, ``p`` (of the claim's test), ``margin`` (claims of no difference), ``units``
    (resampled units), ``verdict`` and its ``reasons``; ``test``, ``statistic``, ``control`` (claim 2) and
    ``details`` (which encoders and tasks entered) for the report."""

    number: int
    name: str
    claim: str
    verdict: str
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    margin: float | None
    units: int
    reasons: list[str]
    test: str = ""
    statistic: str = ""
    ci_level: float | None = None
    unit_kind: str = ""
    control: dict | None = None
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """A JSON-able dict (NaN → None)."""
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float) and not math.isfinite(v):
                out[k] = None
        return out


def _num(x) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def evaluate_claim(claim: Claim, grid: Grid) -> FindingRecord:
    """Evaluate one claim on a prepared grid (see the module docstring for the verdicts)."""
    base = dict(number=claim.number, name=claim.name, claim=claim.sentence, margin=claim.margin, test=claim.test,
                statistic=claim.statistic)
    design = claim.design(grid)
    if isinstance(design, list):
        return FindingRecord(verdict=NOT_TESTABLE, effect=None, ci_low=None, ci_high=None, p=None, units=0,
                             reasons=design or ["the grid lacks what the claim needs"], **base)
    control = None
    if isinstance(design, _SimilarDesign):
        est, reps = design.evaluate(grid, claim.number)
    else:
        est, reps, c_est, c_reps = run_design(grid, design, claim.number)
        if c_reps is not None:
            c_ci = interval(c_est, c_reps, design.n_units)
            control = {"effect": _num(c_est), "ci_low": _num(c_ci.low), "ci_high": _num(c_ci.high),
                       "p": _num(p_value(c_est, c_reps, design.n_units, 0.0, "greater")), "passed": bool(c_ci.low > 0)}
    n = design.n_units
    reasons: list[str] = []
    if claim.test == "difference":
        ci = interval(est, reps, n)
        p = p_value(est, reps, n)
        verdict = SUPPORTED if ci.low > 0 else REFUTED if ci.high < 0 else INCONCLUSIVE
        reasons.append(_why_difference(ci, verdict))
    elif claim.test == "equivalence":
        ci, ci95 = interval(est, reps, n, 0.90), interval(est, reps, n)
        m = claim.margin
        p = max(p_value(est, reps, n, -m, "greater"), p_value(est, reps, n, m, "less"))
        inside = ci.low > -m and ci.high < m
        beyond = ci95.low > m or ci95.high < -m
        passed = control is not None and control["passed"]
        verdict = REFUTED if beyond else SUPPORTED if inside and passed else INCONCLUSIVE
        reasons.append(f"90 % interval [{_f(ci.low)}, {_f(ci.high)}] {'inside' if inside else 'not inside'} "
                       f"(−{m:g}, {m:g})" + ("; 95 % interval beyond the margin" if beyond else ""))
        if control is not None:
            reasons.append(f"control (image-level semantic tasks) {'correlates' if passed else 'does not correlate'}"
                           f" with the reference: {_f(control['effect'])} [{_f(control['ci_low'])}, "
                           f"{_f(control['ci_high'])}]" + ("" if passed else ": the grid cannot show a correlation"))
    else:
        ci = interval(est, reps, n, 0.90)
        m = claim.margin
        p = p_value(est, reps, n, -m, "greater")
        verdict = SUPPORTED if ci.low > -m else REFUTED if ci.high < -m else INCONCLUSIVE
        reasons.append(f"one-sided 95 % bounds [{_f(ci.low)}, {_f(ci.high)}] against −{m:g}: " + {
            SUPPORTED: "not worse than the margin", REFUTED: "worse than the margin",
            INCONCLUSIVE: "the interval straddles the margin"}[verdict])
    if not math.isfinite(ci.low):
        verdict = INCONCLUSIVE
        reasons.append("the bootstrap gave too few finite replicates")
    return FindingRecord(verdict=verdict, effect=_num(est), ci_low=_num(ci.low), ci_high=_num(ci.high), p=_num(p),
                         units=n, reasons=reasons, ci_level=ci.level, unit_kind=design.units, control=control,
                         details=design.details, **base)


def _f(x) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:+.3f}"


def _why_difference(ci: Interval, verdict: str) -> str:
    text = f"95 % interval [{_f(ci.low)}, {_f(ci.high)}]"
    return text + {SUPPORTED: " excludes 0 on the claimed side", REFUTED: " excludes 0 on the opposite side",
                   INCONCLUSIVE: " contains 0"}[verdict]


def evaluate_claims(grid: Grid, numbers: Sequence[int] | None = None) -> list[FindingRecord]:
    """Every registered claim (or ``numbers``), in order."""
    return [evaluate_claim(CLAIMS[n], grid) for n in sorted(numbers or CLAIMS)]


def analyze(table, *, replicates: int = REPLICATES, seed: int = 0, reference: str | None = None,
            samples=None) -> list[FindingRecord]:
    """The six findings on a results table: ``table`` a pandas DataFrame in the results-CSV format
    (``contrasting.eval.analysis.results``), a path to such a CSV, or a validated ``Results``; ``samples``: per-sample
    statistics ((encoder, task, seed) → ``PerSample``) for test-set bootstraps. Returns one ``FindingRecord``
    per claim (``record.to_json()`` is a ``findings.json`` record). Raises ``ResultsError`` on a bad table."""
    import os

    import pandas as pd

    from contrasting.eval.analysis.results import read_csv, validate

    if isinstance(table, Results):
        results = table
    elif isinstance(table, pd.DataFrame):
        results = validate(table, source="DataFrame", samples=samples)
    elif isinstance(table, (str, os.PathLike)):
        results = read_csv(table)
    else:
        raise TypeError(f"table: expected a pandas DataFrame, a CSV path or Results, got {type(table).__name__}")
    return evaluate_claims(prepare(results, replicates=replicates, seed=seed, reference=reference))
