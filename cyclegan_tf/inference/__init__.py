"""The one way a generator runs on pixels: any image size, compiled once, from any saved form.

Images too large for a memory budget run tiled (``TiledGenerator``), with the whole-image result.

Example:
    ```python
    from cyclegan_tf import inference

    translator = inference.load_translator("runs/apple2orange/models/netG_A2B.keras")
    oranges = translator.translate_pixels(apples_uint8)  # [batch, H, W, 3] in [0, 255]
    ```
"""

from cyclegan_tf.lazy import lazy_exports

# Each name and its module, imported on first use (PEP 562).
_EXPORTS = {
    "CompiledGenerator": "cyclegan_tf.inference.generator",
    "translate": "cyclegan_tf.inference.generator",
    "translate_pixels": "cyclegan_tf.inference.generator",
    "DEFAULT_MAX_MEMORY_GB": "cyclegan_tf.inference.budget",
    "KerasTranslator": "cyclegan_tf.inference.keras_translator",
    "SavedModelTranslator": "cyclegan_tf.inference.loading",
    "TensorFlowRuntime": "cyclegan_tf.inference.loading",
    "load_generator": "cyclegan_tf.inference.loading",
    "load_runtime": "cyclegan_tf.inference.loading",
    "load_translator": "cyclegan_tf.inference.loading",
    "resolve_model_path": "cyclegan_tf.inference.loading",
    "MIN_SIZE": "cyclegan_tf.inference.padding",
    "crop_to": "cyclegan_tf.inference.padding",
    "pad_to_multiple": "cyclegan_tf.inference.padding",
    "PRECISIONS": "cyclegan_tf.inference.tiled",
    "TiledGenerator": "cyclegan_tf.inference.tiled",
    "check_precision": "cyclegan_tf.inference.tiled",
    "estimate_whole_image_bytes": "cyclegan_tf.inference.tiled",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "DEFAULT_MAX_MEMORY_GB",
    "MIN_SIZE",
    "PRECISIONS",
    "CompiledGenerator",
    "KerasTranslator",
    "SavedModelTranslator",
    "TiledGenerator",
    "check_precision",
    "crop_to",
    "estimate_whole_image_bytes",
    "load_generator",
    "TensorFlowRuntime",
    "load_runtime",
    "load_translator",
    "pad_to_multiple",
    "resolve_model_path",
    "translate",
    "translate_pixels",
]
