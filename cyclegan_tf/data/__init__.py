"""Data: image sources (a folder, TFDS ``cycle_gan``, the synthetic fruit set) and pipelines.

Example:
    ```python
    from cyclegan_tf import data

    domain_a, domain_b = data.load_domains(dataset="synthetic", split="train")
    dataset, steps = data.make_train_dataset(domain_a, domain_b, image_size=128, load_size=143)
    ```
"""

from cyclegan_tf.lazy import lazy_exports

# Each name and its module, imported on first use (PEP 562).
_EXPORTS = {
    "CACHE_MODES": "cyclegan_tf.data.cache",
    "resolve_cache_mode": "cyclegan_tf.data.cache",
    "IMAGE_EXTENSIONS": "cyclegan_tf.data.decode",
    "DataError": "cyclegan_tf.data.decode",
    "decode_image": "cyclegan_tf.data.decode",
    "decode_resized": "cyclegan_tf.data.decode",
    "decode_to_shape": "cyclegan_tf.data.decode",
    "image_to_uint8": "cyclegan_tf.data.decode",
    "list_image_files": "cyclegan_tf.data.decode",
    "read_image_file": "cyclegan_tf.data.decode",
    "epoch_steps": "cyclegan_tf.data.pipeline",
    "explained_stream_errors": "cyclegan_tf.data.pipeline",
    "domain_images": "cyclegan_tf.data.pipeline",
    "make_eval_dataset": "cyclegan_tf.data.pipeline",
    "make_train_dataset": "cyclegan_tf.data.pipeline",
    "make_translate_dataset": "cyclegan_tf.data.pipeline",
    "preprocess_eval": "cyclegan_tf.data.pipeline",
    "preprocess_train": "cyclegan_tf.data.pipeline",
    "PREPROCESS_MODES": "cyclegan_tf.data.preprocess",
    "Preprocess": "cyclegan_tf.data.preprocess",
    "DomainData": "cyclegan_tf.data.sources",
    "default_cache_dir": "cyclegan_tf.data.sources",
    "load_domains": "cyclegan_tf.data.sources",
    "load_folder": "cyclegan_tf.data.sources",
    "load_image_folder": "cyclegan_tf.data.sources",
    "load_synthetic": "cyclegan_tf.data.sources",
    "load_tfds": "cyclegan_tf.data.sources",
    "tfds_configs": "cyclegan_tf.data.sources",
    "hue_statistic": "cyclegan_tf.data.synthetic",
    "write_synthetic_dataset": "cyclegan_tf.data.synthetic",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
    "domain_images",
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
