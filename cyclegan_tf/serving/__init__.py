"""A development server that speaks TF Serving's REST API, and a web page to try the models.

Production serving is TensorFlow Serving itself; this package serves the same SavedModels with the same
REST API, so a client works unchanged against either. It needs only TensorFlow and the optional extra
``cyclegan_tf[serve]`` (FastAPI, uvicorn); it never imports training code.
"""

from cyclegan_tf.lazy import lazy_exports

# Each name and its module, imported on first use (PEP 562).
_EXPORTS = {
    "ModelRegistry": "cyclegan_tf.serving.registry",
    "ServableNotFoundError": "cyclegan_tf.serving.registry",
    "ServedVersion": "cyclegan_tf.serving.registry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["ModelRegistry", "ServableNotFoundError", "ServedVersion", "create_app"]


def create_app(*args, **kwargs):
    """``rest.create_app``, imported lazily so the registry works without FastAPI installed."""
    # Imported on use: FastAPI is the optional [serve] extra.
    from cyclegan_tf.serving.rest import create_app as create

    return create(*args, **kwargs)
