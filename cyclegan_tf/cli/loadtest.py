"""``cyclegan-loadtest``: latency and throughput of a ``:predict`` endpoint with concurrent clients."""

import argparse
import json
import sys

PROG = "cyclegan-loadtest"


def main(argv=None):
    """Prints the measurement as one JSON line."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8501")
    parser.add_argument("--model", default="apple2orange")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf.serving.loadtest import measure

    result = measure(args.url, args.model, args.size, args.requests, args.concurrency)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
