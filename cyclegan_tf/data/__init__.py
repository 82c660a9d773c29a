"""Data: image sources (a folder, TFDS ``cycle_gan``, the synthetic fruit set) and pipelines.

Example:
    ```python
    from cyclegan_tf import data

    domain_a, domain_b = data.load_domains(dataset="synthetic", split="train")
    dataset, steps = data.make_train_dataset(domain_a, domain_b, image_size=128, load_size=143)
    ```
"""

from cyclegan_tf.data.cache import CACHE_MODES, resolve_cache_mode
from cyclegan_tf.data.decode import (
    IMAGE_EXTENSIONS,
    DataError,
    decode_image,
    decode_resized,
    decode_to_shape,
    image_to_uint8,
    list_image_files,
    read_image_file,
)
from cyclegan_tf.data.pipeline import (
    epoch_steps,
    explained_stream_errors,
    make_eval_dataset,
    make_train_dataset,
    make_translate_dataset,
    preprocess_eval,
    preprocess_train,
)
from cyclegan_tf.data.preprocess import PREPROCESS_MODES, Preprocess
from cyclegan_tf.data.sources import (
    DomainData,
    default_cache_dir,
    load_domains,
    load_folder,
    load_image_folder,
    load_synthetic,
    load_tfds,
    tfds_configs,
)
from cyclegan_tf.data.synthetic import hue_statistic, write_synthetic_dataset

__all__ = [
    "CACHE_MODES",
    "IMAGE_EXTENSIONS",
    "DataError",
    "PREPROCESS_MODES",
    "Preprocess",
    "DomainData",
    "decode_image",
    "decode_resized",
    "decode_to_shape",
    "default_cache_dir",
    "epoch_steps",
    "explained_stream_errors",
    "hue_statistic",
    "image_to_uint8",
    "list_image_files",
    "load_domains",
    "load_folder",
    "load_image_folder",
    "load_synthetic",
    "load_tfds",
    "make_eval_dataset",
    "make_train_dataset",
    "make_translate_dataset",
    "preprocess_eval",
    "preprocess_train",
    "read_image_file",
    "resolve_cache_mode",
    "tfds_configs",
    "write_synthetic_dataset",
]
