"""The server's default bounds, in one place: what the library and ``cyclegan-serve`` both use.

This module imports nothing (no TensorFlow, FastAPI or uvicorn), so the command's ``--help`` and flag
errors answer without the ``[serve]`` extra. Each bound is enforced where the docstring says.
"""

# Largest image, and most pixels of all the images of one request (``predict.py``; 400 beyond).
MAX_PIXELS = 4096 * 4096
MAX_REQUEST_PIXELS = 4096 * 4096
# Most instances (images) in one request (``predict.py``; 400 beyond).
MAX_INSTANCES = 64
# Largest request body (``rest.py``; 413 beyond).
MAX_REQUEST_BYTES = 32 * 2**20
# How long a request may take once its headers arrived (``rest.py``; 504 beyond). TF Serving's
# ``--rest_api_timeout_in_ms``; 10 minutes, as a large image translated in tiles takes minutes on a
# small CPU.
REQUEST_TIMEOUT_SECONDS = 600.0
# How long a request's body may take to arrive (``rest.py``; 408 beyond).
BODY_TIMEOUT_SECONDS = 60.0
# How long a connection may take to send a request's headers (``connections.py``; closed with 408).
HEADER_TIMEOUT_SECONDS = 10.0
# Connections served at once (``connections.py``; 503 beyond).
MAX_CONNECTIONS = 256
# Memory the requests in flight may hold together, model runs that may overlap, and how long a
# request waits for room before it gets 503 (``runs.py``).
MAX_MEMORY_GB = 6.0
MAX_CONCURRENT_RUNS = 2
WAIT_SECONDS = 10.0
