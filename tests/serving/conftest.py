"""Helpers of the serving tests: tiny generators and encoded images."""

import base64
import io

import keras
import numpy as np
from PIL import Image

from cyclegan_tf.models import resnet_generator


def tiny_generator(seed):
    """A ``resnet_generator(ngf=4, n_res_blocks=1)`` with weights from ``seed``."""
    keras.utils.set_random_seed(seed)
    return resnet_generator(ngf=4, n_res_blocks=1)


def png(height, width, seed=0, flat=False):
    """PNG bytes of random pixels (or, with ``flat``, of one grey: a few hundred bytes)."""
    if flat:
        pixels = np.full((height, width, 3), 120, np.uint8)
    else:
        pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data):
    """TF Serving's JSON form of binary data."""
    return {"b64": base64.b64encode(data).decode("ascii")}
