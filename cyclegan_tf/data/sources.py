"""Where the two domains' images come from: a folder, TFDS ``cycle_gan`` or the synthetic set.

Every source returns a pair ``(domain_a, domain_b)`` of ``DomainData`` whose ``images`` yield
``uint8 [H, W, 3]`` tensors; ``cyclegan_tf.data.pipeline`` turns them into training batches.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import socket
import threading
import urllib.parse

import tensorflow as tf

from cyclegan_tf import io
from cyclegan_tf.data import synthetic
from cyclegan_tf.data.decode import (
    HEADER_BYTES,
    IMAGE_EXTENSIONS,
    SUSPECT,
    DataError,
    decode_image,
    header_problem,
)

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")
TFDS_BUILDER = "cycle_gan"
SYNTHETIC = "synthetic"

# How many skipped files a warning names before it says "and N more".
_MAX_NAMED = 5
# Files checked at once: the checks wait on storage (a network round trip for gs://), not the CPU.
_CHECK_THREADS = 16
_CHECKS_VERSION = 1
# How long ``load_tfds`` waits for the download host to answer before giving up.
DOWNLOAD_PROBE_TIMEOUT = 5.0


@dataclasses.dataclass(frozen=True)
class DomainData:
    """The images of one domain and split.

    Attributes:
        images: ``tf.data.Dataset`` of ``uint8 [H, W, 3]`` images, in a fixed order, finite.
        num_examples: int, how many images ``images`` yields.
        names: list of str or None, one name per image (the file stem) for folder sources, so
            outputs can be named after their sources; None for TFDS.
        files: tuple of str or None, the encoded image files in the order of ``images``: the
            training pipeline reads them by index, so it never holds the whole domain.
        fingerprint: str or None, changes when a file of ``files`` is added, removed or modified
            (names, sizes and modification times); keys the training pipeline's disk cache.
    """

    images: tf.data.Dataset
    num_examples: int
    names: list[str] | None = None
    files: tuple[str, ...] | None = None
    fingerprint: str | None = None


def _check_split(split):
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}. Received: split={split!r}")


def _layout(split):
    return f"{split}A/ and {split}B/ image folders (the published CycleGAN zip layout)"


def default_cache_dir():
    """Where cyclegan_tf keeps what it can recompute (synthetic sets, image checks).

    ``$CYCLEGAN_TF_CACHE``, else ``$XDG_CACHE_HOME/cyclegan_tf``, else ``~/.cache/cyclegan_tf``.
    """
    cache = os.environ.get("CYCLEGAN_TF_CACHE")
    if cache:
        return cache
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "cyclegan_tf")


def _file_problem(path, size):
    """None if ``path`` is a readable image, else why not; decodes only files that end oddly."""
    try:
        with io.open_file(path, "rb") as f:
            head = f.read(HEADER_BYTES)
            f.seek(max(size - HEADER_BYTES, 0))
            tail = f.read(HEADER_BYTES)
    except (OSError, tf.errors.OpError) as error:
        return f"cannot read ({type(error).__name__})"
    problem = header_problem(head, tail, size)
    if problem != SUSPECT:
        return problem
    try:
        decode_image(tf.io.read_file(path))
    except tf.errors.OpError:
        return "does not decode"
    return None


class _CheckRecord:
    """The remembered checks of one folder, in a small JSON file of ``cache_dir``.

    Each file name maps to ``[size, mtime_ns, problem]``; an entry counts only while the file keeps
    its size and modification time, so a changed or new file is checked again.
    """

    def __init__(self, folder, cache_dir):
        self.folder = folder
        self.path = None
        if cache_dir:
            key = hashlib.sha1(io.absolute(folder).encode()).hexdigest()[:20]
            self.path = io.join(cache_dir, "image_checks", f"{key}.json")

    def load(self):
        if self.path is None:
            return {}
        try:
            record = json.loads(io.read_text(self.path))
        except (OSError, ValueError, tf.errors.OpError):
            return {}
        if record.get("version") != _CHECKS_VERSION or record.get("folder") != self.folder:
            return {}
        return record.get("files", {})

    def save(self, files):
        if self.path is None:
            return
        record = {"version": _CHECKS_VERSION, "folder": self.folder, "files": files}
        try:
            io.write_text(self.path, json.dumps(record))
        except (
            OSError,
            tf.errors.OpError,
        ) as error:  # A read-only cache costs the checks next time.
            logger.debug("Could not remember the image checks in %s: %s", self.path, error)


def _checked(folder, entries, cache_dir):
    """``{name: problem or None}`` for ``entries``, from the record where it is still valid."""
    record = _CheckRecord(folder, cache_dir)
    remembered = record.load()
    results, to_check = {}, []
    for name, size, mtime in entries:
        known = remembered.get(name)
        if known is not None and known[:2] == [size, mtime]:
            results[name] = known[2]
        else:
            to_check.append((name, size))
    if to_check:
        with concurrent.futures.ThreadPoolExecutor(_CHECK_THREADS) as pool:
            problems = pool.map(
                lambda item: _file_problem(io.join(folder, item[0]), item[1]), to_check
            )
            results.update(zip((name for name, _ in to_check), problems))
        logger.debug("Checked %d of %d files in %s.", len(to_check), len(entries), folder)
    if to_check or len(remembered) != len(entries):
        record.save({name: [size, mtime, results[name]] for name, size, mtime in entries})
    return results


def _fingerprint(folder, entries):
    digest = hashlib.sha1(folder.encode())
    for name, size, mtime in entries:
        digest.update(f"\0{name}\0{size}\0{mtime}".encode())
    return digest.hexdigest()[:20]


def _name_some(names):
    named = ", ".join(names[:_MAX_NAMED])
    if len(names) > _MAX_NAMED:
        named += f" and {len(names) - _MAX_NAMED} more"
    return named


def load_image_folder(folder, check_cache_dir=None):
    """Loads the images directly inside one folder, skipping (and reporting) unreadable files.

    Files are checked without decoding them: the first and last bytes must be those of a JPEG,
    PNG, BMP or GIF file; only a file that starts like an image but ends oddly (a truncated
    download) is decoded to decide. The results are remembered per folder in
    ``check_cache_dir/image_checks/`` by file name, size and modification time, so a repeated or
    resumed run checks only new and changed files. A file that passes the check but still fails to
    decode is dropped by the training pipeline with a warning (``pipeline.make_train_dataset``).

    Args:
        folder: str, a local folder or a ``tf.io.gfile`` URL (``gs://``, ``ram://``).
        check_cache_dir: str or None, where the checks are remembered; None:
            ``default_cache_dir()``; ``""``: nowhere.

    Returns:
        ``DomainData`` in file-name order, with ``files`` and ``fingerprint``.

    Raises:
        DataError: if the folder holds no readable image.
    """
    if check_cache_dir is None:
        check_cache_dir = default_cache_dir()
    entries = io.list_file_stats(folder, IMAGE_EXTENSIONS)
    problems = _checked(folder, entries, check_cache_dir)
    skipped = [f"{name} ({problems[name]})" for name, _, _ in entries if problems[name]]
    kept = [entry for entry in entries if not problems[entry[0]]]
    if skipped:
        logger.warning(
            "Skipped %d of %d files in %s that are not readable images: %s.",
            len(skipped),
            len(entries),
            folder,
            _name_some(skipped),
        )
    if not kept:
        found = f" ({len(skipped)} unreadable)" if skipped else ""
        raise DataError(f"no readable image (jpg, jpeg, png, bmp, gif) in {folder}{found}")
    files = tuple(io.join(folder, name) for name, _, _ in kept)
    images = tf.data.Dataset.from_tensor_slices(tf.constant(files, dtype=tf.string)).map(
        lambda path: decode_image(tf.io.read_file(path)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    names = [io.stem(name) for name, _, _ in kept]
    return DomainData(
        images=images,
        num_examples=len(files),
        names=names,
        files=files,
        fingerprint=_fingerprint(folder, kept),
    )


def load_folder(data_dir, split="train", check_cache_dir=None):
    """Loads ``data_dir/{split}A`` and ``data_dir/{split}B``.

    This is the layout of the published CycleGAN zips (``apple2orange/trainA`` …). Files that are
    not readable images (empty, truncated, not an image) are skipped with one warning per domain
    (see ``load_image_folder``).

    Args:
        data_dir: str, the folder holding ``trainA/ trainB/ testA/ testB/`` (local or a
            ``tf.io.gfile`` URL).
        split: str, ``"train"`` or ``"test"``. Defaults to ``"train"``.
        check_cache_dir: str or None, where the file checks are remembered (see
            ``load_image_folder``).

    Returns:
        ``(domain_a, domain_b)``, two ``DomainData`` in file-name order.

    Raises:
        DataError: if the folder or a domain folder is missing, or a domain has no readable image.
    """
    _check_split(split)
    if not io.isdir(data_dir):
        raise DataError(f"data folder not found: {data_dir} (expected {_layout(split)})")
    domains = []
    for domain in ("A", "B"):
        folder = io.join(data_dir, f"{split}{domain}")
        if not io.isdir(folder):
            raise DataError(f"missing folder {folder}: {data_dir} must hold {_layout(split)}")
        domains.append(load_image_folder(folder, check_cache_dir))
    return tuple(domains)


def tfds_configs():
    """The config names of the TFDS ``cycle_gan`` builder (``apple2orange``, …)."""
    import tensorflow_datasets as tfds

    builder_cls = tfds.builder_cls(TFDS_BUILDER)
    return [config.name for config in builder_cls.BUILDER_CONFIGS]


def _download_host(name):
    """``(host, port)`` the ``cycle_gan`` builder downloads ``name`` from, or None if unknown."""
    try:
        from tensorflow_datasets.image_classification import cycle_gan
    except ImportError:
        return None
    url = getattr(cycle_gan, "_DL_URLS", {}).get(name)
    if not url:
        return None
    parsed = urllib.parse.urlsplit(url)
    return parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)


def _unreachable(host, port, timeout):
    """Why ``host:port`` cannot be reached within ``timeout`` seconds, or None if it answers.

    Name resolution has no timeout of its own, so the probe runs in a daemon thread and is
    abandoned (not waited for) when it takes too long.
    """
    outcome = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(error.strerror or type(error).__name__)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"no answer within {timeout:g} s"
    return outcome[0]


def _uses_proxy():
    return any(os.environ.get(name) for name in ("https_proxy", "HTTPS_PROXY", "all_proxy"))


def _check_download_host(name, timeout):
    """Raises a one-line ``DataError`` at once when the download host is unreachable.

    TFDS retries a failed download ten times with exponential backoff (about 3.5 minutes offline);
    a direct connection attempt tells within ``timeout`` seconds. Skipped behind a proxy, where
    only the proxy can tell.
    """
    address = _download_host(name)
    if address is None or _uses_proxy():
        return
    reason = _unreachable(*address, timeout)
    if reason is not None:
        raise DataError(
            f"could not download TFDS {TFDS_BUILDER}/{name}: cannot reach "
            f"{address[0]}:{address[1]} ({reason}); use --data-dir DIR with {_layout('train')}, "
            f"or --dataset {SYNTHETIC}"
        )


def _export_files(builder, split_name, files_dir):
    """Writes the encoded images of a TFDS split as files, once; returns their folder.

    The training pipeline reads images by index, which TFRecord shards cannot do, so the encoded
    bytes are copied (not decoded) to ``files_dir/cycle_gan/<config>/<version>/<split>``. The
    marker records the example count; a copy whose count differs from TFDS's is written again.
    """
    import tensorflow_datasets as tfds

    folder = io.join(
        files_dir, TFDS_BUILDER, builder.builder_config.name, str(builder.version), split_name
    )
    examples = builder.as_dataset(
        split=split_name, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()}
    )
    expected = int(examples.cardinality())
    marker = io.join(folder, _EXPORT_MARKER)
    if io.exists(marker) and json.loads(io.read_text(marker)).get("examples") == expected:
        return folder
    io.rmtree(folder)  # An outdated or interrupted copy.
    staging = io.temporary_sibling(folder)
    io.makedirs(staging)
    try:
        count = 0
        for count, example in enumerate(examples.as_numpy_iterator(), start=1):
            contents = example["image"]
            extension = ".jpg" if contents.startswith(b"\xff\xd8") else ".png"
            with io.open_file(io.join(staging, f"{count:06d}{extension}"), "wb") as f:
                f.write(contents)
        with io.open_file(io.join(staging, _EXPORT_MARKER), "w") as f:
            f.write(json.dumps({"examples": count}))
        io.move(staging, folder, last_file=_EXPORT_MARKER)
    finally:
        io.rmtree(staging)
    return folder


_EXPORT_MARKER = "exported.json"


def load_tfds(
    name="apple2orange",
    split="train",
    data_dir=None,
    files_dir=None,
    probe_timeout=DOWNLOAD_PROBE_TIMEOUT,
):
    """Loads ``cycle_gan/<name>`` from TensorFlow Datasets, downloading it on first use.

    On first use the encoded images of the split are also copied to files (``files_dir``) for
    the training pipeline, which reads images by index.

    Args:
        name: str, a config of the ``cycle_gan`` builder. Defaults to ``"apple2orange"``.
        split: str, ``"train"`` or ``"test"`` (the builder's ``trainA``/``trainB`` or
            ``testA``/``testB``). Defaults to ``"train"``.
        data_dir: str or None, where TFDS keeps its data (None: TFDS's default,
            ``~/tensorflow_datasets``). Not the folder layout of ``load_folder``.
        files_dir: str or None, where the image files are copied; None:
            ``default_cache_dir()/tfds_files``.
        probe_timeout: float or None, seconds to wait for the download host before a download;
            None skips the probe (under ``tfds.testing.mock_data``, which downloads nothing).

    Returns:
        ``(domain_a, domain_b)``, two ``DomainData`` with ``names=None``.

    Raises:
        DataError: if ``name`` is not a config of the builder, the download host cannot be
            reached within ``probe_timeout`` seconds, or the download or preparation fails.
    """
    import tensorflow_datasets as tfds

    _check_split(split)
    configs = tfds_configs()
    if name not in configs:
        raise DataError(
            f"unknown dataset {name!r}; expected one of {', '.join(configs)} "
            f"(TFDS {TFDS_BUILDER}) or {SYNTHETIC!r}"
        )
    builder = tfds.builder(f"{TFDS_BUILDER}/{name}", data_dir=data_dir)
    try:
        if probe_timeout is not None and not builder.is_prepared():
            _check_download_host(name, probe_timeout)
        builder.download_and_prepare()
    except DataError:
        raise
    except Exception as error:  # Network, quota, checksum, missing extra: all mean "no data".
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(
            f"could not download or prepare TFDS {TFDS_BUILDER}/{name} ({reason}); "
            f"use --data-dir DIR with {_layout('train')}, or --dataset {SYNTHETIC}"
        ) from error
    files_dir = files_dir or io.join(default_cache_dir(), "tfds_files")
    domains = []
    for domain in ("A", "B"):
        folder = _export_files(builder, f"{split}{domain}", files_dir)
        domains.append(dataclasses.replace(load_image_folder(folder, ""), names=None))
    return tuple(domains)


def default_synthetic_dir(size, n_train, n_test, seed):
    """Where ``load_synthetic`` keeps a synthetic set when no folder is given.

    ``default_cache_dir()`` joined with a folder name made of the parameters, so each parameter set has its own folder.
    """
    name = f"synthetic_fruit_{size}px_train{n_train}_test{n_test}_seed{seed}"
    return io.join(default_cache_dir(), name)


def load_synthetic(root=None, split="train", image_size=128, n_train=200, n_test=40, seed=0):
    """Loads the built-in synthetic apples (A) and oranges (B), writing them first if needed.

    Args:
        root: str or None, the folder of the set; None: ``default_synthetic_dir(...)``.
        split: str, ``"train"`` or ``"test"``. Defaults to ``"train"``.
        image_size: int, side of the square images in pixels. Defaults to 128.
        n_train: int, training images per domain. Defaults to 200.
        n_test: int, test images per domain. Defaults to 40.
        seed: int, seed of the drawing (the same seed gives the same files). Defaults to 0.

    Returns:
        ``(domain_a, domain_b)`` as ``load_folder`` returns them.

    Raises:
        DataError: if ``root`` holds something other than this synthetic set.
    """
    if root is None:
        root = default_synthetic_dir(image_size, n_train, n_test, seed)
    synthetic.write_synthetic_dataset(
        root, size=image_size, n_train=n_train, n_test=n_test, seed=seed
    )
    return load_folder(root, split)


def load_domains(
    dataset=None,
    data_dir=None,
    split="train",
    *,
    seed=0,
    tfds_data_dir=None,
    synthetic_size=128,
    synthetic_n_train=200,
    synthetic_n_test=40,
):
    """Loads both domains from the source the options name.

    ============================  ==============================================================
    ``data_dir`` given            ``load_folder(data_dir)`` (``dataset`` is ignored), except:
    ``dataset="synthetic"``       ``load_synthetic`` (into ``data_dir`` when given, else a cache)
    any other ``dataset``         ``load_tfds(dataset)``, a ``cycle_gan`` config
    ============================  ==============================================================

    Args:
        dataset: str or None, a TFDS ``cycle_gan`` config or ``"synthetic"``.
        data_dir: str or None, a folder in the published zip layout.
        split: str, ``"train"`` or ``"test"``. Defaults to ``"train"``.
        seed: int, seed of the synthetic set (other sources ignore it). Defaults to 0.
        tfds_data_dir: str or None, where TFDS keeps its data.
        synthetic_size: int, side of the synthetic images. Defaults to 128.
        synthetic_n_train: int, synthetic training images per domain. Defaults to 200.
        synthetic_n_test: int, synthetic test images per domain. Defaults to 40.

    Returns:
        ``(domain_a, domain_b)``, two ``DomainData``.

    Raises:
        DataError: if neither source is given, or the source fails (see the loaders).
    """
    _check_split(split)
    if dataset == SYNTHETIC:
        return load_synthetic(
            data_dir,
            split,
            image_size=synthetic_size,
            n_train=synthetic_n_train,
            n_test=synthetic_n_test,
            seed=seed,
        )
    if data_dir is not None:
        return load_folder(data_dir, split)
    if not dataset:
        raise DataError(
            "no data source: give a folder (--data-dir DIR) or a dataset "
            f"(--dataset {SYNTHETIC} or a TFDS {TFDS_BUILDER} config such as apple2orange). "
            f"Received: dataset={dataset!r}, data_dir={data_dir!r}"
        )
    return load_tfds(dataset, split, data_dir=tfds_data_dir)
