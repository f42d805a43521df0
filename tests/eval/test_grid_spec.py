"""Grid spec: YAML loading, dotted overrides, validation naming the offending entry, cell identity."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from contrasting.encoders.overrides import split_override
from contrasting.eval.catalog.tasks import catalog_hparam_check
from contrasting.eval.grid.cells import build_cells, cell_key
from contrasting.eval.grid.spec import (
    GridSpec,
    SpecError,
    TaskInfo,
    apply_overrides,
    find_run_checkpoint,
    load_spec,
    resolve_encoder,
    spec_from_dict,
    spec_hash,
    validate_spec,
)

TASKS = {
    "cls": TaskInfo("cls", "image", "semantic", "top1", True, 1),
    "count": TaskInfo("count", "image", "structural", "top1", True, 1),
    "depth": TaskInfo("depth", "pixel", "structural", "l1", False, 2),
}


def lookup(name: str) -> TaskInfo:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "a.pt").write_bytes(b"weights-a")
    (tmp_path / "ckpt" / "b.pt").write_bytes(b"weights-b")
    run = tmp_path / "runs" / "simclr"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "encoder.pt").write_bytes(b"weights-run")
    (run / "run.json").write_text('{"method": "simclr", "corpus": "shapes", "epochs": 5}')
    spec = tmp_path / "grid.yaml"
    spec.write_text(textwrap.dedent("""
        store: out/results.sqlite
        encoders:
          - {name: A, kind: checkpoint, path: ckpt/a.pt, method: mocov2, corpus: c1, balanced: true, pair: p}
          - {name: B, kind: checkpoint, path: ckpt/b.pt, method: mocov2, corpus: c2, balanced: false, pair: p}
          - {name: Run, kind: run, path: runs/simclr}
          - random
          - {name: Sup, kind: supervised}
        tasks: [cls, count, {name: depth, similar_corpus: c2}]
        hparams:
          default: {}
          fast: {lr: 0.001}
        seeds: [0, 1]
        runner: {workers: 2, device: cpu}
    """))
    return tmp_path, spec


def test_load_resolves_paths_and_types(tree):
    root, path = tree
    spec = load_spec(path, task_lookup=lookup)
    assert isinstance(spec, GridSpec) and spec.name == "grid"
    assert spec.store_path == root / "out" / "results.sqlite"
    assert [e.name for e in spec.encoders] == ["A", "B", "Run", "Random", "Sup"]
    assert spec.encoders[0].path == str(root / "ckpt" / "a.pt")
    assert spec.tasks[2].similar_corpus == ("c2",)
    assert [h.name for h in spec.hparams] == ["default", "fast"] and spec.hparams[1].values == {"lr": 0.001}
    assert spec.seeds == (0, 1) and spec.runner.workers == 2


def test_overrides_by_name_index_and_new_keys(tree):
    _, path = tree
    spec = load_spec(path, ["runner.workers=3", "seeds=[4]", "encoders.Sup.arch=resnet18", "encoders.0.corpus=x",
                            "hparams.fast.lr=0.1", "tasks.cls.reference=true", "analysis.reference_task=cls"],
                     task_lookup=lookup)
    assert spec.runner.workers == 3 and spec.seeds == (4,)
    assert spec.encoder("Sup").arch == "resnet18" and spec.encoder("A").corpus == "x"
    assert spec.hparams[1].values == {"lr": 0.1}
    assert spec.tasks[0].reference and spec.analysis.reference_task == "cls"


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1", "x=[unclosed"])
def test_malformed_override(bad):
    with pytest.raises(ValueError, match="override"):
        split_override(bad)


def test_override_to_missing_entry_names_it():
    with pytest.raises(ValueError, match="no entry 'Nope'"):
        apply_overrides({"encoders": [{"name": "A"}]}, ["encoders.Nope.kind=random"])


@pytest.mark.parametrize("override, message", [
    ("encoders.A.pth=x", r"encoders\[0\] 'A': unknown key 'pth'"),
    ("runner.wokers=2", r"runner: unknown key 'wokers'"),
    ("colour=red", r"spec: unknown key 'colour'"),
    ("tasks.count.simlar_corpus=x", r"tasks\[1\] 'count': unknown key 'simlar_corpus'"),
    ("encoders.B.kind=magic", r"encoders\[1\] 'B': kind must be one of"),
    ("encoders.B.epochs=many", r"encoders\[1\] 'B'.epochs: expected float"),
    ("runner.workers=0", r"runner.workers: must be at least 1"),
    ("runner.device=tpu", r"runner.device"),
    ("seeds=[0, 0]", r"seeds: '0' appears more than once"),
    ("hparams.fast={}", r"hparams\['fast'\]: same values as hparams\['default'\]"),
    ("analysis.reference_task=imagenet", r"analysis.reference_task: 'imagenet' is not one of the grid's tasks"),
    ("runner.executor=nocolon", r"runner.executor"),
])
def test_rejected_naming_the_entry(tree, override, message):
    _, path = tree
    with pytest.raises(SpecError, match=message):
        load_spec(path, [override], task_lookup=lookup)


def test_unknown_task_and_missing_checkpoint_reported_together(tree):
    root, path = tree
    (root / "out").mkdir()
    with pytest.raises(SpecError) as err:
        load_spec(path, ["tasks=[cls, segmentation]", "encoders.B.path=ckpt/missing.pt", "encoders.Run.path=out"],
                  task_lookup=lookup)
    text = str(err.value)
    assert "tasks[1] 'segmentation': unknown task" in text and "known tasks: cls, count, depth" in text
    assert f"encoders[1] 'B': checkpoint {root / 'ckpt' / 'missing.pt'} does not exist" in text
    assert "encoders[2] 'Run': no checkpoint" in text
    assert len(err.value.problems) == 3


def test_same_weights_twice_and_duplicate_names_rejected(tree):
    _, path = tree
    with pytest.raises(SpecError, match="encoders\\[1\\] 'B': same weights as encoder 'A'"):
        load_spec(path, ["encoders.B.path=ckpt/a.pt"], task_lookup=lookup)
    with pytest.raises(SpecError, match="encoders: 'A' appears more than once"):
        load_spec(path, ["encoders.B.name=A"], task_lookup=lookup)


def test_hparam_check_against_the_catalog_schedule(tree):
    _, path = tree
    with pytest.raises(SpecError, match=r"hparams\['fast'\]: unknown key 'learning_rate'"):
        load_spec(path, ["hparams.fast={learning_rate: 1}"], task_lookup=lookup, hparam_check=catalog_hparam_check)
    load_spec(path, ["hparams.fast=[{lr: 0.1}, {lr: 0.01}]"], task_lookup=lookup, hparam_check=catalog_hparam_check)


def test_run_directory_checkpoint_and_metadata(tree):
    root, _ = tree
    ckpt, meta = find_run_checkpoint(root / "runs" / "simclr")
    assert ckpt.name == "encoder.pt" and meta == {"method": "simclr", "corpus": "shapes", "epochs": 5}


def test_catalog_lookup_knows_the_builtin_tasks():
    pytest.importorskip("contrasting.eval.catalog.tasks")
    from contrasting.eval.grid.spec import catalog_task_lookup

    info = catalog_task_lookup("shapes-depth")
    assert info.group == "pixel structural" and not info.higher_is_better
    with pytest.raises(KeyError, match="unknown task"):
        catalog_task_lookup("no-such-task")


def test_cell_keys_follow_weights_not_names(tree):
    root, path = tree
    spec = load_spec(path, task_lookup=lookup)
    encoders, tasks = validate_spec(spec, task_lookup=lookup)
    cells = build_cells(spec, encoders, tasks, version="1")
    assert len(cells) == 5 * 3 * 2 * 2 and len({c.key for c in cells}) == len(cells)
    assert encoders["Run"].meta["method"] == "simclr"  # filled from run.json
    renamed = load_spec(path, ["encoders.A.name=Alpha", "hparams={first: {}, second: {lr: 0.001}}"],
                        task_lookup=lookup)
    enc2, _ = validate_spec(renamed, task_lookup=lookup)
    assert {c.key for c in build_cells(renamed, enc2, tasks, version="1")} == {c.key for c in cells}
    (root / "ckpt" / "a.pt").write_bytes(b"weights-a, retrained")
    enc3, _ = validate_spec(spec, task_lookup=lookup)
    changed = {c.key for c in build_cells(spec, enc3, tasks, version="1")} ^ {c.key for c in cells}
    assert len(changed) == 2 * 3 * 2 * 2  # only encoder A's cells change, old and new
    k = cell_key(encoders["A"].identity, TASKS["cls"], {}, 0, "1")
    assert k != cell_key(encoders["A"].identity, TASKS["cls"], {}, 0, "2")
    assert k != cell_key(encoders["A"].identity, TaskInfo("cls", "image", "semantic", "top1", True, 9), {}, 0, "1")
    assert spec_hash(spec) != spec_hash(renamed)


def test_random_encoder_with_path_rejected(tree):
    _, path = tree
    with pytest.raises(SpecError, match="encoders\\[3\\] 'Random': a random encoder takes no path"):
        load_spec(path, ["encoders.Random.path=ckpt/a.pt"], task_lookup=lookup)
    spec = load_spec(path, task_lookup=lookup)
    r = resolve_encoder(spec.encoder("Random"))
    assert r.loader_spec == "random:resnet50" and r.meta["random"] and r.sha256 is None


def test_a_pretrain_run_directory_gives_its_nested_config_as_metadata(tmp_path):
    """Regression: ``contrasting pretrain`` writes config.yaml with ``method`` as a mapping and the corpus and
    epochs under ``data.`` / ``train.``; they were read flat (the method became a dict)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "backbone.pt").write_bytes(b"weights")
    (run / "config.yaml").write_text("method: {name: mocov2, queue_size: 512}\n"
                                     "backbone: {name: resnet18, width: 16}\n"
                                     "data: {corpus: /data/shapes, image_size: 32}\n"
                                     "train: {epochs: 20, batch_size: 128}\n")
    ckpt, meta = find_run_checkpoint(run)
    assert ckpt.name == "backbone.pt"
    assert meta == {"method": "mocov2", "corpus": "/data/shapes", "epochs": 20, "arch": "resnet18"}


def test_encoder_versions_are_recorded():
    """Regression: results recorded "contrasting-encoders ?" (the package had no __version__)."""
    import contrasting.encoders
    from contrasting.encoders.provenance import environment

    assert environment()["contrasting-encoders"] == contrasting.encoders.__version__


def test_the_eval_readme_spec_example_parses():
    readme = (Path(__file__).resolve().parents[2] / "packages" / "eval" / "README.md").read_text()
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = spec_from_dict(yaml.safe_load(block), base_dir="/data")
    assert [e.kind for e in spec.encoders] == ["run", "checkpoint", "supervised", "random"]
    assert [t.name for t in spec.tasks] == ["imagenet", "pets", "nyu-depth"] and spec.seeds == (0, 1)
    assert spec.store == "/data/results/study.sqlite" and spec.analysis.reference_task == "imagenet"


@pytest.mark.parametrize("seeds", [-1, [0, -2], [], "0", [True]])
def test_seeds_must_be_integers_from_zero(seeds):
    raw = {"name": "g", "encoders": [{"name": "R", "kind": "random"}], "tasks": ["shapes-shape"], "seeds": seeds}
    with pytest.raises(SpecError, match="seeds: expected a non-empty list of integers >= 0"):
        spec_from_dict(raw, base_dir="/data")


def test_a_spec_names_paper_forms_like_tasks(tmp_path):
    spec = spec_from_dict({"name": "t", "store": str(tmp_path / "s.sqlite"), "encoders": ["random"],
                           "tasks": ["kitti-flow:paper", "dtd:paper"]})
    with pytest.raises(SpecError) as err:
        validate_spec(spec)
    assert "'dtd:paper': unknown task (task 'dtd' has no paper form" in str(err.value)
    assert "kitti-flow:paper" not in str(err.value)
