"""Recipes as data: registry, published parameters, validation, YAML round trip."""

import pytest

from contrasting.data import recipes as R
from contrasting.data.recipes import (
    ColorJitter,
    GaussianBlur,
    Grayscale,
    HorizontalFlip,
    Recipe,
    Solarize,
    View,
    dump_recipe,
    get_recipe,
    list_recipes,
    load_recipe,
)

EXPECTED = {"simclr", "moco_v1", "moco_v2", "byol", "swav", "supervised", "eval_center", "eval_resize", "dense"}


def test_registry_lists_the_published_recipes():
    assert EXPECTED <= set(list_recipes())
    with pytest.raises(KeyError, match="registered"):
        get_recipe("nope")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_recipe_round_trips_through_yaml(name, tmp_path):
    recipe = get_recipe(name)
    assert recipe.provenance
    text = dump_recipe(recipe, tmp_path / f"{name}.yaml")
    assert load_recipe(text) == recipe
    assert load_recipe(tmp_path / f"{name}.yaml") == recipe


def _ops(view, cls):
    return [op for op in view.ops if isinstance(op, cls)]


def test_simclr_parameters_are_the_papers():
    (view,) = get_recipe("simclr").views
    assert (view.size, view.count, view.scale) == (224, 2, (0.08, 1.0))
    (jit,) = _ops(view, ColorJitter)
    assert (jit.brightness, jit.contrast, jit.saturation, jit.hue, jit.p) == (0.8, 0.8, 0.8, 0.2, 0.8)
    assert jit.ranges()[0] == pytest.approx((0.2, 1.8)) and jit.ranges()[3] == pytest.approx((-0.2, 0.2))
    assert _ops(view, Grayscale)[0].p == 0.2
    blur = _ops(view, GaussianBlur)[0]
    assert (blur.p, blur.sigma, blur.window(224), blur.window(96)) == (0.5, (0.1, 2.0), 23, 11)


def test_byol_is_asymmetric_and_swav_is_multicrop():
    v1, v2 = get_recipe("byol").views
    assert (_ops(v1, GaussianBlur)[0].p, _ops(v2, GaussianBlur)[0].p) == (1.0, 0.1)
    assert (_ops(v1, Solarize)[0].p, _ops(v2, Solarize)[0].p) == (0.0, 0.2)
    g, loc = get_recipe("swav").views
    assert (g.size, g.count, g.scale) == (224, 2, (0.14, 1.0))
    assert (loc.size, loc.count, loc.scale) == (96, 6, (0.05, 0.14))
    assert len(get_recipe("swav").expanded_views()) == 8


def test_moco_and_eval_recipes():
    (v1,) = get_recipe("moco_v1").views
    assert _ops(v1, ColorJitter)[0].p == 1.0 and _ops(v1, ColorJitter)[0].hue == 0.4
    (v2,) = get_recipe("moco_v2").views
    assert _ops(v2, ColorJitter)[0].hue == 0.1 and v2.scale == (0.2, 1.0)
    (c,) = get_recipe("eval_center").views
    assert (c.crop, c.size, c.resize_to) == ("center", 224, 256)
    (r,) = get_recipe("eval_resize").views
    assert (r.crop, r.size) == ("resize", 224)
    assert get_recipe("dense", target="depth").target == "depth"


@pytest.mark.parametrize("bad, match", [
    (lambda: ColorJitter(brightness=-1), "brightness"),
    (lambda: ColorJitter(hue=0.7), "hue"),
    (lambda: ColorJitter(p=1.5), "probability"),
    (lambda: GaussianBlur(kernel_size=4), "odd"),
    (lambda: GaussianBlur(sigma=(0.0, 1.0)), "sigma"),
    (lambda: Solarize(threshold=2), "threshold"),
    (lambda: View(0), "size"),
    (lambda: View(32, crop="zoom"), "crop"),
    (lambda: View(32, scale=(0.5, 0.2)), "scale"),
    (lambda: View(32, resize=40), "resize"),
    (lambda: View(32, ops=("flip",)), "ops"),
    (lambda: Recipe("x", ()), "views"),
    (lambda: Recipe("x", (View(8),), std=(0, 1, 1)), "std"),
    (lambda: Recipe("x", (View(8),), target="normals"), "target"),
])
def test_invalid_declarations_raise_naming_the_field(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bad()


def test_yaml_errors_name_the_location():
    text = "name: x\nviews:\n- size: 8\n  ops:\n  - type: Equalize\n    p: 0.5\n"
    with pytest.raises(ValueError, match=r"views\[0\]\.ops\[0\].*Equalize"):
        load_recipe(text)
    with pytest.raises(ValueError, match="unknown keys"):
        load_recipe("name: x\ncolour: red\nviews:\n- size: 8\n")


def test_register_recipe_rejects_duplicates_and_adds_new_names():
    with pytest.raises(ValueError, match="already registered"):
        R.register_recipe("simclr")(lambda: None)
    R.register_recipe("test_only_flip")(lambda size=8: Recipe("flip", (View(size, ops=(HorizontalFlip(1.0),)),)))
    try:
        assert get_recipe("test_only_flip", size=16).views[0].size == 16
    finally:
        del R.RECIPES["test_only_flip"], R.SIZE_RULES["test_only_flip"]


def test_one_image_size_sets_each_recipe_s_crops_by_its_own_rule():
    """``sized_recipe``: the recipe's registry entry owns how an image size maps to its crops (SwAV's small crops
    keep 96:224), explicit options win, and the supervised recipe is a data recipe like the others."""
    swav = R.sized_recipe("swav", 64)
    assert [(v.size, v.count) for v in swav.views] == [(64, 2), (27, 6)]
    assert [v.size for v in R.sized_recipe("swav", 64, local_size=16).views] == [64, 16]
    assert [v.size for v in R.sized_recipe("swav", 20).views] == [20, 9]
    assert R.sized_recipe("swav", None) == get_recipe("swav")
    sup = R.sized_recipe("supervised", 48, scale=(0.3, 1.0))
    assert (sup.views[0].size, sup.views[0].scale, sup.views[0].count) == (48, (0.3, 1.0), 1)
    assert R.sized_recipe("moco_v2", 32).views[0].size == 32
    with pytest.raises(KeyError, match="registered"):
        R.sized_recipe("nope", 32)
