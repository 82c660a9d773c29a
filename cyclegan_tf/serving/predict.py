"""TF Serving's ``:predict`` request and response JSON, run against a loaded signature.

Request: ``{"signature_name": ..., "instances": [...]}`` (row format: one item per example, a bare value
when the signature has one input, else ``{input_name: value}``) or ``{"inputs": ...}`` (columnar
format: the whole tensor, or ``{input_name: tensor}``). Response: ``{"predictions": ...}`` for the row
format, ``{"outputs": ...}`` for the columnar one; a single output is given without its name.
String tensors whose name ends in ``_bytes`` travel as ``{"b64": "<base64>"}``; ``NaN`` and
``Infinity`` are accepted and written as JSON tokens, as TF Serving does.

Reference:
    https://www.tensorflow.org/tfx/serving/api_rest (Predict API, JSON mapping, binary values).
"""

import base64
import binascii
import dataclasses
import io
import json

import numpy as np
import tensorflow as tf
from PIL import Image

from cyclegan_tf.serving import limits

DEFAULT_SIGNATURE = "serving_default"
# What data.decode.decode_image, used by the server and the exported translate_bytes signature, reads.
DECODABLE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")
DEFAULT_MAX_PIXELS = limits.MAX_PIXELS
DEFAULT_MAX_REQUEST_PIXELS = limits.MAX_REQUEST_PIXELS
DEFAULT_MAX_INSTANCES = limits.MAX_INSTANCES


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one ``:predict`` request may hold; more is refused with 400 before any model run.

    Attributes:
        max_pixels: int, height x width of one image.
        max_request_pixels: int, the pixels of all the request's images together.
        max_instances: int, the instances (examples, images) of one request.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS
    max_instances: int = DEFAULT_MAX_INSTANCES

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if int(value) <= 0:
                raise ValueError(f"{field.name} must be positive. Received: {value}")


@dataclasses.dataclass
class ParsedRequest:
    """A ``:predict`` request checked against its signature and the limits.

    Attributes:
        signature_name: str.
        arrays: dict of input name to NumPy array.
        sizes: list of ``(height, width)``, the images in the request, in order.
        row_format: bool, ``"instances"`` (answered as ``"predictions"``) rather than ``"inputs"``.
    """

    signature_name: str
    arrays: dict
    sizes: list
    row_format: bool


class RequestError(Exception):
    """A request the server refuses; ``status`` is the HTTP status, the message its ``error``."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _bad(message):
    return RequestError(400, message)


def parse_json(body):
    """Parses a request body as a JSON object (``NaN``/``Infinity`` allowed, as TF Serving does)."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise _bad(f"JSON Parse error: {error}") from None
    except RecursionError:
        raise _bad("JSON Parse error: the document is nested too deeply") from None
    if not isinstance(request, dict):
        raise _bad(
            f"JSON Value: the request must be a JSON object. Received: {type(request).__name__}"
        )
    return request


def _is_b64(value):
    return isinstance(value, dict) and set(value) == {"b64"}


def _named(value):
    """Whether ``value`` is an object keyed by the input names (rather than the value of one input)."""
    return isinstance(value, dict) and not _is_b64(value) and bool(value)


def _split_row_format(instances, names):
    if not isinstance(instances, list) or not instances:
        raise _bad('"instances" must be a non-empty list (one item per example)')
    if len(names) == 1 and not any(_named(item) for item in instances):
        return {names[0]: instances}
    columns = {name: [] for name in names}
    for index, item in enumerate(instances):
        if not _named(item) or set(item) != set(names):
            received = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise _bad(
                f"instances[{index}] must be an object with the signature's inputs {names}. "
                f"Received: {received}"
            )
        for name in names:
            columns[name].append(item[name])
    return columns


def _split_columnar_format(inputs, names):
    if _named(inputs):
        if set(inputs) != set(names):
            raise _bad(
                f'"inputs" names {sorted(inputs)} do not match the signature\'s inputs {names}'
            )
        return dict(inputs)
    if len(names) != 1:
        raise _bad(f'"inputs" must be an object with the signature\'s inputs {names}')
    return {names[0]: inputs}


def _decode_strings(value, path):
    """Nested lists of strings / ``{"b64": ...}`` objects to nested lists of ``bytes``."""
    if isinstance(value, list):
        return [_decode_strings(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if _is_b64(value):
        if not isinstance(value["b64"], str):
            raise _bad(f"{path}: the b64 value must be a string")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise _bad(f"{path}: the b64 value is not valid base64") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    raise _bad(f'{path}: expected a string or {{"b64": ...}}. Received: {json.dumps(value)[:40]}')


def _shape_str(shape):
    return "[" + ", ".join("-1" if dim is None else str(dim) for dim in shape) + "]"


def to_array(value, spec, name):
    """Converts one input's JSON value to a NumPy array that fits ``spec``.

    Raises:
        RequestError: 400 if the value is ragged, of the wrong type, or of an incompatible shape.
    """
    if spec.dtype == tf.string:
        decoded = _decode_strings(value, name)
        try:
            array = np.array(decoded, dtype=object)
        except ValueError:
            raise _bad(
                f"{name}: the nested lists are ragged; a tensor needs equal lengths"
            ) from None
        if array.size and not all(isinstance(item, bytes) for item in array.flat):
            raise _bad(f"{name}: the nested lists are ragged; a tensor needs equal lengths")
    else:
        try:
            array = np.asarray(value)
        except ValueError:
            raise _bad(
                f"{name}: the nested lists are ragged; a tensor needs equal lengths"
            ) from None
        kinds = "b" if spec.dtype == tf.bool else "iuf" if spec.dtype.is_floating else "iu"
        if array.dtype.kind not in kinds:
            raise _bad(
                f"{name}: expected {spec.dtype.name} values (JSON numbers), but the values are not "
                "all numbers (or the lists are ragged)"
            )
        array = array.astype(spec.dtype.as_numpy_dtype)
    if not spec.shape.is_compatible_with(array.shape):
        raise _bad(
            f"{name}: the signature expects shape {_shape_str(spec.shape)}. "
            f"Received: {_shape_str(array.shape)}"
        )
    return array


def _check_instances(values, row_format, max_instances):
    """Refuses a request of more than ``max_instances`` examples before its values are converted."""
    counts = [len(value) for value in values.values() if isinstance(value, list)]
    count = len(next(iter(values.values()))) if row_format else max(counts, default=1)
    if count > max_instances:
        raise _bad(
            f"this request holds {count} instances; this server accepts at most {max_instances} per "
            "request (--max-instances): send them in several requests"
        )


def _check_request_pixels(sizes, max_request_pixels):
    total = sum(height * width for height, width in sizes)
    if total > max_request_pixels:
        raise _bad(
            f"this request's {len(sizes)} image(s) hold {total} pixels together; this server accepts "
            f"at most {max_request_pixels} per request (--max-request-pixels): send them in several "
            "requests"
        )


def check_image_sizes(arrays, max_pixels):
    """Refuses images that cannot be decoded or hold more than ``max_pixels`` pixels.

    ``*_bytes`` inputs are checked from their headers (and PNG chunk checksums, which find truncated
    files) before anything is decoded; float inputs of rank 4 (``[batch, height, width, channels]``)
    from their shape.

    Returns:
        list of ``(height, width)``, one per image found.

    Raises:
        RequestError: 400 naming the offending item.
    """
    sizes = []
    for name, array in arrays.items():
        if array.dtype == object and name.endswith("_bytes"):
            for index, data in np.ndenumerate(array):
                where = f"{name}[{', '.join(map(str, index))}]"
                width, height = _image_size(data, where)
                _check_pixels(where, width, height, max_pixels)
                sizes.append((height, width))
        elif array.ndim == 4:
            for index in range(array.shape[0]):
                _check_pixels(f"{name}[{index}]", array.shape[2], array.shape[1], max_pixels)
                sizes.append(tuple(array.shape[1:3]))
    return sizes


def _image_size(data, where):
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, size = image.format, image.size
    except Image.DecompressionBombError as error:
        raise _bad(f"{where} is too large: {error}") from None
    except Exception:  # PIL raises several types for data that is not an image
        raise _bad(
            f"{where} is not an image ({len(data)} bytes that are not JPEG, PNG, GIF, BMP or WebP)"
        ) from None
    if image_format not in DECODABLE_FORMATS:
        raise _bad(f"{where} is a {image_format} image; send JPEG, PNG, GIF, BMP or WebP")
    if image_format == "PNG":
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
        except Exception as error:  # noqa: BLE001 - any failure means a damaged file
            raise _bad(
                f"{where}: the image is truncated or damaged ({len(data)} bytes; {error}); "
                "send the complete file"
            ) from None
    return size


def _check_pixels(where, width, height, max_pixels):
    if width * height > max_pixels:
        raise _bad(
            f"{where} is {width}x{height} = {width * height} pixels; this server accepts at most "
            f"{max_pixels} pixels per image (--max-pixels)"
        )


def to_json_value(array, name):
    """A NumPy output as JSON-ready nested lists (``{"b64": ...}`` for ``*_bytes`` strings)."""
    if array.dtype == object:
        if name.endswith("_bytes"):
            encode = np.frompyfunc(lambda b: {"b64": base64.b64encode(b).decode("ascii")}, 1, 1)
        else:
            encode = np.frompyfunc(lambda b: b.decode("utf-8", errors="replace"), 1, 1)
        encoded = encode(array)
        return encoded.tolist() if isinstance(encoded, np.ndarray) else encoded
    return array.tolist()


def parse_request(served, request, limits):
    """Checks a parsed ``:predict`` body against a served version's signature and the limits.

    Args:
        served: a ``registry.ServedVersion``.
        request: dict, the parsed request body.
        limits: a ``Limits``.

    Returns:
        A ``ParsedRequest``.

    Raises:
        RequestError: 400 for an unknown signature, inputs that do not fit it, or a request over the
            limits.
    """
    signature_name = request.get("signature_name") or DEFAULT_SIGNATURE
    if not isinstance(signature_name, str) or signature_name not in served.signatures:
        raise _bad(f'Serving signature name: "{signature_name}" not found in signature def')
    if ("instances" in request) == ("inputs" in request):
        raise _bad('the request must contain either "instances" or "inputs", but not both')
    specs = served.input_specs(signature_name)
    names = sorted(specs)
    row_format = "instances" in request
    try:
        if row_format:
            values = _split_row_format(request["instances"], names)
        else:
            values = _split_columnar_format(request["inputs"], names)
        _check_instances(values, row_format, limits.max_instances)
        arrays = {name: to_array(values[name], specs[name], name) for name in names}
    except RecursionError:
        raise _bad("the input values are nested too deeply") from None
    sizes = check_image_sizes(arrays, limits.max_pixels)
    _check_request_pixels(sizes, limits.max_request_pixels)
    return ParsedRequest(signature_name, arrays, sizes, row_format)


def response_body(outputs, row_format):
    """TF Serving's response dict for ``{output name: NumPy array}``.

    Returns:
        ``{"predictions": ...}`` for the row format, ``{"outputs": ...}`` for the columnar one; a
        single output is given without its name.
    """
    if row_format:
        if len(outputs) == 1:
            ((name, array),) = outputs.items()
            return {"predictions": to_json_value(array, name)}
        batch = min(array.shape[0] for array in outputs.values())
        return {
            "predictions": [
                {name: to_json_value(array[i], name) for name, array in outputs.items()}
                for i in range(batch)
            ]
        }
    if len(outputs) == 1:
        ((name, array),) = outputs.items()
        return {"outputs": to_json_value(array, name)}
    return {"outputs": {name: to_json_value(array, name) for name, array in outputs.items()}}


def predict(served, request, limits, runs, deadline=None):
    """Runs one ``:predict`` request against a served version.

    Args:
        served: a ``registry.ServedVersion``.
        request: dict, the parsed request body.
        limits: a ``Limits``.
        runs: a ``runs.ModelRuns``: the memory budget the model runs wait for, and tiling for images
            too large to run whole.
        deadline: a ``runs.Deadline`` or None.

    Returns:
        The response dict: ``{"predictions": ...}`` or ``{"outputs": ...}``.

    Raises:
        RequestError: 400 for an unknown signature, inputs that do not fit it or a request over the
            limits, 503 when the server stays busy, 504 past the deadline.
    """
    parsed = parse_request(served, request, limits)
    outputs = runs.run(served, parsed.signature_name, parsed.arrays, parsed.sizes, deadline)
    return response_body(outputs, parsed.row_format)


def render(response):
    """Serialises a response dict the way TF Serving does (``NaN``/``Infinity`` as tokens)."""
    return json.dumps(response, allow_nan=True, separators=(",", ":")).encode("utf-8")
