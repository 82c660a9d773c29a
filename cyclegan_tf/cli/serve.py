"""``cyclegan-serve`` / ``scripts/serve.py``: TF Serving's REST API and a web page, for development."""

import argparse
import ipaddress
import logging
import re

from cyclegan_tf.cli.common import (
    PRECISIONS,
    add_verbose_argument,
    bf16_note,
    quiet_tensorflow,
    user_errors,
)
from cyclegan_tf.model_store import FORMATS, QUANTIZE_MODES
from cyclegan_tf.serving import limits

PROG = "cyclegan-serve"
_SERVE_MISSING = (
    "serving needs FastAPI and uvicorn; install the extra: pip install 'cyclegan_tf[serve]'"
)

logger = logging.getLogger(PROG)


def pixel_count(text):
    """``"4096x4096"`` or ``"16777216"`` to a pixel count (argparse type)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX*]\s*(\d+))?\s*", text)
    if not match or int(match.group(1)) * int(match.group(2) or 1) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT or a pixel count, e.g. 4096x4096. Received: {text!r}"
        )
    return int(match.group(1)) * int(match.group(2) or 1)


def positive_float(text):
    """A float > 0 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number. Received: {text!r}")
    return value


def positive_int(text):
    """An int > 0 (argparse type)."""
    if not text.strip().isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number. Received: {text!r}")
    return int(text)


def build_parser():
    """The argument parser; flag names follow TF Serving's where it has one."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve every model under --model-base-path with TF Serving's REST API "
        "(/v1/models/<name>[:predict|/metadata]) and a web page at /.",
    )
    parser.add_argument(
        "--model-base-path",
        default="saved_models",
        help="Folder with one subfolder per model, each with numeric versions (default: %(default)s).",
    )
    parser.add_argument("--port", type=int, default=8501, help="Port (default: %(default)s).")
    parser.add_argument(
        "--host", default="127.0.0.1", help="Address to bind (default: %(default)s, loopback only)."
    )
    parser.add_argument(
        "--max-request-mb",
        type=positive_float,
        default=limits.MAX_REQUEST_BYTES / 2**20,
        help="Largest request body in MiB; larger ones get 413 (default: %(default)g).",
    )
    parser.add_argument(
        "--max-pixels",
        type=pixel_count,
        default=limits.MAX_PIXELS,
        help="Largest image, as WIDTHxHEIGHT or a pixel count; larger ones get 400 "
        "(default: %(default)s, 4096x4096).",
    )
    parser.add_argument(
        "--max-request-pixels",
        type=pixel_count,
        default=limits.MAX_REQUEST_PIXELS,
        help="Most pixels of all the images of one request together; more get 400 "
        "(default: %(default)s, 4096x4096).",
    )
    parser.add_argument(
        "--max-instances",
        type=positive_int,
        default=limits.MAX_INSTANCES,
        help="Most instances (images) in one request; more get 400 (default: %(default)s).",
    )
    parser.add_argument(
        "--rest-api-timeout-in-ms",
        type=positive_int,
        default=int(limits.REQUEST_TIMEOUT_SECONDS * 1000),
        help="How long a request may take once its headers arrived; later it is stopped with 504 "
        "(TF Serving's flag; default: %(default)s, 10 minutes: a large image translated in tiles "
        "takes minutes on a small CPU).",
    )
    parser.add_argument(
        "--body-timeout-seconds",
        type=positive_float,
        default=limits.BODY_TIMEOUT_SECONDS,
        help="How long a request's body may take to arrive; later it gets 408 (default: %(default)g).",
    )
    parser.add_argument(
        "--header-timeout-seconds",
        type=positive_float,
        default=limits.HEADER_TIMEOUT_SECONDS,
        help="How long a connection may take to send a request's headers; later it is closed "
        "with 408 (default: %(default)g).",
    )
    parser.add_argument(
        "--max-connections",
        type=positive_int,
        default=limits.MAX_CONNECTIONS,
        help="Connections served at once; more get 503 (default: %(default)s).",
    )
    parser.add_argument(
        "--file-system-poll-wait-seconds",
        type=float,
        default=1.0,
        help="Seconds between scans for new versions; 0 scans once at start (default: %(default)g).",
    )
    parser.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=limits.MAX_CONCURRENT_RUNS,
        help="How many model runs may overlap; requests beyond wait their turn "
        "(default: %(default)s).",
    )
    parser.add_argument(
        "--max-memory-gb",
        type=positive_float,
        default=limits.MAX_MEMORY_GB,
        help="Memory (GiB) the requests in flight may hold together (model runs, JSON parsing and "
        "writing); images too large for a run's share are translated in tiles "
        "(default: %(default)g).",
    )
    parser.add_argument(
        "--max-wait-seconds",
        type=float,
        default=limits.WAIT_SECONDS,
        help="How long a request waits for room in the budget before it gets 503 "
        "(default: %(default)g).",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="bf16: translate on the tiled engine with bfloat16 convolutions, float32 in and out "
        "(SavedModels exported by cyclegan_tf), or with OpenVINO's bf16 inference precision "
        "(--format openvino) (default: %(default)s).",
    )
    parser.add_argument(
        "--format",
        default="saved_model",
        choices=tuple(FORMATS),
        help="What to serve of each version: the SavedModel <version>/, or the export written by "
        "cyclegan-export --format (<version>.onnx, .openvino/, .tflite), run by its own runtime "
        "behind the same API (default: %(default)s).",
    )
    parser.add_argument(
        "--quantize",
        default="none",
        choices=QUANTIZE_MODES,
        help="With --format: serve that variant (<version>.int8.onnx ...) (default: %(default)s).",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="Log level, access log included at info (default: %(default)s).",
    )
    add_verbose_argument(parser)
    return parser


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _source(args):
    """The registry source for ``--format``: None for SavedModels."""
    if args.format == "saved_model":
        if args.quantize != "none":
            raise ValueError("--quantize goes with --format onnx, openvino or litert")
        return None
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf.serving.exported import ExportSource

    return ExportSource(args.format, args.quantize, precision=args.precision)


def main(argv=None):
    """Loads the models and serves them until interrupted."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    note = bf16_note(PROG) if args.precision == "bf16" else None
    if note:
        logging.getLogger(__name__).warning(note)
    with user_errors(PROG, flags={"base_path": "--model-base-path"}):
        if not 0 < args.port < 65536:
            raise ValueError(f"--port must be in 1..65535. Received: {args.port}")
        try:
            # Imported on use: --help and flag errors answer without loading the library.
            from cyclegan_tf.serving.connections import run_server
            from cyclegan_tf.serving.rest import create_app
        except ImportError as error:
            raise ValueError(f"{_SERVE_MISSING} ({error})") from None
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf.serving.registry import ModelRegistry

        registry = ModelRegistry(
            args.model_base_path, args.file_system_poll_wait_seconds, _source(args)
        )
        registry.refresh()
        app = create_app(
            registry,
            max_request_bytes=int(args.max_request_mb * 2**20),
            max_pixels=args.max_pixels,
            max_concurrent_runs=args.max_concurrent_runs,
            max_memory_gb=args.max_memory_gb,
            max_wait_seconds=args.max_wait_seconds,
            precision=args.precision,
            max_request_pixels=args.max_request_pixels,
            max_instances=args.max_instances,
            request_timeout_seconds=args.rest_api_timeout_in_ms / 1000,
            body_timeout_seconds=args.body_timeout_seconds,
        )
    names = registry.model_names()
    if names:
        served = ", ".join(f"{name} (version {registry.get(name).version})" for name in names)
        logger.info("Serving %s from %s", served, args.model_base_path)
    else:
        logger.warning(
            "No models in %s yet; new ones are picked up as they appear", args.model_base_path
        )
    if not _is_loopback(args.host):
        logger.warning("Listening on %s: this server has no authentication", args.host)
    logger.info("Web page: http://%s:%d/", args.host, args.port)
    registry.start_polling()
    try:
        run_server(
            app,
            args.host,
            args.port,
            log_level=args.log_level,
            header_timeout_seconds=args.header_timeout_seconds,
            max_connections=args.max_connections,
        )
    finally:
        registry.stop_polling()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
