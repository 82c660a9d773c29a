"""``RUN/report.html``: one self-contained page with a run's config, loss curves, samples and exports.

Everything is embedded (PNG images as base64, plain CSS), so the file can be mailed or archived on
its own. It reads only the run folder: ``config.json``, ``logs/training.csv`` (Keras ``CSVLogger``)
and ``images/epoch_NNN.png``.
"""

import base64
import csv
import datetime
import html
import io as bytes_io
import json
import math
import os
import re

# ``Figure`` without pyplot: no GUI backend, no global state touched in the caller's process.
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cyclegan_tf import io
from cyclegan_tf.export import existing_versions
from cyclegan_tf.model_store import names_by_direction
from cyclegan_tf.training.run_folder import RunFolder


def curves(objective):
    """The curves of a run of ``objective``, one figure each: ``(title, columns, y label)``.

    The losses, the objective's generator terms (its ``SUMMARY_KEYS`` after ``d_loss`` and
    ``g_loss``), its validation losses and FID/KID. Columns missing from the log are skipped.
    """
    validation = tuple(
        f"val_{key}" for key in objective.SUMMARY_KEYS if key in objective.VALIDATION_KEYS
    )
    return (
        ("Discriminator and generator losses", objective.SUMMARY_KEYS[:2], "loss"),
        ("Generator terms", objective.SUMMARY_KEYS[2:], "loss"),
        ("Validation (test split)", validation, "loss"),
        ("FID (lower is better)", ("fid",), "FID"),
        ("KID (lower is better)", ("kid",), "KID"),
    )


_SAMPLE = re.compile(r"^epoch_(\d+)\.png$")

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.muted { color: #777; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #eee; text-align: left;
         vertical-align: top; }
th { color: #555; font-weight: 600; }
code { font-family: Menlo, Consolas, monospace; font-size: 0.9em; }
.curves { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1em; }
figure { margin: 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin: 0.3em 0 1em; }
.config { columns: 2; }
"""


def read_log(path):
    """Reads a ``CSVLogger`` file into ``{column: [float, ...]}``, one value per epoch.

    ``epoch`` becomes 1-based. Missing values (``NA``, empty) are NaN. When an epoch appears twice
    (a resumed run repeats the interrupted epoch), the later row wins.

    Args:
        path: str, the CSV file.

    Returns:
        dict of column name to list of floats, all of the same length, sorted by epoch; empty when
        the file has no rows.
    """
    rows = {}
    for row in csv.DictReader(io.read_text(path).splitlines()):
        try:
            epoch = int(row.get("epoch") or "")
        except ValueError:
            continue
        rows[epoch] = row
    columns = {"epoch": [epoch + 1 for epoch in sorted(rows)]}
    names = {name for row in rows.values() for name in row if name and name != "epoch"}
    for name in sorted(names):
        columns[name] = [_number(rows[epoch].get(name)) for epoch in sorted(rows)]
    return columns if rows else {}


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _has_values(values):
    return any(math.isfinite(value) for value in values)


def plot_curves(log, title, columns, ylabel):
    """One PNG figure of ``columns`` against the epoch; None if none of them has a value.

    Args:
        log: dict from ``read_log``.
        title: str, the figure title.
        columns: sequence of str, the columns to draw.
        ylabel: str, the y-axis label.

    Returns:
        PNG bytes or None.
    """
    present = [name for name in columns if name in log and _has_values(log[name])]
    if not present:
        return None
    figure = Figure(figsize=(6.4, 3.6), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    epochs = log["epoch"]
    for name in present:
        points = [(e, v) for e, v in zip(epochs, log[name]) if math.isfinite(v)]
        xs, ys = zip(*points)
        # Markers on short or sparse series (FID every few epochs), so single points show.
        axes.plot(xs, ys, label=name, marker="o" if len(xs) <= 30 else None, markersize=4)
    if present == ["fid"]:
        best = min(range(len(xs)), key=ys.__getitem__)
        axes.annotate(
            f"best {ys[best]:.2f} (epoch {xs[best]})",
            (xs[best], ys[best]),
            textcoords="offset points",
            xytext=(0, 10),
            ha="center",
            fontsize=8,
        )
    axes.set_title(title, fontsize=11)
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if len(present) > 1:
        axes.legend(fontsize=9)
    buffer = bytes_io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def sample_grids(run):
    """The sample grids of the first, middle and last epoch: a list of ``(epoch, path)``.

    Falls back to ``[(None, images/latest.png)]`` when no epoch grid exists, and to ``[]`` when
    there is nothing at all.

    Args:
        run: a ``RunFolder``.
    """
    if not io.isdir(run.images):
        return []
    grids = sorted(
        (int(match.group(1)), io.join(run.images, name))
        for name in io.listdir(run.images)
        if (match := _SAMPLE.match(name))
    )
    if not grids:
        return [(None, run.latest_grid)] if io.isfile(run.latest_grid) else []
    picks = sorted({0, (len(grids) - 1) // 2, len(grids) - 1})
    return [grids[index] for index in picks]


def find_exports(config, objective):
    """The SavedModel version folders a run's config points at (each direction it exports), or ``[]``."""
    export_dir, name = config.get("export_dir"), config.get("name")
    if not export_dir or not name:
        return []

    paths = []
    names = names_by_direction(name)
    for model_name in (names[direction] for direction in objective.TRANSLATIONS):
        model_dir = io.join(export_dir, model_name)
        paths.extend(io.join(model_dir, str(v)) for v in existing_versions(model_dir))
    return paths


def _data_uri(png_bytes):
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")


def _table(rows):
    cells = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>"
        for key, value in rows
    )
    return f"<table>{cells}</table>"


def _summary_rows(run, log, objective):
    rows = []
    if log:
        rows.append(("epochs logged", len(log["epoch"])))
        validation = [
            f"val_{key}" for key in objective.SUMMARY_KEYS if key in objective.VALIDATION_KEYS
        ]
        for name in (*objective.SUMMARY_KEYS, *validation):
            values = [v for v in log.get(name, []) if math.isfinite(v)]
            if values:
                rows.append((f"last {name}", f"{values[-1]:.4f}"))
        fids = [(v, e) for e, v in zip(log["epoch"], log.get("fid", [])) if math.isfinite(v)]
        if fids:
            best_fid, best_epoch = min(fids)
            rows.append(("best FID", f"{best_fid:.2f} at epoch {best_epoch}"))
    if io.isfile(run.best_generator):
        rows.append(("best generator", run.best_generator))
    return rows


def render(run_dir, export_paths=None):
    """The report page of a run folder, as an HTML string.

    Args:
        run_dir: str, the run folder.
        export_paths: list of str or None, exported model folders to list; None looks them up
            from ``config.json`` (``export_dir`` and ``name``).

    Returns:
        str, a complete HTML document.
    """
    run = RunFolder(run_dir)
    objective = run.objective()
    config = json.loads(io.read_text(run.config)) if io.isfile(run.config) else {}
    log = read_log(run.csv) if io.isfile(run.csv) else {}
    if export_paths is None:
        export_paths = find_exports(config, objective)
    location = os.path.abspath(run_dir) if io.is_local(run_dir) else run_dir

    title = f"{objective.__name__} run: {config.get('name') or io.basename(location)}"
    generated = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="muted"><code>{html.escape(location)}</code> · generated {generated}</p>',
    ]
    summary = _summary_rows(run, log, objective)
    if summary:
        parts += ["<h2>Summary</h2>", _table(summary)]

    parts.append("<h2>Curves</h2>")
    figures = [plot_curves(log, *curve) for curve in curves(objective)] if log else []
    figures = [png for png in figures if png is not None]
    if figures:
        images = "".join(
            f'<figure><img alt="curve" src="{_data_uri(png)}"></figure>' for png in figures
        )
        parts.append(f'<div class="curves">{images}</div>')
    else:
        parts.append('<p class="muted">No training log yet (logs/training.csv).</p>')

    parts.append("<h2>Samples</h2>")
    grids = sample_grids(run)
    if grids:
        parts.append(
            '<p class="muted">Each grid shows fixed test images and their translations.</p>'
        )
    for epoch, path in grids:
        uri = _data_uri(io.read_bytes(path))
        caption = f"Epoch {epoch}" if epoch is not None else "Latest"
        parts.append(
            f'<figure><img alt="{caption}" src="{uri}"><figcaption>{caption} · '
            f"<code>{html.escape(io.basename(path))}</code></figcaption></figure>"
        )
    if not grids:
        parts.append('<p class="muted">No sample grids (images/epoch_NNN.png).</p>')

    parts.append("<h2>Exports</h2>")
    if export_paths:
        items = "".join(f"<li><code>{html.escape(path)}</code></li>" for path in export_paths)
        parts.append(f"<ul>{items}</ul>")
    else:
        parts.append('<p class="muted">No exported SavedModels.</p>')

    if config:
        # Values as config.json writes them (null, false); strings without quotes.
        rows = [
            (key, value if isinstance(value, str) else json.dumps(value))
            for key, value in sorted(config.items())
        ]
        parts += ["<h2>Configuration</h2>", f'<div class="config">{_table(rows)}</div>']
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir, export_paths=None):
    """Writes ``RUN/report.html`` (atomically and durably) and returns its path.

    Args:
        run_dir: str, the run folder (``config.json``, ``logs/training.csv``, ``images/``).
        export_paths: list of str or None, exported model folders to list; None looks them up
            from ``config.json``.

    Returns:
        str, the path of the report.

    Raises:
        ValueError: if ``run_dir`` is not a run folder.
    """
    if not io.isdir(run_dir):
        raise ValueError(f"no such run folder: {run_dir}")
    run = RunFolder(run_dir)
    if not run.is_run():
        raise ValueError(
            f"{run_dir} is not a run folder (it has none of config.json, logs/training.csv, images/)"
        )
    io.write_text(run.report, render(run_dir, export_paths), durable=True)
    return run.report
