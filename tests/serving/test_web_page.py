import io
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf  # noqa: E402
from PIL import Image

from cyclegan_tf import export  # noqa: E402
from cyclegan_tf.models import resnet_generator  # noqa: E402
from cyclegan_tf.serving.process import ServerProcess  # noqa: E402
from tests.conftest import require  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


try:
    from playwright import sync_api
except ImportError:
    sync_api = None
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


def write_png(path, height, width, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG")
    return path


@pytest.fixture(scope="module", autouse=True)
def browser_available():
    require(sync_api is not None, "the [browser] extra (playwright) is not installed")
    require(CHROMIUM is not None, "no chromium browser on this machine (apt-get install chromium)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    for seed, name in enumerate(["apple2orange", "orange2apple"]):
        keras.utils.set_random_seed(seed)
        export.export_generator(resnet_generator(ngf=4, n_res_blocks=1), str(base), name)
    args = ["--max-pixels", "200x200", "--max-request-mb", "1", "--log-level", "warning"]
    with ServerProcess(str(base), args) as process:
        process.base_path = str(base)
        yield process


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(server.url + "/")
        page.wait_for_selector("#model:not([disabled])")
        yield page
        browser.close()


def upload(page, path):
    page.set_input_files("#file", str(path))


def error_shown(page, text):
    """Waits until the page's error box is visible and holds ``text``; returns the whole message."""
    page.wait_for_function(
        "text => { const box = document.getElementById('error');"
        " return !box.hidden && box.textContent.includes(text); }",
        arg=text,
    )
    return page.inner_text("#error")


def test_page_lists_the_served_models(page):
    options = page.eval_on_selector_all("#model option", "options => options.map(o => o.value)")
    assert options == ["apple2orange", "orange2apple"]


def test_empty_page_shows_no_images_and_no_download(page):
    # Runs before any upload (module order): an empty state, no broken-image placeholders.
    assert page.is_visible("#empty")
    for selector in ("#result", "#original", "#translated", "#download", "#busy"):
        assert page.is_hidden(selector), selector


def downloaded_png(page):
    """The bytes behind the Download link, fetched as the browser would save them."""
    data = page.evaluate(
        "async () => { const response = await fetch(document.getElementById('download').href);"
        " return Array.from(new Uint8Array(await response.arrayBuffer())); }"
    )
    return Image.open(io.BytesIO(bytes(data)))


def translate_bytes(server, model_name, path):
    """What the exported SavedModel's ``translate_bytes`` makes of a file, decoded."""
    loaded = tf.saved_model.load(os.path.join(server.base_path, model_name, "1"))
    with open(path, "rb") as f:
        encoded = loaded.signatures["translate_bytes"](image_bytes=tf.constant([f.read()]))
    return np.asarray(Image.open(io.BytesIO(encoded["image_bytes"].numpy()[0])))


def test_upload_shows_original_and_translation_with_download(page, server, tmp_path):
    source = write_png(tmp_path / "apple.png", 48, 64)
    upload(page, source)
    page.wait_for_function(
        "() => { const img = document.getElementById('translated');"
        " return img.complete && img.naturalWidth > 0; }"
    )
    size = page.eval_on_selector("#translated", "img => [img.naturalWidth, img.naturalHeight]")
    assert size == [64, 48]
    original = page.eval_on_selector("#original", "img => [img.naturalWidth, img.naturalHeight]")
    assert original == [64, 48]
    assert page.is_hidden("#error")
    link = page.eval_on_selector("#download", "a => [a.getAttribute('download'), a.href]")
    assert link[0] == "apple-apple2orange.png"
    assert page.is_visible("#download") and page.is_hidden("#busy") and page.is_hidden("#empty")
    downloaded = downloaded_png(page)
    assert downloaded.size == (64, 48)  # full resolution
    # The page shows exactly what the SavedModel's translate_bytes makes of the file.
    np.testing.assert_array_equal(
        np.asarray(downloaded.convert("RGB")), translate_bytes(server, "apple2orange", source)
    )
    # Both images fill their column (a 64-px image is scaled up, not left a thumbnail) and link to
    # themselves at full size.
    for image in ("#original", "#translated"):
        width, column = page.eval_on_selector(
            image, "img => [img.clientWidth, img.closest('figure').clientWidth]"
        )
        assert column - 4 <= width <= column, (image, width, column)
    assert page.get_attribute("#translated-link", "href") == link[1]

    first = link[1]
    page.select_option("#model", "orange2apple")
    page.wait_for_function(
        "first => document.getElementById('download').href.startsWith('blob:')"
        " && document.getElementById('download').href !== first",
        arg=first,
    )
    assert page.get_attribute("#download", "download") == "apple-orange2apple.png"


def test_a_portrait_phone_photo_is_translated_upright(page, tmp_path):
    from tests.conftest import jpeg_with_orientation

    stored = np.random.default_rng(2).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(jpeg_with_orientation(stored, 6))  # landscape pixels, "rotate 90 clockwise"
    upload(page, photo)
    page.wait_for_function(
        "() => { const img = document.getElementById('translated');"
        " return img.complete && img.naturalWidth > 0; }"
    )
    for image in ("#original", "#translated"):  # the browser turns the original as well
        size = page.eval_on_selector(image, "img => [img.naturalWidth, img.naturalHeight]")
        assert size == [24, 40], image
    assert downloaded_png(page).size == (24, 40)


def test_a_large_image_fits_its_column_and_shows_the_elapsed_time(page, tmp_path):
    page.evaluate(
        "() => { window.sawBusy = false; const busy = document.getElementById('busy');"
        " new MutationObserver(() => { if (!busy.hidden && / [0-9]+ s$/.test(busy.textContent))"
        " window.sawBusy = true; }).observe(busy, {attributes: true, childList: true, subtree: true});"
        " }"
    )
    upload(page, write_png(tmp_path / "wide.png", 120, 330, seed=5))
    page.wait_for_function(
        "() => (document.getElementById('download').getAttribute('download') || '')"
        ".startsWith('wide-')"
    )
    width, column = page.eval_on_selector(
        "#translated", "img => [img.clientWidth, img.closest('figure').clientWidth]"
    )
    natural = page.eval_on_selector("#translated", "img => img.naturalWidth")
    assert natural == 330 and width <= column
    assert downloaded_png(page).size == (330, 120)
    assert page.evaluate("() => window.sawBusy")  # the spinner showed the seconds elapsed
    assert page.is_hidden("#busy")


def test_a_file_that_is_not_an_image_shows_an_error(page, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("these are not pixels")
    upload(page, text)
    message = error_shown(page, "is not an image")
    assert message.startswith("Could not translate notes.png: image_bytes[0] is not an image")


def test_an_image_over_the_pixel_limit_shows_an_error(page, tmp_path):
    upload(page, write_png(tmp_path / "huge.png", 300, 250))
    assert "at most 40000 pixels" in error_shown(page, "250x300 = 75000 pixels")


def test_a_file_over_the_size_limit_is_refused_before_upload(page, tmp_path):
    big = tmp_path / "big.bmp"
    big.write_bytes(b"BM" + bytes(900_000))
    upload(page, big)
    assert "accepts images up to" in error_shown(page, "big.bmp is too large")


def test_a_dropped_image_is_translated(page, tmp_path):
    data = write_png(tmp_path / "dropped.png", 40, 24, seed=3).read_bytes()
    transfer = page.evaluate_handle(
        "bytes => { const transfer = new DataTransfer();"
        " transfer.items.add(new File([new Uint8Array(bytes)], 'dropped.png', {type: 'image/png'}));"
        " return transfer; }",
        list(data),
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_function(
        "() => (document.getElementById('download').getAttribute('download') || '')"
        ".startsWith('dropped-')"
    )
    page.wait_for_function("() => document.getElementById('translated').naturalWidth > 0")
    size = page.eval_on_selector("#translated", "img => [img.naturalWidth, img.naturalHeight]")
    assert size == [24, 40]
