"""Every export format as one record: where it lies on disk, and the function that writes it.

``ExportFormat`` joins a ``model_store.StoredFormat`` (the ending of a version's name, the file a
reader opens in a folder format) with the format's writer, and gives every format the same
``suffix`` (what follows the version number) and ``export`` (a new version, published only once
complete). A new format is a module with a ``write(generator, path, **options)`` and one record in
``export.FORMATS``.
"""

import dataclasses
import os
from collections.abc import Callable

from cyclegan_tf import model_store
from cyclegan_tf.errors import OptionError


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """One export format.

    Attributes:
        stored: the ``model_store.StoredFormat`` (name, extension, folder file).
        write: callable ``write(generator, path, **options)`` writing the format at ``path``.
        writes_folder_file: bool, ``write`` writes the folder file (OpenVINO's ``model.xml``, with
            its weights beside it) into a version folder made for it, rather than the version.
        variants: bool, the format takes ``quantize`` and a fixed ``image_size`` (marked in the
            version's name: ``3.int8.onnx``); False for the SavedModel, float32 at any size.
        local_writer: bool, ``write`` needs a local path (the converters); the version is then
            written to a local temporary folder and copied to ``gs://``.
        title: str, how messages name the format. Defaults to its name.
    """

    stored: model_store.StoredFormat
    write: Callable
    writes_folder_file: bool = False
    variants: bool = True
    local_writer: bool = True
    title: str | None = None

    @property
    def name(self):
        """str, the format's name (``"onnx"``)."""
        return self.stored.name

    def suffix(self, quantize="none", image_size=None, **unused_options):
        """What follows the version number: ``.onnx``, ``.int8.onnx``, ``.256x256.tflite``, ``""``.

        Raises:
            OptionError: for a ``quantize`` or ``image_size`` this format does not take.
        """
        if self.variants:
            return model_store.variant_suffix(self.stored.extension, quantize, image_size)
        if quantize != "none":
            raise OptionError(
                "quantize",
                f"the {self.title or self.name} is float32 only (try format='openvino'). "
                f"Received: quantize={quantize!r}",
            )
        if image_size is not None:
            raise OptionError(
                "image_size",
                f"the {self.title or self.name} takes any image size; only litert fixes it",
            )
        return self.stored.extension

    def export(self, generator, export_dir, model_name, version=None, **options):
        """Writes ``generator`` as ``export_dir/model_name/<version><suffix>``.

        Args:
            generator: a ``keras.Model`` mapping images in [-1, 1] to images in [-1, 1].
            export_dir: str, the base path (local, ``gs://`` or ``ram://``).
            model_name: str, the served name.
            version: int or None, the version (see ``model_store.default_version``).
            **options: the writer's options (``quantize``, ``image_size``, ``calibration_images``,
                ``max_pixels``).

        Returns:
            str, the file or folder written.

        Raises:
            ValueError: if the version exists (nothing is overwritten) or a path on the way is a file.
        """
        _, target = model_store.version_path(
            export_dir, model_name, version, self.suffix(**options)
        )

        def write(path):
            if self.writes_folder_file:
                os.makedirs(path)
                path = os.path.join(path, self.stored.folder_file)
            self.write(generator, path, **options)

        return model_store.publish(
            write, target, last_file=self.stored.folder_file, local_writer=self.local_writer
        )
