"""Where the two domains' images come from: a folder, TFDS ``cycle_gan`` or the synthetic set.

Every source returns a pair ``(domain_a, domain_b)`` of ``DomainData`` whose ``images`` yield
``uint8 [H, W, 3]`` tensors; ``cyclegan_tf.data.pipeline`` turns them into training batches.
"""

import dataclasses
import logging
import os

import tensorflow as tf

from cyclegan_tf.data import synthetic
from cyclegan_tf.data.decode import DataError, decode_image, list_image_files

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")
TFDS_BUILDER = "cycle_gan"
SYNTHETIC = "synthetic"

# How many skipped files a warning names before it says "and N more".
_MAX_NAMED = 5


@dataclasses.dataclass(frozen=True)
class DomainData:
    """The images of one domain and split.

    Attributes:
        images: ``tf.data.Dataset`` of ``uint8 [H, W, 3]`` images, in a fixed order, finite.
        num_examples: int, how many images ``images`` yields.
        names: list of str or None, one name per image (the file stem) for folder sources, so
            outputs can be named after their sources; None for TFDS.
    """

    images: tf.data.Dataset
    num_examples: int
    names: list[str] | None = None


def _check_split(split):
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}. Received: split={split!r}")


def _layout(split):
    return f"{split}A/ and {split}B/ image folders (the published CycleGAN zip layout)"


def _decodable(paths):
    """The indices of ``paths`` that read and decode, using the pipeline's own decoder.

    The files are decoded in parallel inside ``tf.data``; a failing file is dropped by
    ``ignore_errors`` and missing from the result.
    """

    def decode_size(index, path):
        return index, tf.size(decode_image(tf.io.read_file(path)))

    dataset = (
        tf.data.Dataset.from_tensor_slices(tf.constant(paths, dtype=tf.string))
        .enumerate()
        .map(decode_size, num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
    )
    return {int(index) for index, _ in dataset.as_numpy_iterator()}


def _name_some(names):
    named = ", ".join(names[:_MAX_NAMED])
    if len(names) > _MAX_NAMED:
        named += f" and {len(names) - _MAX_NAMED} more"
    return named


def _folder_domain(folder):
    """Loads one image folder, skipping (and reporting) files that do not decode."""
    paths = list_image_files(folder)
    good = _decodable(paths) if paths else set()
    skipped = [os.path.basename(path) for index, path in enumerate(paths) if index not in good]
    paths = [path for index, path in enumerate(paths) if index in good]
    if skipped:
        logger.warning(
            "Skipped %d of %d files in %s that are not readable images: %s.",
            len(skipped),
            len(skipped) + len(paths),
            folder,
            _name_some(skipped),
        )
    if not paths:
        found = f" ({len(skipped)} unreadable)" if skipped else ""
        raise DataError(f"no readable image (jpg, jpeg, png, bmp, gif) in {folder}{found}")
    images = tf.data.Dataset.from_tensor_slices(tf.constant(paths, dtype=tf.string)).map(
        lambda path: decode_image(tf.io.read_file(path)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    names = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    return DomainData(images=images, num_examples=len(paths), names=names)


def load_folder(data_dir, split="train"):
    """Loads ``data_dir/{split}A`` and ``data_dir/{split}B``.

    This is the layout of the published CycleGAN zips (``apple2orange/trainA`` …). Files that do
    not decode (empty, truncated, not an image) are skipped with one warning per domain.

    Args:
        data_dir: str, the folder holding ``trainA/ trainB/ testA/ testB/``.
        split: str, ``"train"`` or ``"test"``. Defaults to ``"train"``.

    Returns:
        ``(domain_a, domain_b)``, two ``DomainData`` in file-name order.

    Raises:
        DataError: if the folder or a domain folder is missing, or a domain has no readable image.
    """
    _check_split(split)
    if not os.path.isdir(data_dir):
        raise DataError(f"data folder not found: {data_dir} (expected {_layout(split)})")
    domains = []
    for domain in ("A", "B"):
        folder = os.path.join(data_dir, f"{split}{domain}")
        if not os.path.isdir(folder):
            raise DataError(f"missing folder {folder}: {data_dir} must hold {_layout(split)}")
        domains.append(_folder_domain(folder))
    return tuple(domains)


def tfds_configs():
    """The config names of the TFDS ``cycle_gan`` builder (``apple2orange``, …)."""
    import tensorflow_datasets as tfds

    builder_cls = tfds.builder_cls(TFDS_BUILDER)
    return [config.name for config in builder_cls.BUILDER_CONFIGS]


def _count(dataset):
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    return int(dataset.reduce(0, lambda count, _: count + 1))


def load_tfds(name="apple2orange", split="train", data_dir=None):
    """Loads ``cycle_gan/<name>`` from TensorFlow Datasets, downloading it on first use.

    Args:
        name: str, a config of the ``cycle_gan`` builder. Defaults to ``"apple2orange"``.
        split: str, ``"train"`` or ``"test"`` (the builder's ``trainA``/``trainB`` or
            ``testA``/``testB``). Defaults to ``"train"``.
        data_dir: str or None, where TFDS keeps its data (None: TFDS's default,
            ``~/tensorflow_datasets``). Not the folder layout of ``load_folder``.

    Returns:
        ``(domain_a, domain_b)``, two ``DomainData`` with ``names=None``.

    Raises:
        DataError: if ``name`` is not a config of the builder, or the download or preparation
            fails (for example offline).
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
        builder.download_and_prepare()
    except Exception as error:  # Network, quota, checksum, missing extra: all mean "no data".
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(
            f"could not download or prepare TFDS {TFDS_BUILDER}/{name} ({reason}); "
            f"use --data-dir DIR with {_layout('train')}, or --dataset {SYNTHETIC}"
        ) from error
    domains = []
    for domain in ("A", "B"):
        examples = builder.as_dataset(split=f"{split}{domain}", shuffle_files=False)
        images = examples.map(
            lambda example: tf.ensure_shape(example["image"], [None, None, 3]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        domains.append(DomainData(images=images, num_examples=_count(examples), names=None))
    return tuple(domains)


def default_synthetic_dir(size, n_train, n_test, seed):
    """Where ``load_synthetic`` keeps a synthetic set when no folder is given.

    ``$CYCLEGAN_TF_CACHE`` (default ``$XDG_CACHE_HOME/cyclegan_tf`` or ``~/.cache/cyclegan_tf``)
    joined with a folder name made of the parameters, so each parameter set has its own folder.
    """
    cache = os.environ.get("CYCLEGAN_TF_CACHE")
    if not cache:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        cache = os.path.join(xdg, "cyclegan_tf")
    name = f"synthetic_fruit_{size}px_train{n_train}_test{n_test}_seed{seed}"
    return os.path.join(cache, name)


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
