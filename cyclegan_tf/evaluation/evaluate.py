"""``evaluate``: FID and KID of a translator's outputs against the target domain, with a baseline.

The baseline is the same scores of the untranslated source images: a useful translator scores clearly
below it.

Example:
    ```python
    from cyclegan_tf.evaluation import evaluate

    results = evaluate("saved_models/apple2orange", source="my_apples/", target="my_oranges/",
                       inception_weights="inception_v3_notop.h5")
    print(results["fid"], results["baseline"]["fid"])
    ```
"""

import dataclasses
import logging
import time

from cyclegan_tf import inference, io
from cyclegan_tf.data import load_domains
from cyclegan_tf.data.decode import list_image_files, read_image_file, to_channels
from cyclegan_tf.errors import OptionError
from cyclegan_tf.evaluation import metrics
from cyclegan_tf.evaluation.features import IMAGENET, InceptionFeatures, cached, file_features

logger = logging.getLogger(__name__)

SPLITS = ("trainA", "trainB", "testA", "testB")


@dataclasses.dataclass
class ImageSet:
    """Images to evaluate, from a folder or a dataset split.

    Attributes:
        label: str, how the set is named in the output.
        count: int, the number of images.
        files: list of str or None, the image files of a folder.
        dataset: ``tf.data.Dataset`` of ``uint8 [H, W, 3]`` or None, the images of a dataset split.
        cache_key: JSON-serialisable or None, what identifies a dataset split for the cache.
    """

    label: str
    count: int
    files: list | None = None
    dataset: object = None
    cache_key: object = None

    def images(self, channels=3):
        """A fresh iterator over the ``uint8 [H, W, channels]`` images (``decode.to_channels``)."""
        if self.files is not None:
            return (read_image_file(path, channels) for path in self.files)
        return (to_channels(image, channels).numpy() for image in self.dataset)


def other_split(split):
    """``testA`` → ``testB`` and so on."""
    return split[:-1] + ("B" if split.endswith("A") else "A")


def folder_set(folder, max_images=None, option="source"):
    """An ``ImageSet`` of the image files directly inside ``folder``."""
    if not io.isdir(folder):
        raise OptionError(option, f"no such folder: {folder}")
    files = list_image_files(folder)[:max_images]
    if len(files) < 2:
        raise OptionError(
            option, f"{folder} holds {len(files)} image file(s); FID and KID need at least 2"
        )
    return ImageSet(label=folder, count=len(files), files=files)


def dataset_set(dataset, data_dir, split, max_images=None):
    """An ``ImageSet`` of one domain of a dataset split (``testA``, ...)."""
    if data_dir is not None:
        return folder_set(io.join(data_dir, split), max_images, option="data_dir")

    domain_a, domain_b = load_domains(dataset=dataset, split=split[:-1])
    domain = domain_a if split.endswith("A") else domain_b
    count = domain.num_examples if max_images is None else min(max_images, domain.num_examples)
    return ImageSet(
        label=f"{dataset} {split}",
        count=count,
        dataset=domain.images.take(count),
        cache_key={"dataset": dataset, "split": split, "count": count},
    )


def image_sets(source=None, target=None, dataset=None, data_dir=None, split=None, max_images=None):
    """``(source, target)`` ``ImageSet``s: two folders, or a dataset split and the other domain's.

    Raises:
        OptionError: for a combination that names no images, or two sources.
    """
    from_dataset = dataset is not None or data_dir is not None
    if source is not None and from_dataset:
        raise OptionError("source", "give either source or dataset/data_dir with split, not both")
    if dataset is not None and data_dir is not None:
        raise OptionError("dataset", "give either dataset or data_dir, not both")
    if source is None and not from_dataset:
        raise OptionError("source", "no source images: give a folder, or a dataset and a split")
    if from_dataset and split not in SPLITS:
        raise OptionError("split", f"must be one of {', '.join(SPLITS)}. Received: {split!r}")
    if source is not None and target is None:
        raise OptionError("target", "a source folder needs a folder of target-domain images")
    if max_images is not None and max_images < 2:
        raise OptionError("max_images", f"must be at least 2. Received: {max_images}")
    if source is not None:
        source_set = folder_set(source, max_images, option="source")
    else:
        source_set = dataset_set(dataset, data_dir, split, max_images)
    if target is not None:
        target_set = folder_set(target, max_images, option="target")
    else:
        target_set = dataset_set(dataset, data_dir, other_split(split), max_images)
    return source_set, target_set


def set_features(inception, image_set, cache_dir):
    """Features of an untranslated ``ImageSet``, through the cache when one is given."""
    if image_set.files is not None:
        return file_features(inception, image_set.files, cache_dir, io.basename(image_set.label))
    key = {**image_set.cache_key, "weights": inception.weights_id}
    return cached(
        cache_dir,
        image_set.label.replace(" ", "_"),
        key,
        lambda: inception(image_set.images(), count=image_set.count),
    )


def translated_features(inception, translator, image_set):
    """Features of the translations of an ``ImageSet``, one image at a time (sizes may differ)."""
    channels = getattr(translator, "channels", 3)  # a grayscale generator reads its images gray
    images = image_set.images(channels)
    translations = (translator.translate_pixels(image[None])[0] for image in images)
    return inception(translations, count=image_set.count)


def evaluate(
    model,
    *,
    source=None,
    target=None,
    dataset=None,
    data_dir=None,
    split=None,
    inception_weights=IMAGENET,
    cache_dir=None,
    max_images=None,
    batch_size=32,
    kid_subsets=100,
    kid_subset_size=1000,
):
    """FID and KID of ``model``'s translations of the source images against the target images.

    Give either two folders (``source`` and ``target``), or ``dataset`` (a TFDS ``cycle_gan`` config or
    ``"synthetic"``) or ``data_dir`` (the zip layout) with ``split`` (``testA``…): the target is then
    the other domain of that split.

    Args:
        model: a model path (a generator ``.keras``, a SavedModel version or base folder) or a
            translator (anything with ``translate_pixels``, see ``cyclegan_tf.inference``).
        source: str or None, a folder of source-domain images.
        target: str or None, a folder of target-domain images.
        dataset: str or None, a dataset name, with ``split``.
        data_dir: str or None, a folder in the published zip layout, with ``split``.
        split: str or None, one of ``SPLITS``.
        inception_weights: ``"imagenet"`` (downloaded by Keras), a local weights file, or None
            (random weights: plumbing only). Defaults to ``"imagenet"``.
        cache_dir: str or None, keeps the features of untranslated sets between runs.
        max_images: int or None, at most this many images per set.
        batch_size: int, images per InceptionV3 pass. Defaults to 32.
        kid_subsets: int, KID subsets. Defaults to 100.
        kid_subset_size: int, images per KID subset. Defaults to 1000.

    Returns:
        A dict: ``fid``, ``kid``, ``kid_std`` of the translations, ``baseline`` (the same of the
        untranslated source), the set labels and sizes, and ``seconds``.

    Raises:
        OptionError: for arguments that name no images or a model that is not there.
    """
    if batch_size < 1:
        raise OptionError("batch_size", f"must be at least 1. Received: {batch_size}")
    start = time.perf_counter()
    source_set, target_set = image_sets(source, target, dataset, data_dir, split, max_images)
    if isinstance(model, str):
        inference.resolve_model_path(model)  # a wrong path fails before the slow part
    inception = InceptionFeatures(inception_weights, batch_size)
    translator = inference.load_translator(model) if isinstance(model, str) else model

    logger.info("Features of the target, %s (%d images)", target_set.label, target_set.count)
    target_features = set_features(inception, target_set, cache_dir)
    logger.info("Features of the source, %s (%d images)", source_set.label, source_set.count)
    source_features = set_features(inception, source_set, cache_dir)
    logger.info("Translating the source and extracting features")
    output_features = translated_features(inception, translator, source_set)

    def scores(features):
        result = metrics.scores(features, target_features, kid_subsets, kid_subset_size)
        return dataclasses.asdict(result)

    return {
        "model": model if isinstance(model, str) else type(model).__name__,
        "source": source_set.label,
        "target": target_set.label,
        "num_source": source_set.count,
        "num_target": target_set.count,
        "inception_weights": inception_weights,
        **scores(output_features),
        "baseline": scores(source_features),
        "kid_subsets": kid_subsets,
        "kid_subset_size": min(kid_subset_size, source_set.count, target_set.count),
        "seconds": round(time.perf_counter() - start, 2),
    }
