"""The cost of a durable backup next to a training step (docs/performance.md).

Builds the run's model (default: the reference's, 256 px, ngf/ndf 64, 9 residual blocks, pools of 50),
times ``--steps`` training steps on random images after one untimed step, then ``--backups`` durable
backups (``training.backup.BackupStore.write``: HDF5 written to a new file, SHA-256 read back, fsync,
rename, folder fsync, manifest likewise) and as many of the previous scheme's (Keras'
``BackupAndRestore(double_checkpoint=True)``: the last file copied to ``.bkp``, then rewritten in place,
no fsync). Prints the means and the share of training time at ``--backup-every``::

    python scripts/measure_backup_overhead.py --folder /tmp/backup-bench
    python scripts/measure_backup_overhead.py --image-size 32 --ngf 4 --ndf 4 --n-res-blocks 1
"""

import argparse
import os
import shutil
import statistics
import time

import numpy as np


def main(argv=None):
    """Measures and prints one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="backup-bench", help="Where the backups are written.")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--n-res-blocks", type=int, default=9)
    parser.add_argument("--pool-size", type=int, default=50)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--backups", type=int, default=3)
    parser.add_argument("--backup-every", type=int, default=100)
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from cyclegan_tf.training import trainer
    from cyclegan_tf.training.backup import BackupStore
    from cyclegan_tf.training.config import TrainConfig

    config = TrainConfig(
        image_size=args.image_size,
        load_size=args.image_size,
        ngf=args.ngf,
        ndf=args.ndf,
        n_res_blocks=args.n_res_blocks,
        pool_size=args.pool_size,
    ).resolved()
    model = trainer.build_model(config, steps_per_epoch=1000)
    shape = (1, args.image_size, args.image_size, 3)
    images = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
    dataset = tf.data.Dataset.from_tensors((images, images)).repeat()

    class StepTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times, self._start = [], None

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self._start)

    model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)  # traces the step
    steps = StepTimes()
    model.fit(dataset, epochs=1, steps_per_epoch=args.steps, verbose=0, callbacks=[steps])

    shutil.rmtree(args.folder, ignore_errors=True)
    store = BackupStore(os.path.join(args.folder, "durable"))
    durable = []
    for index in range(args.backups):
        start = time.perf_counter()
        backup = store.write(model.save_weights, 0, index, {"config": {}})
        durable.append(time.perf_counter() - start)
    size = backup.manifest["bytes"]
    keras_style = []
    latest = os.path.join(args.folder, "keras", "latest.weights.h5")
    os.makedirs(os.path.dirname(latest))
    for _ in range(args.backups):
        start = time.perf_counter()
        if os.path.exists(latest):
            shutil.copy(latest, latest + ".bkp")
        model.save_weights(latest)
        keras_style.append(time.perf_counter() - start)
    shutil.rmtree(args.folder, ignore_errors=True)

    step = statistics.mean(steps.times)
    every = args.backup_every
    for name, times in (("durable backup", durable), ("previous backup", keras_style)):
        cost = statistics.mean(times)
        share = cost / (every * step + cost)
        print(
            f"{name}: {cost:.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)}); at "
            f"--backup-every {every}: {100 * share:.2f} % of training time"
        )
    print(f"step: {step:.2f} s (runs: {', '.join(f'{t:.2f}' for t in steps.times)})")
    print(f"backup size: {size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
