"""Built-in data: a procedural "shapes world" that makes the whole study runnable on one CPU, with no download.

A seeded numpy generator renders scenes (a procedural texture background, 1–N flat shapes at distinct depths,
exact per-pixel class, depth and instance targets; :mod:`.scene`). From it, and from scikit-learn's real 8×8
digits, the registry (:mod:`.registry`; the entries themselves are in :mod:`.entries`) defines four pre-training
corpora of equal size (``shapes``, ``shapes-lt``, ``textures``, ``digits``) and eight end tasks in the study's
four groups, written to disk in the layouts of the real datasets (:mod:`.layout`), cached by parameter hash with
an atomic write protocol (:mod:`.build`), with a contact-sheet gallery (:mod:`.gallery`).

API::

    world = build_world()                     # or build_world(root, WorldConfig(scale=0.1), progress=False)
    world.corpora["shapes"].root              # ImageFolder root of a corpus
    world.tasks["depth"]["test"].list_file    # pair list "image,target" of a split
    list_corpora(), list_tasks()

On disk (``$CONTRASTING_DATA`` or ``~/.cache/contrasting/builtin``)::

    world-<key>/manifest.json                        parameters, classes, counts, file-list sha256 (written last)
    world-<key>/corpora/<corpus>/train/<NN>_<class>/<index>.png, corpora/<corpus>/train.txt
    world-<key>/tasks/<task>/<split>/...             image folders, pair lists or view-pair lists (see layout)
    world-<key>/tasks/<task>/<split>.txt
    world-<key>/gallery/{corpus,task}-<name>.png     contact sheets

Default world: 4 × 3,000 pre-training images and 8 × (1,500 / 300 / 600) task items at 64×64 (31,200 items,
40,843 files, 89 MB; 190 MB in 4 KiB blocks). It costs ~55 s of generator CPU (user + system, mostly rendering
and file creation) plus ~10 s in the parent, i.e. ~35 s on an idle 2-core machine; each manifest's ``timing``
records the wall time, the generator CPU and the load average of its own build. Worlds of other parameters are
kept side by side (one folder per key) until removed by hand.

CLI: ``python -m contrasting.data.builtin --help``.
"""

from contrasting.data.builtin import entries as _entries  # noqa: F401 - fills the registry
from contrasting.data.builtin.build import (
    ENV_ROOT,
    SplitFiles,
    World,
    WorldConfig,
    build_world,
    read_manifest,
    resolve_root,
    world_key,
)
from contrasting.data.builtin.cli import main
from contrasting.data.builtin.layout import DEPTH_SCALE, decode_depth, encode_depth, read_list, read_png
from contrasting.data.builtin.registry import (
    CORPORA,
    GROUPS,
    KINDS,
    TASKS,
    ClassProfile,
    CorpusSpec,
    Sample,
    TaskSpec,
    get_corpus,
    get_task,
    list_corpora,
    list_tasks,
    register_corpus,
    register_task,
)
from contrasting.data.builtin.scene import (
    BACKGROUND_DEPTH,
    Scene,
    SceneObject,
    SceneSpec,
    compose_scene,
    object_mask,
    render_scene,
)

__all__ = [
    "BACKGROUND_DEPTH", "CORPORA", "DEPTH_SCALE", "ENV_ROOT", "GROUPS", "KINDS", "TASKS", "ClassProfile",
    "CorpusSpec", "Sample", "Scene", "SceneObject", "SceneSpec", "SplitFiles", "TaskSpec", "World", "WorldConfig",
    "build_world", "compose_scene", "decode_depth", "encode_depth", "get_corpus", "get_task", "list_corpora",
    "list_tasks", "main", "object_mask", "read_list", "read_manifest", "read_png", "register_corpus",
    "register_task", "render_scene", "resolve_root", "world_key",
]
