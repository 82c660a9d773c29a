"""``cyclegan-loadtest``: latency, throughput and errors of a ``:predict`` endpoint under load."""

import argparse
import json
import sys

from cyclegan_tf.cli.common import user_errors

PROG = "cyclegan-loadtest"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Send translate_bytes requests from concurrent clients; print the counts by "
        "status, the p50/p90/p99 latency and the throughput (one line, then the JSON).",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8501", help="(default: %(default)s)")
    parser.add_argument("--model", default="apple2orange", help="(default: %(default)s)")
    parser.add_argument(
        "--size", type=int, default=256, help="Square image side (default: %(default)s)."
    )
    parser.add_argument(
        "--clients",
        "--concurrency",
        type=int,
        default=4,
        help="Concurrent clients (default: %(default)s).",
    )
    parser.add_argument(
        "--requests",
        type=int,
        help="Requests in all (default: 20, or as many as --duration allows).",
    )
    parser.add_argument("--duration", type=float, help="Seconds to keep sending.")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="Seconds a client waits for an answer (default: %(default)g).",
    )
    return parser


def main(argv=None):
    """Prints the measurement; returns 1 if any request failed, else 0."""
    args = build_parser().parse_args(argv)
    with user_errors(PROG):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf.serving.loadtest import run, summary

        result = run(
            args.url,
            args.model,
            size=args.size,
            clients=args.clients,
            requests=args.requests,
            duration=args.duration,
            timeout=args.timeout,
        )
    print(summary(result))
    json.dump(result, sys.stdout)
    print()
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
