"""``BenchmarkOptions``: what ``cyclegan-benchmark`` measures, readable without TensorFlow.

Its fields are the command's flags (``options.option``), so ``--help`` answers before TensorFlow loads;
``tools.benchmark`` measures them.
"""

import dataclasses

from cyclegan_tf import pixels
from cyclegan_tf.data.cache import CACHE_MODES
from cyclegan_tf.errors import OptionError
from cyclegan_tf.models.objectives import OBJECTIVES
from cyclegan_tf.options import comma_list, option
from cyclegan_tf.training import distribute

PARTS = ("train", "inference", "pipeline")


@dataclasses.dataclass
class BenchmarkOptions:
    """What to measure; each field is a flag of ``cyclegan-benchmark`` (see ``options.option``).

    ``runtimes`` compares runtime variants (``runtime_benchmark``) instead of timing the exported
    generator; ``pipeline_data_dir`` reads real photos of any size in the ``trainA/ trainB/`` layout
    instead of written synthetic images; ``data_cache="disk"`` writes to a temporary folder.
    """

    objective: tuple = option(
        ("cyclegan",),
        "Training objectives to time side by side, comma-separated (cyclegan, cut, fastcut); "
        "with several, each one's peak memory is measured in a process of its own.",
        parse=comma_list(str),
    )
    image_size: int = option(256, "Image side in pixels.")
    batch_size: int = option(1, "Global batch size.")
    steps: int = option(10, "Timed train steps per variant.")
    warmup: int = option(2, "Untimed steps before timing (tracing, compilation, oneDNN caches).")
    rounds: int = option(3, "Interleaved rounds the timed steps are split into.")
    mixed_precision: str | None = option(
        None, "Mixed precision policy.", choices=tuple(distribute.MIXED_PRECISIONS)
    )
    jit_compile: bool = option(False, "Compile the step with XLA.")
    mirrored_strategy: bool = option(False, "MirroredStrategy over local GPUs.")
    cpu_replicas: int | None = option(None, "Logical CPU devices (no-GPU machines).")
    compare_float32: bool = option(
        False, "With --mixed-precision, also time the float32 fit step side by side."
    )
    compare_handwritten: bool = option(True, "Skip the hand-written tf.function step.")
    ngf: int = option(64, "Generator filters.")
    ndf: int = option(64, "Discriminator filters.")
    n_res_blocks: int = option(9, "Residual blocks.")
    inference_runs: int = option(20, "Timed inference runs.")
    runtimes: tuple = option(
        (),
        "With --parts inference: compare these runtimes side by side (families tensorflow, "
        "onnxruntime, openvino, litert, or variants such as openvino-bf16); the first is the "
        "pixel-error reference.",
        parse=comma_list(str),
    )
    runtime_sizes: tuple = option(
        (256, 1024), "With --runtimes: square image sides.", parse=comma_list(int)
    )
    threads: int | None = option(None, "With --runtimes: threads (default: all CPUs).")
    pipeline_images: int = option(64, "JPEGs per domain for the pipeline.")
    pipeline_data_dir: str | None = option(
        None, "Read the pipeline's images from DIR/trainA and DIR/trainB instead of synthetic ones."
    )
    data_cache: str = option(
        "auto",
        "The pipeline's resized-image cache (disk: a temporary folder).",
        choices=CACHE_MODES,
    )
    pipeline_batches: int = option(200, "Batches timed from the pipeline.")
    parts: tuple = option(PARTS, "Comma-separated parts to measure.", parse=comma_list(str))
    seed: int = option(0, "Seed of the weights and the data.")

    def validate(self):
        """Checks ranges.

        Raises:
            OptionError: naming the first option out of range and its value.
        """
        for key in ("batch_size", "steps", "warmup", "rounds", "inference_runs"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OptionError(key, f"must be >= 1. Received: {value!r}")
        pixels.check_size_multiple("image_size", self.image_size)
        unknown = sorted(set(self.objective) - set(OBJECTIVES))
        if unknown or not self.objective or len(set(self.objective)) < len(self.objective):
            raise OptionError(
                "objective",
                f"must name some of {', '.join(OBJECTIVES)}, each once. "
                f"Received: {','.join(self.objective) or 'none'}",
            )
        unknown = sorted(set(self.parts) - set(PARTS))
        if unknown or not self.parts:
            raise OptionError(
                "parts", f"must name some of {', '.join(PARTS)}. Received: {unknown or 'none'}"
            )
        if self.runtimes:
            # Imported on use: the runtime table loads the export converters (and TensorFlow).
            from cyclegan_tf.tools.runtime_benchmark import expand_runtimes

            expand_runtimes(self.runtimes)
        if self.compare_float32 and not self.mixed_precision:
            raise OptionError("compare_float32", "needs mixed_precision bf16 or fp16")
