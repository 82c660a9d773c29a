"""The names of 0.1 that moved keep working for one release, with a DeprecationWarning naming the new one."""

import importlib
import sys

import pytest

from cyclegan_tf import _deprecated, model_store, options
from cyclegan_tf.training.config import TrainConfig


@pytest.mark.parametrize("old, new", sorted(_deprecated.RENAMED_MODULES.items()))
def test_old_module_paths_import_the_new_modules_with_a_warning(old, new):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated .* use {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_old_names_in_moved_modules_warn_and_work():
    from cyclegan_tf import training
    from cyclegan_tf.export import onnx, saved_model
    from cyclegan_tf.training import callbacks, trainer

    with pytest.warns(DeprecationWarning, match="cyclegan_tf.training.trainer.TrainingSegment"):
        assert training.TrainingSegment is trainer.TrainingSegment
    with pytest.warns(DeprecationWarning, match="model_store.save_model"):
        assert callbacks.save_atomically is model_store.save_model
    with pytest.warns(DeprecationWarning, match=r"FORMATS\['onnx'\].suffix"):
        assert onnx.suffix(quantize="int8") == ".int8.onnx"
    with pytest.warns(DeprecationWarning, match=r"FORMATS\['saved_model'\].suffix"):
        assert saved_model.suffix() == ""
    with pytest.raises(AttributeError):
        onnx.no_such_name  # noqa: B018
    import argparse

    parser = argparse.ArgumentParser()
    with pytest.warns(DeprecationWarning, match="options.add_arguments"):
        TrainConfig.add_arguments(parser)
    with pytest.warns(DeprecationWarning, match="options.from_args"):
        config = TrainConfig.from_args(parser.parse_args(["--image-size", "64"]))
    assert config == options.from_args(TrainConfig, parser.parse_args(["--image-size", "64"]))
