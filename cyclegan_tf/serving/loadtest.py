"""Latency and throughput of a ``:predict`` endpoint with a few concurrent clients.

``cyclegan-loadtest --url http://127.0.0.1:8501 --model apple2orange`` sends one
random PNG image per request through ``translate_bytes`` and prints the median
latency of sequential requests and the requests/s of ``--concurrency`` clients. Meant for loopback and
a few dozen requests: it measures a server, it does not stress one.
"""

import base64
import concurrent.futures
import io
import json
import statistics
import time
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


def measure(url, model, size=256, requests=20, concurrency=4, warmup=2):
    """Measures sequential latency and concurrent throughput of ``model``'s ``:predict``.

    Args:
        url: str, the server, e.g. ``http://127.0.0.1:8501``.
        model: str, the model name.
        size: int, the square image side in pixels. Defaults to 256.
        requests: int, requests per phase (sequential, then concurrent). Defaults to 20.
        concurrency: int, concurrent clients in the second phase. Defaults to 4.
        warmup: int, requests sent first and not counted. Defaults to 2.

    Returns:
        A dict with ``median_latency_s``, ``p90_latency_s``, ``requests_per_s`` and the settings.
    """
    if requests <= 0 or concurrency <= 0:
        raise ValueError(
            f"requests and concurrency must be positive. Received: {requests}, {concurrency}"
        )
    endpoint = f"{url.rstrip('/')}/v1/models/{model}:predict"
    body = predict_body(png_bytes(size))
    for _ in range(warmup):
        post(endpoint, body)
    latencies = []
    for _ in range(requests):
        start = time.perf_counter()
        post(endpoint, body)
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: post(endpoint, body), range(requests)))
    elapsed = time.perf_counter() - start
    if any(len(result["predictions"]) != 1 for result in results):
        raise RuntimeError("a concurrent request returned the wrong number of predictions")
    latencies.sort()
    return {
        "model": model,
        "size": size,
        "requests": requests,
        "concurrency": concurrency,
        "median_latency_s": statistics.median(latencies),
        "p90_latency_s": latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))],
        "requests_per_s": requests / elapsed,
    }
