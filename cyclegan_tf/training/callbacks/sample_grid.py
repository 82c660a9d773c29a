"""``SampleGrid``: grids of translated sample images, and how a grid is drawn."""

import io as bytes_io

import keras
import numpy as np

from cyclegan_tf import io, pixels
from cyclegan_tf.training.run_folder import LATEST_GRID_FILE, epoch_grid_file


class SampleGrid(keras.callbacks.Callback):
    """Sample grids on fixed images: ``images/latest.png`` every N steps, ``images/epoch_NNN.png`` per epoch.

    The columns are the objective's (``SAMPLE_COLUMNS``, computed by ``sample_images``): real A | A→B |
    A→B→A | real B | B→A | B→A→B for CycleGAN, real A | A→B | real B | B→B for CUT; one row per
    image, titled with the epoch and step. The epoch grids also go to TensorBoard as an image summary. The generators run in inference mode
    on a handful of images, so the cost is a small fraction of a training step.

    Args:
        images_a: float array ``[n, H, W, 3]`` in [-1, 1], chosen once (the same every time).
        images_b: the same for domain B.
        directory: str, the run's ``images/`` folder.
        every_steps: int, write ``latest.png`` every N steps (0: only per epoch). Defaults to 100.
        tensorboard_dir: str or None, where the image summaries go.
    """

    def __init__(self, images_a, images_b, directory, every_steps=100, tensorboard_dir=None):
        super().__init__()
        self.images_a = images_a
        self.images_b = images_b
        self.directory = directory
        self.every_steps = every_steps
        self.tensorboard_dir = tensorboard_dir
        self._epoch = 0
        self._writer = None
        self._translate = None

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        io.makedirs(self.directory)
        model = self.model

        self._translate = tf.function(model.sample_images, reduce_retracing=True)
        if self.tensorboard_dir:
            self._writer = tf.summary.create_file_writer(io.join(self.tensorboard_dir, "samples"))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if self.every_steps and step % self.every_steps == 0:
            self.write(io.join(self.directory, LATEST_GRID_FILE), step)

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        png = self.write(io.join(self.directory, epoch_grid_file(epoch)), step)
        if self._writer is not None:
            import tensorflow as tf

            with self._writer.as_default():
                tf.summary.image("samples", tf.io.decode_png(png)[None], step=step)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()

    def write(self, path, step):
        """Renders the grid to ``path`` (atomically) and returns the PNG bytes."""
        columns = [np.asarray(c) for c in self._translate(self.images_a, self.images_b)]
        titles = self.model.SAMPLE_COLUMNS
        png = render_grid(columns, titles, f"epoch {self._epoch + 1}, step {step}")
        io.write_bytes(path, png, durable=True)
        return png


GRID_CELL_INCHES = 1.6  # each image's place in a sample grid
GRID_DPI = 100


def _shrunk(image, max_side):
    """``image`` (uint8 ``[H, W, 3]``) box-averaged by the smallest integer factor that fits ``max_side``."""
    factor = -(-max(image.shape[:2]) // max_side)
    if factor <= 1:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).reduce(factor))


def grid_mosaic(columns, gap, max_side=None):
    """Tiles image columns into one picture, one row per image, ``gap`` white pixels between cells.

    Args:
        columns: list of arrays ``[n, H, W, C]`` in [-1, 1], one per column (sizes may differ; each
            cell is as large as the largest image; C 1, 3 or 4, shown as RGB).
        gap: int, pixels between cells.
        max_side: int or None, images larger than this on a side are first shrunk to fit (averaging
            whole blocks of pixels), so a grid of large images stays small in memory.

    Returns:
        uint8 array ``[n * H + (n - 1) * gap, c * W + (c - 1) * gap, 3]``, H and W after shrinking.
    """

    def cell(image):
        image = pixels.to_rgb(pixels.to_uint8(image))  # grayscale and RGBA columns show as RGB
        return _shrunk(image, max_side) if max_side else image

    cells = [[cell(image) for image in images] for images in columns]
    height = max(cell.shape[0] for column in cells for cell in column)
    width = max(cell.shape[1] for column in cells for cell in column)
    step_y, step_x = height + gap, width + gap
    mosaic = np.full((len(cells[0]) * step_y - gap, len(cells) * step_x - gap, 3), 255, np.uint8)
    for col, column in enumerate(cells):
        for row, cell in enumerate(column):
            top, left = row * step_y, col * step_x
            mosaic[top : top + cell.shape[0], left : left + cell.shape[1]] = cell
    return mosaic


def render_grid(columns, titles, suptitle):
    """A titled grid of image columns in [-1, 1], as PNG bytes.

    The images are tiled into one picture drawn on a single matplotlib axes (one axes per image
    made a grid cost about a second at every sample). Images larger than twice their place in the
    figure are shrunk first: the PNG could not show more.

    Args:
        columns: list of arrays ``[n, H, W, 3]`` in [-1, 1], one per column.
        titles: list of str, one per column.
        suptitle: str, the figure title.

    Returns:
        bytes, the PNG.
    """
    from matplotlib.figure import Figure

    rows = columns[0].shape[0]
    max_side = 2 * int(GRID_CELL_INCHES * GRID_DPI)
    width = min(max(images.shape[2] for images in columns), max_side)
    mosaic = grid_mosaic(columns, gap=max(1, width // 16), max_side=max_side)
    figure = Figure(figsize=(GRID_CELL_INCHES * len(columns), GRID_CELL_INCHES * rows + 0.5))
    axis = figure.add_axes((0.0, 0.0, 1.0, 1.0 - 0.5 / figure.get_figheight()))
    axis.imshow(mosaic)
    cell_width = mosaic.shape[1] / len(columns)
    axis.set_xticks([(col + 0.5) * cell_width for col in range(len(columns))], titles, fontsize=9)
    axis.xaxis.tick_top()
    axis.tick_params(length=0, pad=2)
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)
    figure.suptitle(suptitle, fontsize=10, y=1.0 - 0.05 / figure.get_figheight(), va="top")
    buffer = bytes_io.BytesIO()
    figure.savefig(buffer, format="png", dpi=GRID_DPI)
    return buffer.getvalue()
