"""The one way a generator runs on pixels: any image size, compiled once, from any saved form.

Images too large for a memory budget run tiled (``TiledGenerator``), with the whole-image result.

Example:
    ```python
    from cyclegan_tf import inference

    translator = inference.load_translator("runs/apple2orange/models/netG_A2B.keras")
    oranges = translator.translate_pixels(apples_uint8)  # [batch, H, W, 3] in [0, 255]
    ```
"""

from cyclegan_tf.inference.generator import CompiledGenerator, translate, translate_pixels
from cyclegan_tf.inference.keras_translator import DEFAULT_MAX_MEMORY_GB, KerasTranslator
from cyclegan_tf.inference.loading import (
    SavedModelTranslator,
    TensorFlowRuntime,
    load_generator,
    load_runtime,
    load_translator,
    resolve_model_path,
)
from cyclegan_tf.inference.padding import MIN_SIZE, crop_to, pad_to_multiple
from cyclegan_tf.inference.tiled import (
    PRECISIONS,
    TiledGenerator,
    check_precision,
    estimate_whole_image_bytes,
)

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
