"""Scene generator: determinism, exact masks of every shape class against an independent point-in-shape oracle,
occlusion consistent with depth, object counts, and the sampling constraints."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from contrasting.data.builtin import scene as scene_module
from contrasting.data.builtin.scene import (
    AREA_FACTOR,
    BACKGROUND_DEPTH,
    SHAPES,
    TEXTURES,
    SceneObject,
    SceneSpec,
    compose_scene,
    composite_digit,
    object_mask,
    render_scene,
    render_texture,
)

SPEC = SceneSpec()
SEEDS = range(40)


# --- an independent oracle: point-in-shape from explicit vertices, float64, one pixel at a time -----------------


def _in_polygon(px, py, vertices):
    """Convex polygon containment (vertices counter-clockwise or clockwise, boundary included)."""
    signs = []
    for (x0, y0), (x1, y1) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        signs.append((x1 - x0) * (py - y0) - (y1 - y0) * (px - x0))
    return all(s >= -1e-9 for s in signs) or all(s <= 1e-9 for s in signs)


def _regular(obj, rho, n, phase):
    """Vertices of a regular n-gon of circumradius rho, first vertex at ``phase`` in the object's frame."""
    out = []
    for k in range(n):
        a = phase + 2 * math.pi * k / n
        u, v = rho * math.cos(a), rho * math.sin(a)
        # object frame (u, v) -> image: x = u cos θ − v sin θ, y = u sin θ + v cos θ
        c, s = math.cos(obj.angle), math.sin(obj.angle)
        out.append((obj.cx + u * c - v * s, obj.cy + u * s + v * c))
    return out


def _oracle_inside(obj: SceneObject, px: float, py: float) -> bool:
    rho = obj.radius * math.sqrt(math.pi / AREA_FACTOR[obj.shape])
    dx, dy = px - obj.cx, py - obj.cy
    c, s = math.cos(obj.angle), math.sin(obj.angle)
    u, v = dx * c + dy * s, -dx * s + dy * c
    if obj.shape == "circle":
        return math.hypot(u, v) <= rho
    if obj.shape == "ring":
        return 0.55 * rho <= math.hypot(u, v) <= rho
    if obj.shape == "square":
        return _in_polygon(px, py, _regular(obj, rho, 4, math.pi / 4))
    if obj.shape == "triangle":
        return _in_polygon(px, py, _regular(obj, rho, 3, math.pi / 2))
    if obj.shape == "star":
        return _in_polygon(px, py, _regular(obj, rho, 3, math.pi / 2)) or _in_polygon(
            px, py, _regular(obj, rho, 3, -math.pi / 2))
    if obj.shape == "cross":
        w = 0.3 * rho
        return (abs(u) <= rho and abs(v) <= w) or (abs(v) <= rho and abs(u) <= w)
    raise AssertionError(obj.shape)


def _oracle_mask(obj, height, width):
    return np.array([[_oracle_inside(obj, x + 0.5, y + 0.5) for x in range(width)] for y in range(height)])


def _obj(shape, cy, cx, radius, depth, angle=0.0, colour=(255, 0, 0)):
    return SceneObject(shape=shape, label=SHAPES.index(shape), cy=cy, cx=cx, radius=radius, angle=angle,
                       colour=colour, depth=depth)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("angle", [0.0, 0.37, 2.1])
def test_every_shape_mask_matches_the_oracle_and_has_the_circle_area(shape, angle):
    obj = _obj(shape, cy=31.3, cx=30.7, radius=11.2, depth=0.6, angle=angle)
    got, want = object_mask(obj, 64, 64), _oracle_mask(obj, 64, 64)
    wrong = np.argwhere(got != want)
    assert wrong.size == 0, f"{shape} at angle {angle}: {len(wrong)} pixels differ, first (y, x) {wrong[:5].tolist()}"
    assert got.sum() == pytest.approx(math.pi * obj.radius**2, rel=0.06), "shapes are equal-area by construction"


def test_compose_scene_constructed_case_masks_depth_and_occlusion():
    spec = SceneSpec()
    background = np.full((64, 64, 3), 100.0, np.float32)
    near = _obj("circle", cy=20.2, cx=20.4, radius=8.1, depth=0.55, colour=(250, 10, 10))
    far = _obj("square", cy=25.6, cx=27.1, radius=9.3, depth=0.8, colour=(10, 250, 10))
    alone = _obj("triangle", cy=48.3, cx=47.2, radius=7.4, depth=0.7, angle=0.5, colour=(10, 10, 250))
    scene = compose_scene(spec, background, texture=0, objects=[near, far, alone])

    m_near, m_far, m_alone = (_oracle_mask(o, 64, 64) for o in (near, far, alone))
    assert (m_near & m_far).any() and not (m_alone & (m_near | m_far)).any(), "the case must have one overlap"
    assert [o.shape for o in scene.objects] == ["square", "triangle", "circle"], "painted far to near"
    want_mask = np.zeros((64, 64), np.uint8)
    want_depth = np.full((64, 64), BACKGROUND_DEPTH, np.float32)
    for o, m in ((far, m_far), (alone, m_alone), (near, m_near)):  # painter's order
        want_mask[m], want_depth[m] = o.label + 1, o.depth
    np.testing.assert_array_equal(scene.mask, want_mask)
    np.testing.assert_array_equal(scene.depth, want_depth)
    np.testing.assert_array_equal(scene.image[m_near], np.tile([250, 10, 10], (m_near.sum(), 1)))
    np.testing.assert_array_equal(scene.image[~(m_near | m_far | m_alone)], 100)
    areas = {o.shape: (o.area, o.visible) for o in scene.objects}
    assert areas["circle"] == (m_near.sum(), m_near.sum())
    assert areas["square"] == (m_far.sum(), (m_far & ~m_near).sum()), "the nearer circle occludes the square"
    assert areas["triangle"] == (m_alone.sum(), m_alone.sum())
    assert scene.count == 3
    visible = {"circle": m_near.sum(), "square": (m_far & ~m_near).sum(), "triangle": m_alone.sum()}
    assert scene.dominant == SHAPES.index(max(visible, key=visible.get))


def test_equal_depth_later_object_is_on_top():
    a = _obj("circle", 30.2, 30.1, 8.0, 0.6, colour=(1, 2, 3))
    b = _obj("square", 30.2, 30.1, 8.0, 0.6, colour=(4, 5, 6))
    scene = compose_scene(SPEC, np.zeros((64, 64, 3), np.float32), 0, [a, b])
    assert tuple(scene.image[30, 30]) == (4, 5, 6)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_scene_targets_are_consistent(seed):
    scene = render_scene(np.random.default_rng(seed), SPEC)
    h = w = SPEC.resolution
    assert scene.image.shape == (h, w, 3) and scene.image.dtype == np.uint8
    assert scene.mask.dtype == np.uint8 and scene.depth.dtype == np.float32 and scene.instances.dtype == np.int16
    assert SPEC.objects[0] <= scene.count <= SPEC.objects[1]
    depths = [o.depth for o in scene.objects]
    assert depths == sorted(depths, reverse=True), "objects are listed far to near"
    background = scene.instances == -1
    assert (scene.mask[background] == 0).all() and (scene.depth[background] == BACKGROUND_DEPTH).all()
    for i, obj in enumerate(scene.objects):
        own = scene.instances == i
        assert own.sum() == obj.visible >= SPEC.min_visible * obj.area > 0, "every drawn object stays countable"
        assert (scene.mask[own] == obj.label + 1).all() and (scene.depth[own] == np.float32(obj.depth)).all()
        assert (scene.image[own] == obj.colour).all()
        full = object_mask(obj, h, w)
        assert full.sum() == obj.area and (own <= full).all()
        hidden = full & ~own
        assert (scene.instances[hidden] > i).all(), "only objects painted later cover an object"
        assert (scene.depth[hidden] < obj.depth).all(), "occluders are nearer (smaller depth)"
        rho = obj.circumradius
        assert rho <= obj.cy <= h - rho and rho <= obj.cx <= w - rho, "objects lie inside the frame"
    assert len(np.unique(scene.instances[~background])) == scene.count, "count = number of drawn objects"


def test_same_seed_same_scene_and_different_seeds_differ():
    a, b = (render_scene(np.random.default_rng(7), SPEC) for _ in range(2))
    for field in ("image", "mask", "depth", "instances"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.objects == b.objects
    c = render_scene(np.random.default_rng(8), SPEC)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("seed", range(12))
def test_constraints_are_honoured(seed):
    rng = np.random.default_rng(seed)
    n = 1 + seed % 5
    assert render_scene(rng, SPEC, n_objects=n).count == n
    k = seed % len(SHAPES)
    scene = render_scene(rng, SPEC, dominant=k)
    assert scene.dominant == k
    visible = [o.visible for o in scene.objects]
    assert scene.objects[int(np.argmax(visible))].label == k
    t = seed % len(TEXTURES)
    assert render_scene(rng, SPEC, texture=t).texture == TEXTURES[t]


def test_larger_canvas_keeps_the_scale():
    scene = render_scene(np.random.default_rng(0), SPEC, canvas=(90, 100))
    assert scene.image.shape == (90, 100, 3) and scene.mask.shape == (90, 100)
    for obj in scene.objects:
        assert obj.radius <= SPEC.size[1] * SPEC.resolution / SPEC.depth[0] + 1e-6


def test_noise_is_optional_and_seeded():
    spec = replace(SPEC, noise=4.0)
    a, b = (render_scene(np.random.default_rng(3), spec) for _ in range(2))
    np.testing.assert_array_equal(a.image, b.image)
    flat = render_scene(np.random.default_rng(3), SPEC)
    assert not np.array_equal(a.image, flat.image)


@pytest.mark.parametrize("texture", TEXTURES)
def test_textures_have_two_visible_colours(texture):
    image, label = render_texture(np.random.default_rng(1), SPEC, TEXTURES.index(texture))
    assert image.shape == (64, 64, 3) and label == TEXTURES.index(texture)
    assert image.min() >= 0 and image.max() <= 255 and image.std() > 5


def test_digit_composite():
    digit = np.zeros((8, 8), np.float32)
    digit[2:6, 3:5] = 16
    image = composite_digit(np.random.default_rng(0), SPEC, digit)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8


@pytest.mark.parametrize("bad", [dict(shapes=("hexagon",)), dict(textures=()), dict(objects=(0, 3)),
                                 dict(depth=(0.5, 1.2)), dict(resolution=8), dict(min_visible=1.5),
                                 dict(shapes=("circle", "circle"))])
def test_spec_rejects_bad_parameters(bad):
    with pytest.raises(ValueError):
        SceneSpec(**bad)


def test_objects_larger_than_the_canvas_are_rejected():
    with pytest.raises(ValueError, match="larger than the canvas"):
        render_scene(np.random.default_rng(0), SceneSpec(size=(0.3, 0.3)))


def test_unsatisfiable_constraints_raise(monkeypatch):
    monkeypatch.setattr(scene_module, "MAX_SCENE_TRIES", 3)
    # Discs of radius 13.7 px with centres in a 36.6 px square: at most 4 are disjoint (min_visible = 1).
    spec = SceneSpec(shapes=("circle",), size=(0.15, 0.15), depth=(0.7, 0.7), min_visible=1.0)
    with pytest.raises(RuntimeError, match="no scene"):
        render_scene(np.random.default_rng(0), spec, n_objects=5)


def test_dominant_size_makes_object_centric_scenes():
    spec = SceneSpec(resolution=32, size=(0.07, 0.1), dominant_size=0.16, objects=(1, 4))
    for seed in range(6):
        s = render_scene(np.random.default_rng(seed), spec, dominant=seed % 6)
        main = max(s.objects, key=lambda o: o.visible)
        assert main.label == seed % 6 and main.radius >= 0.16 * 32 / spec.depth[1] - 1e-6
        assert all(o.radius <= 0.1 * 32 / spec.depth[0] + 1e-6 for o in s.objects if o is not main)


def test_background_contrast_brings_the_two_colours_together():
    def spread(contrast):
        spec = SceneSpec(resolution=32, background_contrast=contrast)
        img, _ = scene_module.render_texture(np.random.default_rng(3), spec, texture=0)
        grey = img @ np.array([0.299, 0.587, 0.114], np.float32)
        return grey.max() - grey.min()

    assert spread(0.5) < 0.75 * spread(1.0)


@pytest.mark.parametrize("bad", [dict(dominant_size=0.0), dict(background_contrast=0.0), dict(background_contrast=1.5),
                                 dict(shift=(0.3, 0.2)), dict(shift=(0.1, 0.6))])
def test_spec_rejects_bad_new_parameters(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SceneSpec(**bad)
