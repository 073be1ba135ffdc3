"""CoordinateSpace and smart_resize: worked values from shared/notes/ui-tars.md §3, and round trips."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perception.space import MAX_PIXELS, MIN_PIXELS, CoordinateSpace, smart_resize


@pytest.mark.parametrize("size,expected", [
    ((1920, 1080), (1932, 1092)),
    ((1280, 720), (1288, 728)),
    ((1440, 900), (1428, 896)),
    ((2560, 1440), (2548, 1428)),
    ((2880, 1800), (2884, 1792)),
    ((3840, 2160), (3836, 2156)),
    ((1080, 2400), (1092, 2408)),
])
def test_smart_resize_ui_tars_15(size, expected):
    assert smart_resize(*size) == expected


@pytest.mark.parametrize("size,max_pixels,expected", [
    ((2560, 1440), 2700 * 784, (1932, 1064)),  # UI-TARS-1.0 desktop / 7B-SFT preprocessor
    ((3840, 2160), 2700 * 784, (1932, 1064)),
    ((1080, 2400), 2700 * 784, (952, 2156)),
    ((1920, 1080), 1350 * 784, (1344, 756)),
    ((2880, 1800), 1350 * 784, (1288, 812)),
])
def test_smart_resize_max_pixels_path(size, max_pixels, expected):
    w, h = smart_resize(*size, max_pixels=max_pixels)
    assert (w, h) == expected and w * h <= max_pixels


def test_smart_resize_min_pixels_path():
    # 100x100 rounds to 112x112 = 12,544 px < 78,400: scaled up by sqrt(78400/10000) = 2.8
    assert smart_resize(100, 100) == (280, 280)
    w, h = smart_resize(160, 90)
    assert w * h >= MIN_PIXELS and w % 28 == 0 and h % 28 == 0


def test_smart_resize_rejects_bad_sizes():
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(201 * 28, 28)
    with pytest.raises(ValueError, match="positive"):
        smart_resize(0, 100)


@settings(max_examples=200, deadline=None)
@given(w=st.integers(28, 8000), h=st.integers(28, 8000))
def test_smart_resize_invariants(w, h):
    if max(w, h) / min(w, h) > 200:
        return
    mw, mh = smart_resize(w, h)
    assert mw % 28 == 0 and mh % 28 == 0
    assert MIN_PIXELS <= mw * mh <= MAX_PIXELS


def test_relative_1000_worked_example():
    space = CoordinateSpace.relative(1920, 1080)
    x, y = space.to_viewport(235, 512)
    assert (round(x), round(y)) == (451, 553)
    assert space.image_size == (1920, 1080)
    assert (space.model_width, space.model_height) == (1000, 1000)


def test_smart_resize_space():
    space = CoordinateSpace.smart_resize(1920, 1080)
    assert (space.model_width, space.model_height) == (1932, 1092)
    assert space.image_size == (1932, 1092)
    assert space.to_viewport(1932, 1092) == (1920, 1080)


def test_device_pixel_ratio_2():
    space = CoordinateSpace.absolute(1280, 720, dpr=2)
    assert (space.model_width, space.model_height) == (2560, 1440)
    assert space.image_size == (2560, 1440)
    assert space.to_viewport(1000, 600) == (500, 300)
    assert space.from_viewport(500, 300) == (1000, 600)
    # UI-TARS-1.5 on a HiDPI screenshot: the model sees smart_resize(2560x1440) = 2548x1428
    sr = CoordinateSpace.smart_resize(1280, 720, dpr=2)
    assert (sr.model_width, sr.model_height) == (2548, 1428)
    assert sr.to_viewport(2548, 1428) == (1280, 720)


def test_contains_and_with_viewport():
    space = CoordinateSpace.absolute(800, 600)
    assert space.contains_model_point(800, 600) and not space.contains_model_point(801, 0)
    bigger = space.with_viewport(1024, 768)
    assert (bigger.kind, bigger.model_width, bigger.model_height) == ("absolute", 1024, 768)
    rel = CoordinateSpace.relative(800, 600, scale=100).with_viewport(1024, 768)
    assert (rel.kind, rel.model_width) == ("relative", 100)
    sr = CoordinateSpace.smart_resize(1280, 720).with_viewport(1920, 1080)
    assert (sr.model_width, sr.model_height) == (1932, 1092)


SPACES = [
    CoordinateSpace.absolute(1280, 720),
    CoordinateSpace.absolute(1280, 720, dpr=2),
    CoordinateSpace.relative(1920, 1080),
    CoordinateSpace.smart_resize(1920, 1080),
    CoordinateSpace.smart_resize(1024, 768, dpr=1.5),
]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: f"{s.kind}-{s.width}x{s.height}@{s.dpr}")
def test_round_trips(space):
    @settings(max_examples=100, deadline=None)
    @given(x=st.floats(0, space.width), y=st.floats(0, space.height))
    def viewport_round_trip(x, y):
        bx, by = space.to_viewport(*space.from_viewport(x, y))
        assert bx == pytest.approx(x, abs=1e-9) and by == pytest.approx(y, abs=1e-9)

    @settings(max_examples=100, deadline=None)
    @given(mx=st.integers(0, int(space.model_width)), my=st.integers(0, int(space.model_height)))
    def integer_model_points_survive_rounding(mx, my):
        fx, fy = space.from_viewport(*space.to_viewport(mx, my))
        assert (round(fx), round(fy)) == (mx, my)

    viewport_round_trip()
    integer_model_points_survive_rounding()
