"""A built-in synthetic apples-and-oranges set, drawn procedurally, for offline runs and tests.

Domain A holds red or red-green apples (a stem dimple, a stem, sometimes a leaf, streaks and a
highlight); domain B holds textured oranges (a pitted peel, a navel or a stem scar, a speckled
highlight). Both sit on muted backgrounds (flat, gradients or a table against a wall) with a soft
shadow, at varied sizes and positions, sometimes with a second fruit behind or an object in front.

Backgrounds and occluders are kept below 0.25 saturation so that ``hue_statistic`` sees only the
fruit: about 0° for apples and about 28° for oranges.

The set is written in the published CycleGAN layout (``trainA`` apples, ``trainB`` oranges,
``testA``, ``testB``) as JPEG files, and is a pure function of its parameters: the same seed gives
the same bytes.

Example:
    ```
    cyclegan-synthetic --out /tmp/fruit --size 128 --n-train 200 --n-test 40
    ```
"""

import concurrent.futures
import io as bytes_io
import json
import logging
import os

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from cyclegan_tf import io
from cyclegan_tf.data.decode import DataError

logger = logging.getLogger(__name__)

MARKER = "synthetic_fruit.json"
_FORMAT = "cyclegan_tf synthetic fruit"
_VERSION = 1
_SUPERSAMPLE = 2  # Drawn at twice the size and box-filtered: cheap anti-aliasing.
DOMAINS = {"A": "apple", "B": "orange"}
_SPLIT_CODES = {"train": 0, "test": 1}
_KIND_CODES = {"apple": 0, "orange": 1}

# The pixels ``hue_statistic`` reads: saturated, not dark, and warm (red to yellow).
MIN_SATURATION = 0.35
MIN_VALUE = 0.25
# Backgrounds and occluders are drawn below this saturation.
MAX_BACKGROUND_SATURATION = 0.25
_WARM_HUES = (300.0, 60.0)


def _hsv_to_rgb(h, s, v):
    """Vectorized HSV → RGB; ``h`` in turns [0, 1), all arrays broadcast, output [..., 3]."""
    h, s, v = np.broadcast_arrays(
        np.asarray(h, np.float32), np.asarray(s, np.float32), np.asarray(v, np.float32)
    )
    k = (np.array([5.0, 3.0, 1.0], np.float32) + h[..., None] * 6.0) % 6.0
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _rgb_to_hue_sat_val(rgb):
    """Hue in degrees [0, 360), saturation and value of float RGB in [0, 1], shape [..., 3]."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(axis=-1)
    chroma = value - rgb.min(axis=-1)
    saturation = np.where(value > 0, chroma / np.maximum(value, 1e-12), 0.0)
    safe = np.maximum(chroma, 1e-12)
    hue = np.where(
        value == r,
        ((g - b) / safe) % 6.0,
        np.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    return (hue * 60.0) % 360.0, saturation, value


def hue_statistic(images):
    """The mean hue of the fruit pixels of uint8 RGB images, in degrees in (-180, 180].

    Only saturated (> 0.35), not dark (value > 0.25), warm (hue within 60° of red) pixels count:
    the synthetic backgrounds and occluders are muted, and green leaves or patches are left out,
    so the number measures "how red versus how orange the fruit is". The mean is circular and
    returned signed so that reds near 0°/360° average to about 0 rather than 180: apples give
    about 0°, oranges about 28°.

    Args:
        images: ``uint8`` array-like of shape ``[H, W, 3]`` or ``[N, H, W, 3]`` (for example
            generator outputs mapped from [-1, 1] with ``decode.image_to_uint8``).

    Returns:
        float, the circular mean hue in degrees, or ``nan`` if no pixel qualifies.

    Raises:
        ValueError: if the images are not ``uint8`` with 3 channels.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim < 3 or images.shape[-1] != 3:
        raise ValueError(
            "hue_statistic expects uint8 RGB images [..., H, W, 3]. "
            f"Received: dtype={images.dtype}, shape={images.shape}"
        )
    hue, _, _ = _rgb_to_hue_sat_val(images.reshape(-1, 3).astype(np.float32) / 255.0)
    mask = fruit_mask(images).reshape(-1)
    if not mask.any():
        return float("nan")
    angles = np.deg2rad(hue[mask])
    return float(np.rad2deg(np.arctan2(np.sin(angles).mean(), np.cos(angles).mean())))


def fruit_mask(images):
    """Where ``hue_statistic`` looks: saturated, not dark, warm pixels (the fruit), ``[..., H, W]``.

    Args:
        images: ``uint8`` array ``[..., H, W, 3]``.

    Returns:
        bool array of the images' shape without the channel axis.
    """
    hue, saturation, value = _rgb_to_hue_sat_val(np.asarray(images, np.float32) / 255.0)
    warm = (hue >= _WARM_HUES[0]) | (hue < _WARM_HUES[1])
    return (saturation > MIN_SATURATION) & (value > MIN_VALUE) & warm


def background_mask(images):
    """The muted pixels of the synthetic backgrounds (saturation below 0.25), ``[..., H, W]``.

    Args:
        images: ``uint8`` array ``[..., H, W, 3]``.

    Returns:
        bool array of the images' shape without the channel axis.
    """
    _, saturation, _ = _rgb_to_hue_sat_val(np.asarray(images, np.float32) / 255.0)
    return saturation < MAX_BACKGROUND_SATURATION


def _smooth_noise(rng, n, cells):
    """Smooth noise in about [0, 1], ``n``×``n``, with ``cells`` random values across."""
    cells = max(2, int(cells))
    small = rng.random((cells, cells), dtype=np.float32)
    return np.asarray(Image.fromarray(small, mode="F").resize((n, n), Image.BICUBIC))


def _muted_color(rng, min_value=0.3, max_value=0.95):
    """An RGB color of low saturation (≤ 0.22), so that it never counts as fruit."""
    return _hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.22), rng.uniform(min_value, max_value))


def _background(rng, n, yy, xx):
    """A muted background; returns ``(rgb [n, n, 3], horizon)`` (horizon as a fraction)."""
    kind = rng.choice(3, p=[0.25, 0.35, 0.4])
    horizon = 1.0
    if kind == 0:  # Flat, with a soft vignette.
        rgb = np.broadcast_to(_muted_color(rng), (n, n, 3)).copy()
        vignette = 1.0 - 0.25 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
        rgb *= vignette[..., None]
    elif kind == 1:  # A linear gradient between two muted colors.
        angle = rng.uniform(0, 2 * np.pi)
        t = np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        rgb = _muted_color(rng) * (1 - t[..., None]) + _muted_color(rng) * t[..., None]
    else:  # A table against a wall: wood-like grain below the horizon.
        horizon = rng.uniform(0.45, 0.8)
        wall = _muted_color(rng, 0.5, 0.95) * (1.0 - 0.15 * yy[..., None])
        table = _muted_color(rng, 0.25, 0.8)
        frequency, wobble, phase = rng.uniform(40, 120), rng.uniform(2, 6), rng.uniform(0, 6.3)
        grain = 1.0 + 0.05 * np.sin(yy * frequency + 0.6 * np.sin(xx * wobble + phase))
        depth = 0.85 + 0.3 * (yy - horizon) / max(1.0 - horizon, 1e-3)
        table_rgb = table * (grain * depth)[..., None]
        rgb = np.where((yy < horizon)[..., None], wall, table_rgb)
    texture = _smooth_noise(rng, n, rng.integers(4, 12)) - 0.5
    rgb = rgb * (1.0 + 0.08 * texture[..., None])
    rgb = rgb + rng.normal(0.0, 0.012, (n, n, 1)).astype(np.float32)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32), horizon


def _add_shadow(canvas, yy, xx, cx, cy, r, n):
    """Darkens a soft ellipse under a fruit (coordinates in pixels)."""
    dx = (xx * n - cx) / (1.1 * r)
    dy = (yy * n - (cy + 0.85 * r)) / (0.3 * r)
    canvas *= (1.0 - 0.4 * np.exp(-(dx * dx + dy * dy)))[..., None]


def _angle_diff(a, b):
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def _render_body(rng, canvas, kind, cx, cy, r, light):
    """Draws a shaded apple or orange body into ``canvas`` (in place); returns its stem point."""
    n = canvas.shape[0]
    pad = int(1.3 * r) + 2
    y0, y1 = max(0, int(cy) - pad), min(n, int(cy) + pad)
    x0, x1 = max(0, int(cx) - pad), min(n, int(cx) + pad)
    if y0 >= y1 or x0 >= x1:
        return cx, cy - r
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = (xs - cx) / r, (ys - cy) / r
    rho = np.sqrt(dx * dx + dy * dy)
    phi = np.arctan2(dy, dx)
    wobble = sum(
        rng.uniform(0.005, 0.02) * np.cos(k * phi + rng.uniform(0, 6.3)) for k in (3, 4, 5)
    )
    tilt = rng.uniform(-0.3, 0.3)
    top = -np.pi / 2 + tilt
    if kind == "apple":
        # Wider shoulders, a narrower base and a notch where the stem sits.
        boundary = 1.0 + 0.06 * np.cos(2 * phi) - 0.05 * np.sin(phi) + wobble
        boundary = boundary - 0.11 * np.exp(-((_angle_diff(phi, top) / 0.35) ** 2))
    else:
        boundary = 1.0 + 0.03 * np.cos(2 * (phi - rng.uniform(0, 3.2))) + 0.5 * wobble
    u = rho / boundary
    inside = u < 1.0
    nx, ny = dx / boundary, dy / boundary
    nz = np.sqrt(np.clip(1.0 - u * u, 0.0, 1.0))
    lambert = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0.0, 1.0)
    shade = 0.3 + 0.7 * lambert
    half = light + np.array([0.0, 0.0, 1.0], np.float32)
    half /= np.linalg.norm(half)
    specular = np.clip(nx * half[0] + ny * half[1] + nz * half[2], 0.0, 1.0) ** 40
    if kind == "apple":  # At the bottom of the notch.
        stem_r = 0.92 * (1.0 + 0.06 * np.cos(2 * top) - 0.05 * np.sin(top) - 0.11)
    else:
        stem_r = 0.88
    stem = (cx + r * stem_r * np.cos(top), cy + r * stem_r * np.sin(top))
    view = y1 - y0, x1 - x0
    if kind == "apple":
        hue = (rng.normal(0.0, 0.012)) % 1.0
        saturation = np.full(view, rng.uniform(0.75, 0.95), np.float32)
        value = rng.uniform(0.55, 0.85)
        # Streaks that run away from the stem.
        theta = np.arctan2(ys - stem[1], xs - stem[0])
        streaks = np.sin(theta * rng.uniform(18, 30) + rng.uniform(0, 6.3))
        blotches = _smooth_noise(rng, max(view), 5)[: view[0], : view[1]]
        value = value * (1.0 + 0.05 * streaks * blotches + 0.1 * (blotches - 0.5))
        rgb = _hsv_to_rgb(hue, saturation, value * shade)
        if rng.random() < 0.4:  # A yellow-green patch with a sharp edge (red-green apples).
            angle = rng.uniform(0, 2 * np.pi)
            field = np.cos(angle) * dx + np.sin(angle) * dy + 0.6 * (rng.random() - 0.5)
            patch = 1.0 / (1.0 + np.exp(-(field - rng.uniform(0.45, 0.75)) * 25.0))
            green = _hsv_to_rgb(rng.uniform(0.2, 0.26), rng.uniform(0.55, 0.75), 0.85 * shade)
            rgb = rgb * (1 - patch[..., None]) + green * patch[..., None]
        dimple = np.exp(-(((xs - stem[0]) ** 2 + (ys - stem[1]) ** 2) / (0.2 * r) ** 2))
        rgb = rgb * (1.0 - 0.45 * dimple)[..., None]
        gloss = 0.75 * specular
    else:
        hue = rng.uniform(0.068, 0.088)
        saturation = np.full(view, rng.uniform(0.85, 1.0), np.float32)
        value = rng.uniform(0.8, 1.0)
        pits = _smooth_noise(rng, max(view), max(view) / rng.uniform(2.0, 3.0))[
            : view[0], : view[1]
        ]
        pitted = np.clip((pits - 0.55) * 4.0, 0.0, 1.0)
        value = value * (1.0 - 0.14 * pitted)
        if rng.random() < 0.55:  # A navel: a dark puckered spot facing the viewer.
            px, py = cx + r * rng.uniform(-0.35, 0.35), cy + r * rng.uniform(-0.2, 0.35)
            d2 = ((xs - px) ** 2 + (ys - py) ** 2) / (rng.uniform(0.07, 0.12) * r) ** 2
            rays = 0.5 + 0.5 * np.sin(8 * np.arctan2(ys - py, xs - px))
            value = value * (1.0 - 0.45 * np.exp(-d2) * (0.6 + 0.4 * rays))
        else:  # The stem scar: a small olive dot.
            d2 = ((xs - stem[0]) ** 2 + (ys - stem[1]) ** 2) / (0.06 * r) ** 2
            saturation = saturation * (1.0 - 0.5 * np.exp(-d2))
            value = value * (1.0 - 0.5 * np.exp(-d2))
        rgb = _hsv_to_rgb(hue, saturation, value * shade)
        gloss = 0.45 * specular * (1.0 - pitted)
    rgb = rgb * (1.0 - gloss[..., None]) + gloss[..., None]
    region = canvas[y0:y1, x0:x1]
    region[inside] = np.clip(rgb[inside], 0.0, 1.0)
    return stem


def _draw_stem_and_leaf(rng, draw, kind, stem, r, with_leaf):
    """Draws a stem (apples) and maybe a leaf with ImageDraw; colors stay out of the statistic."""
    sx, sy = stem
    if kind == "apple":
        bend = rng.uniform(-0.25, 0.25) * r
        tip = (sx + bend, sy - rng.uniform(0.25, 0.4) * r)
        middle = (sx + 0.3 * bend, sy - 0.18 * r)
        brown = tuple(int(255 * c) for c in _hsv_to_rgb(0.08, 0.45, rng.uniform(0.12, 0.22)))
        draw.line([(sx, sy), middle, tip], fill=brown, width=max(2, int(0.07 * r)))
        base = middle
    else:
        base = (sx, sy)
    if not with_leaf:
        return
    angle = rng.uniform(-2.6, -0.5)
    length, width = rng.uniform(0.35, 0.55) * r, rng.uniform(0.12, 0.2) * r
    t = np.linspace(0.0, 1.0, 12)
    along, across = t * length, width * np.sin(np.pi * t) * (1.0 - 0.3 * t)
    ca, sa = np.cos(angle), np.sin(angle)
    side1 = [(base[0] + a * ca - w * sa, base[1] + a * sa + w * ca) for a, w in zip(along, across)]
    side2 = [(base[0] + a * ca + w * sa, base[1] + a * sa - w * ca) for a, w in zip(along, across)]
    green = _hsv_to_rgb(rng.uniform(0.25, 0.33), rng.uniform(0.5, 0.8), rng.uniform(0.35, 0.6))
    draw.polygon(side1 + side2[::-1], fill=tuple(int(255 * c) for c in green))
    rib = tuple(int(255 * min(1.0, c * 1.3)) for c in green)
    draw.line([base, (base[0] + length * ca, base[1] + length * sa)], fill=rib, width=1)


def _occluder(rng, draw, n, cx, cy, r):
    """A muted object in front of the lower part of the fruit (a bowl rim, a napkin)."""
    color = tuple(int(255 * c) for c in _muted_color(rng, 0.3, 0.9))
    top = cy + rng.uniform(0.3, 0.7) * r
    if rng.random() < 0.5:
        draw.ellipse([cx - 2.2 * r, top, cx + 2.2 * r, top + 2.5 * r], fill=color)
    else:
        left = cx + rng.uniform(-1.5, 0.2) * r
        draw.rectangle([left, top, left + rng.uniform(1.0, 2.5) * r, n], fill=color)


def render_fruit(kind, size, rng):
    """Draws one synthetic apple or orange photograph.

    Args:
        kind: str, ``"apple"`` or ``"orange"``.
        size: int, side of the square image in pixels.
        rng: ``np.random.Generator``, the only source of randomness.

    Returns:
        ``np.ndarray`` of dtype ``uint8`` and shape ``[size, size, 3]``.

    Raises:
        ValueError: if ``kind`` is neither.
    """
    if kind not in _KIND_CODES:
        raise ValueError(f"kind must be one of {', '.join(_KIND_CODES)}. Received: kind={kind!r}")
    n = size * _SUPERSAMPLE
    # The background is smooth: drawn at the output size and repeated, it costs a quarter.
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    canvas, horizon = _background(rng, size, yy, xx)
    canvas = np.repeat(np.repeat(canvas, _SUPERSAMPLE, axis=0), _SUPERSAMPLE, axis=1)
    yy, xx = (np.mgrid[0:n, 0:n].astype(np.float32) + 0.5) / n
    light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.75, -0.2), 0.0], np.float32)
    light[2] = np.sqrt(max(0.05, 1.0 - light[0] ** 2 - light[1] ** 2))
    light /= np.linalg.norm(light)

    r = rng.uniform(0.2, 0.38) * n
    cx = rng.uniform(0.75 * r, n - 0.75 * r)
    if horizon < 1.0:  # Resting on the table: the bottom a little below the horizon.
        cy = min(horizon * n + rng.uniform(-0.6, 0.4) * r, n - 0.6 * r)
    else:
        cy = rng.uniform(0.75 * r, n - 0.75 * r)
    fruits = [(cx, cy, r)]
    if rng.random() < 0.25:  # A second, smaller fruit behind.
        r2 = r * rng.uniform(0.6, 0.9)
        side = rng.choice([-1.0, 1.0])
        fruits.insert(
            0, (cx + side * rng.uniform(1.0, 1.6) * r, cy - rng.uniform(0.0, 0.5) * r, r2)
        )

    for fx, fy, fr in fruits:
        _add_shadow(canvas, yy, xx, fx, fy, fr, n)
        stem = _render_body(rng, canvas, kind, fx, fy, fr, light)
        image = Image.fromarray((canvas * 255.0 + 0.5).astype(np.uint8))
        leaf = rng.random() < (0.45 if kind == "apple" else 0.15)
        _draw_stem_and_leaf(rng, ImageDraw.Draw(image), kind, stem, fr, leaf)
        canvas = np.asarray(image, np.float32) / 255.0
    if rng.random() < 0.2:
        _occluder(rng, ImageDraw.Draw(image), n, cx, cy, r)
    return np.asarray(image.reduce(_SUPERSAMPLE))


def _image_rng(seed, split, kind, index):
    # Keyed by (seed, split, kind, index): image i is the same whatever n_train/n_test are.
    return np.random.default_rng([seed, _SPLIT_CODES[split], _KIND_CODES[kind], index])


def _parameters(size, n_train, n_test, seed):
    return {
        "format": _FORMAT,
        "version": _VERSION,
        "size": size,
        "n_train": n_train,
        "n_test": n_test,
        "seed": seed,
    }


def _check_parameters(size, n_train, n_test, seed):
    for name, value, minimum in (
        ("size", size, 16),
        ("n_train", n_train, 1),
        ("n_test", n_test, 1),
    ):
        if not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer. Received: seed={seed!r}")


def _read_marker(out_dir):
    try:
        return json.loads(io.read_text(io.join(out_dir, MARKER)))
    except Exception:  # noqa: BLE001 - missing or unreadable: not a synthetic set
        return None


def _write_image(path, kind, size, rng):
    buffer = bytes_io.BytesIO()
    Image.fromarray(render_fruit(kind, size, rng)).save(buffer, "JPEG", quality=92)
    io.write_bytes(path, buffer.getvalue())


def _write_files(folder, size, n_train, n_test, seed):
    jobs = []
    for split, count in (("train", n_train), ("test", n_test)):
        for domain, kind in DOMAINS.items():
            subfolder = io.join(folder, f"{split}{domain}")
            io.makedirs(subfolder)
            for index in range(count):
                path = io.join(subfolder, f"{kind}_{index + 1:04d}.jpg")
                jobs.append((path, kind, size, _image_rng(seed, split, kind, index)))
    # Each image has its own generator, so threads change the speed and not the bytes; numpy and
    # Pillow release the GIL for most of the work.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for future in [pool.submit(_write_image, *job) for job in jobs]:
            future.result()


def write_synthetic_dataset(out_dir, size=128, n_train=200, n_test=40, seed=0):
    """Writes the synthetic apples (A) and oranges (B) set, unless it is already there.

    Writes ``out_dir/trainA, trainB`` (``n_train`` images each) and ``testA, testB`` (``n_test``
    each) as ``apple_0001.jpg`` … ``orange_0001.jpg`` …, then the marker ``synthetic_fruit.json``
    with the parameters. Files are drawn in a temporary sibling folder that is renamed into
    place, so an interrupted run leaves no half-written set. Existing files are never removed.

    Args:
        out_dir: str, the folder to create (it may exist if empty).
        size: int, side of the square images in pixels (>= 16). Defaults to 128.
        n_train: int, training images per domain (>= 1). Defaults to 200.
        n_test: int, test images per domain (>= 1). Defaults to 40.
        seed: int, seed of the drawing (>= 0). Defaults to 0.

    Returns:
        str, ``out_dir``.

    Raises:
        ValueError: if a parameter is out of range.
        DataError: if ``out_dir`` holds other files, or a synthetic set with other parameters.
    """
    _check_parameters(size, n_train, n_test, seed)
    parameters = _parameters(size, n_train, n_test, seed)
    out_dir = io.normalize(out_dir)
    existing = _read_marker(out_dir)
    if existing == parameters:
        logger.info("Synthetic set already in %s.", out_dir)
        return out_dir
    if existing is not None:
        raise DataError(
            f"{out_dir} holds a synthetic set with other parameters ({_describe(existing)}); "
            f"asked for {_describe(parameters)}: choose another folder"
        )
    if io.exists(out_dir) and (not io.isdir(out_dir) or io.listdir(out_dir)):
        raise DataError(
            f"{out_dir} exists and is not a synthetic set: choose a new or empty folder"
        )

    staging = io.temporary_sibling(out_dir)
    io.makedirs(staging)
    try:
        _write_files(staging, size, n_train, n_test, seed)
        io.write_text(io.join(staging, MARKER), json.dumps(parameters, indent=2, sort_keys=True))
        if io.isdir(out_dir) and not io.listdir(out_dir):
            io.rmtree(out_dir)  # Empty (checked above): the rename needs the name free.
        io.move(staging, out_dir, last_file=MARKER)
    except (OSError, tf.errors.OpError):
        io.rmtree(staging)
        if _read_marker(out_dir) == parameters:  # Another process wrote the same set first.
            return out_dir
        raise
    logger.info("Wrote a synthetic set (%s) to %s.", _describe(parameters), out_dir)
    return out_dir


def _describe(parameters):
    keys = ("size", "n_train", "n_test", "seed")
    return ", ".join(f"{key}={parameters.get(key)}" for key in keys)
