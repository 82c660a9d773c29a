"""Latency, throughput and errors of a ``:predict`` endpoint under concurrent clients.

``cyclegan-loadtest --url http://127.0.0.1:8501 --model apple2orange --clients 4 --duration 30``
starts ``--clients`` threads that each send one random PNG through ``translate_bytes``, wait for the
answer and send again, for ``--duration`` seconds (or ``--requests`` requests in all). Every answer
counts, errors included (by HTTP status, ``connection`` for a failed connection, ``timeout`` for no
answer in time): the result gives the counts, the p50/p90/p99 latency of the successful requests and
the successful requests per second. Meant for loopback: it measures a server, it does not attack one.
"""

import base64
import collections
import concurrent.futures
import io
import json
import math
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image


def png_bytes(size=256, seed=0):
    """A random ``size`` x ``size`` RGB image as PNG bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def predict_body(image_bytes):
    """A row-format ``translate_bytes`` request for one image."""
    b64 = base64.b64encode(image_bytes).decode("ascii")
    request = {"signature_name": "translate_bytes", "instances": [{"b64": b64}]}
    return json.dumps(request).encode("utf-8")


def post(url, body, timeout=120):
    """POSTs ``body``; returns the decoded JSON response (raises on HTTP errors)."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def send(url, body, timeout=120):
    """POSTs ``body`` and never raises.

    Returns:
        ``(outcome, seconds)``: the HTTP status as a str (``"200"``, ``"503"``), ``"connection"`` for a
        refused or dropped connection, ``"timeout"`` for no answer within ``timeout`` seconds, or
        ``"invalid"`` for a 200 whose body is not TF Serving's answer to one image.
    """
    start = time.perf_counter()
    try:
        answer = post(url, body, timeout)
        outcome = "200" if len(answer.get("predictions", ())) == 1 else "invalid"
    except urllib.error.HTTPError as error:
        error.read()
        outcome = str(error.code)
    except TimeoutError:
        outcome = "timeout"
    except (urllib.error.URLError, ConnectionError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None)
        outcome = "timeout" if isinstance(reason, (TimeoutError, socket.timeout)) else "connection"
    return outcome, time.perf_counter() - start


def percentile(sorted_values, fraction):
    """The nearest-rank percentile of a sorted list (None when it is empty)."""
    if not sorted_values:
        return None
    rank = math.ceil(fraction * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(rank, 1)) - 1]


def run(
    url,
    model,
    size=256,
    clients=4,
    requests=None,
    duration=None,
    warmup=1,
    timeout=120,
):
    """Loads ``model``'s ``:predict`` with ``clients`` concurrent clients.

    Args:
        url: str, the server, e.g. ``http://127.0.0.1:8501``.
        model: str, the model name.
        size: int, the square image side in pixels. Defaults to 256.
        clients: int, concurrent clients, each sending its next request once answered. Defaults to 4.
        requests: int or None, requests in all; None with ``duration``.
        duration: float or None, seconds to keep sending; without it, 20 requests (or ``requests``).
        warmup: int, requests sent first, one at a time, and not counted. Defaults to 1.
        timeout: float, seconds a client waits for an answer. Defaults to 120.

    Returns:
        A dict: ``counts`` (outcome → number, see ``send``), ``errors`` (all but 200),
        ``p50_s``/``p90_s``/``p99_s`` and ``mean_s`` (latency of the 200s), ``requests_per_s`` (200s per
        second of the run), ``seconds`` and the settings.
    """
    if clients <= 0 or (requests is not None and requests <= 0):
        raise ValueError(
            f"clients and requests must be positive. Received: clients={clients}, "
            f"requests={requests}"
        )
    if duration is not None and duration <= 0:
        raise ValueError(f"duration must be positive. Received: {duration}")
    if requests is None and duration is None:
        requests = 20
    endpoint = f"{url.rstrip('/')}/v1/models/{model}:predict"
    body = predict_body(png_bytes(size))
    for _ in range(warmup):
        send(endpoint, body, timeout)
    results = []
    lock = threading.Lock()
    issued = [0]
    start = time.perf_counter()
    stop_at = None if duration is None else start + duration

    def take_turn():
        with lock:
            if requests is not None and issued[0] >= requests:
                return False
            if stop_at is not None and time.perf_counter() >= stop_at:
                return False
            issued[0] += 1
            return True

    def client():
        while take_turn():
            outcome = send(endpoint, body, timeout)
            with lock:
                results.append(outcome)

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    seconds = time.perf_counter() - start
    counts = collections.Counter(outcome for outcome, _ in results)
    latencies = sorted(latency for outcome, latency in results if outcome == "200")
    return {
        "model": model,
        "size": size,
        "clients": clients,
        "seconds": seconds,
        "counts": dict(sorted(counts.items())),
        "errors": len(results) - counts["200"],
        "requests_per_s": counts["200"] / seconds,
        "mean_s": sum(latencies) / len(latencies) if latencies else None,
        "p50_s": percentile(latencies, 0.50),
        "p90_s": percentile(latencies, 0.90),
        "p99_s": percentile(latencies, 0.99),
    }


def summary(result):
    """One line for a person: throughput, latency percentiles and the counts by outcome."""

    def ms(value):
        return "-" if value is None else f"{1000 * value:.0f} ms"

    counts = ", ".join(f"{outcome}: {number}" for outcome, number in result["counts"].items())
    return (
        f"{result['clients']} client(s), {result['seconds']:.1f} s: "
        f"{result['requests_per_s']:.2f} req/s, p50 {ms(result['p50_s'])}, "
        f"p90 {ms(result['p90_s'])}, p99 {ms(result['p99_s'])}; {counts or 'no answers'} "
        f"({result['errors']} error(s))"
    )
