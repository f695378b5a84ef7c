"""A hand-written protobuf wire-format reader for the few SavedModel fields the contract needs.

Field numbers (tensorflow/core/protobuf/saved_model.proto, meta_graph.proto, saver.proto,
tensorflow/core/framework/tensor_shape.proto):

    SavedModel     1 saved_model_schema_version (int64), 2 meta_graphs (repeated MetaGraphDef)
    MetaGraphDef   1 meta_info_def, 2 graph_def, 3 saver_def, 4 collection_def (map), 5 signature_def (map),
                   6 asset_file_def, 7 object_graph_def
    MetaInfoDef    1 meta_graph_version, 2 stripped_op_list, 3 any_info, 4 tags (repeated string),
                   5 tensorflow_version, 6 tensorflow_git_version
    SignatureDef   1 inputs (map<string, TensorInfo>), 2 outputs (map), 3 method_name
    TensorInfo     1 name, 4 coo_sparse, 5 composite_tensor (oneof), 2 dtype (DataType), 3 tensor_shape
    TensorShapeProto 2 dim (repeated Dim{1 size, 2 name}), 3 unknown_rank
    map entries    1 key, 2 value

The reader walks a byte *source* that fetches ranges on demand, so the GraphDef (field 2, nearly all of a big
saved_model.pb) is skipped by its length prefix and never read. Every declared length is checked against the
enclosing message and the object size: a truncated or corrupt file fails the walk with `WireError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
FIRST_WINDOW = 64 * 1024
WINDOW = 64 * 1024
MAX_SMALL_FIELD = (
    4 * 1024 * 1024
)  # signature entries, saver_def, tags: read whole; anything larger is suspect

DTYPES = {
    0: "DT_INVALID",
    1: "DT_FLOAT",
    2: "DT_DOUBLE",
    3: "DT_INT32",
    4: "DT_UINT8",
    5: "DT_INT16",
    6: "DT_INT8",
    7: "DT_STRING",
    8: "DT_COMPLEX64",
    9: "DT_INT64",
    10: "DT_BOOL",
    11: "DT_QINT8",
    12: "DT_QUINT8",
    13: "DT_QINT32",
    14: "DT_BFLOAT16",
    15: "DT_QINT16",
    16: "DT_QUINT16",
    17: "DT_UINT16",
    18: "DT_COMPLEX128",
    19: "DT_HALF",
    20: "DT_RESOURCE",
    21: "DT_VARIANT",
    22: "DT_UINT32",
    23: "DT_UINT64",
}


class WireError(ValueError):
    """The bytes are not a well-formed protobuf as expected (truncated, corrupt, not a SavedModel)."""


# -- byte sources -----------------------------------------------------------------------------------------


class ByteSource(Protocol):
    size: int

    def read(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes from `offset` (fewer only at the end of the object)."""


class BytesSource:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    def window(self, offset: int, length: int) -> tuple[bytes, int]:
        return self.data, 0


class RangedSource:
    """Reads an object of known size through `fetch(start, end)` (end exclusive) in windows, caching them."""

    def __init__(
        self,
        fetch: Callable[[int, int], bytes],
        size: int,
        *,
        first_window: int = FIRST_WINDOW,
        window: int = WINDOW,
    ) -> None:
        self._fetch = fetch
        self.size = size
        self._first_window = first_window
        self._window = window
        self._segments: list[tuple[int, bytes]] = []
        self.fetches = 0

    def read(self, offset: int, length: int) -> bytes:
        end = min(self.size, offset + length)
        if offset >= end:
            return b""
        for start, data in self._segments:
            if start <= offset and end <= start + len(data):
                return data[offset - start : end - start]
        window = self._first_window if not self._segments else self._window
        fetch_end = min(self.size, offset + max(end - offset, window))
        data = self._fetch(offset, fetch_end)
        self.fetches += 1
        if len(data) != fetch_end - offset:
            raise WireError(
                f"the object returned {len(data)} bytes at offset {offset} where {fetch_end - offset} "
                "were expected (was it replaced during the check?)"
            )
        self._segments.append((offset, data))
        return data[: end - offset]

    def window(self, offset: int, length: int) -> tuple[bytes, int]:
        """(a cached segment, its offset) covering [offset, offset + length), fetched if need be."""
        end = min(self.size, offset + length)
        for start, data in self._segments:
            if start <= offset and end <= start + len(data):
                return data, start
        return self.read(offset, length), offset


# -- wire primitives --------------------------------------------------------------------------------------


def read_varint(buf: bytes, pos: int, limit: int | None = None) -> tuple[int, int]:
    """The varint at `pos` and the position after it; it must end before `limit` (default: the buffer)."""
    limit = len(buf) if limit is None else limit
    result = 0
    shift = 0
    while True:
        if pos >= limit:
            raise WireError("a varint runs past the end of its message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("a varint is longer than 10 bytes")


def signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


class Field(NamedTuple):  # a tuple: one is made per field walked, and a walk makes hundreds
    number: int
    wire_type: int
    offset: int  # where the tag starts
    start: int  # where the value (payload) starts
    end: int  # one past the value
    value: int = 0  # for VARINT fields


_HEAD = 22  # a tag and a varint (10 bytes each) always fit


def iter_fields(
    src: ByteSource, start: int = 0, end: int | None = None, *, what: str = "message"
) -> Iterator[Field]:
    """The fields of the message occupying [start, end) of `src`, each checked to fit inside it."""
    end = src.size if end is None else end
    pos = start
    whole = isinstance(src, BytesSource)  # then every byte is at hand: no windows
    buf, base = (src.data, 0) if whole else (b"", 0)  # bytes of `src` from offset `base`
    limit = min(end, len(buf))
    while pos < end:
        if not whole and (pos < base or base + len(buf) - pos < min(_HEAD, end - pos)):
            buf, base = _window(src, pos, min(_HEAD, end - pos))
            limit = min(end, base + len(buf)) - base
        i = pos - base
        if i < limit and buf[i] < 0x80:  # nearly every tag is one byte
            tag, i = buf[i], i + 1
        else:
            try:
                tag, i = read_varint(buf, i, limit)
            except WireError:
                raise WireError(
                    f"{what}: a field tag at offset {pos} is cut off by the end of the data"
                ) from None
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise WireError(f"{what}: invalid field number 0 at offset {pos}")
        if wire_type == VARINT:
            value_start = base + i
            try:
                value, i = read_varint(buf, i, limit)
            except WireError:
                raise WireError(f"{what}: field {number} at offset {pos} is cut off") from None
            yield Field(number, wire_type, pos, value_start, base + i, value)
            pos = base + i
        elif wire_type == LEN:
            try:
                length, i = read_varint(buf, i, limit)
            except WireError:
                raise WireError(f"{what}: the length of field {number} at offset {pos} is cut off") from None
            value_start = base + i
            value_end = value_start + length
            if value_end > end:
                raise WireError(
                    f"{what}: field {number} at offset {pos} declares {length} bytes but only "
                    f"{end - value_start} remain (truncated?)"
                )
            yield Field(number, wire_type, pos, value_start, value_end)
            pos = value_end
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if base + i + size > end:
                raise WireError(f"{what}: fixed-size field {number} at offset {pos} is cut off")
            yield Field(number, wire_type, pos, base + i, base + i + size)
            pos = base + i + size
        else:
            raise WireError(f"{what}: unsupported wire type {wire_type} (field {number}) at offset {pos}")


def _window(src: ByteSource, pos: int, length: int) -> tuple[bytes, int]:
    """(bytes, their offset in `src`) covering at least [pos, pos + length)."""
    window = getattr(src, "window", None)
    if window is not None:
        return window(pos, length)
    return src.read(pos, length), pos


def _read_small(src: ByteSource, f: Field, what: str) -> bytes:
    if f.wire_type != LEN:
        raise WireError(f"{what} has wire type {f.wire_type}, expected a length-delimited field")
    if f.end - f.start > MAX_SMALL_FIELD:
        raise WireError(
            f"{what} is {f.end - f.start} bytes, more than the {MAX_SMALL_FIELD} this check reads"
        )
    data = src.read(f.start, f.end - f.start)
    if len(data) != f.end - f.start:
        raise WireError(f"{what} is cut off by the end of the object")
    return data


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _fields(data: bytes, what: str) -> Iterator[tuple[Field, bytes]]:
    src = BytesSource(data)
    for f in iter_fields(src, what=what):
        yield f, (data[f.start : f.end] if f.wire_type == LEN else b"")


# -- the messages we decode -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int, ...] | None  # None: unknown rank; -1: unknown dimension
    encoding: str = "name"  # name | coo_sparse | composite_tensor

    def shape_text(self) -> str:
        if self.shape is None:
            return "unknown rank"
        return "(" + ", ".join(str(d) for d in self.shape) + ("," if len(self.shape) == 1 else "") + ")"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": None if self.shape is None else list(self.shape),
            "encoding": self.encoding,
        }


@dataclass(frozen=True)
class SignatureInfo:
    key: str
    method_name: str
    inputs: tuple[tuple[str, TensorSpec], ...]
    outputs: tuple[tuple[str, TensorSpec], ...]

    def to_json(self) -> dict:
        return {
            "method_name": self.method_name,
            "inputs": {k: v.to_json() for k, v in self.inputs},
            "outputs": {k: v.to_json() for k, v in self.outputs},
        }


@dataclass(frozen=True)
class MetaGraphInfo:
    tags: tuple[str, ...]
    tensorflow_version: str = ""
    has_saver: bool = False
    signatures: tuple[SignatureInfo, ...] = ()
    graph_def_bytes: int = 0
    has_object_graph: bool = False

    @property
    def tag_set(self) -> frozenset[str]:
        return frozenset(self.tags)

    def signature(self, key: str) -> SignatureInfo | None:
        return next((s for s in self.signatures if s.key == key), None)

    def to_json(self) -> dict:
        return {
            "tags": list(self.tags),
            "tensorflow_version": self.tensorflow_version,
            "has_saver": self.has_saver,
            "graph_def_bytes": self.graph_def_bytes,
            "signatures": {s.key: s.to_json() for s in self.signatures},
        }


@dataclass(frozen=True)
class SavedModelInfo:
    schema_version: int
    meta_graphs: tuple[MetaGraphInfo, ...] = field(default_factory=tuple)


def read_saved_model(src: ByteSource) -> SavedModelInfo:
    """Decode tags, saver and signatures of every MetaGraph; WireError when the framing does not hold."""
    if src.size == 0:
        raise WireError("the file is empty")
    schema_version = 0
    meta_fields: list[Field] = []
    for f in iter_fields(src, what="SavedModel"):  # checks every outer length against the object size
        if f.number == 1 and f.wire_type == VARINT:
            schema_version = f.value
        elif f.number == 2:
            if f.wire_type != LEN:
                raise WireError("SavedModel.meta_graphs is not a length-delimited field")
            meta_fields.append(f)
    if not meta_fields:
        raise WireError("it holds no MetaGraph (not a SavedModel)")
    return SavedModelInfo(
        schema_version, tuple(_read_meta_graph(src, f, i) for i, f in enumerate(meta_fields))
    )


def _read_meta_graph(src: ByteSource, outer: Field, index: int) -> MetaGraphInfo:
    what = f"MetaGraph #{index}"
    tags: list[str] = []
    tf_version = ""
    has_saver = False
    signatures: list[SignatureInfo] = []
    graph_def_bytes = 0
    has_object_graph = False
    for f in iter_fields(src, outer.start, outer.end, what=what):
        if f.number == 1 and f.wire_type == LEN:
            for g in iter_fields(src, f.start, f.end, what=f"{what} meta_info_def"):
                if g.number == 4:
                    tags.append(_text(_read_small(src, g, f"{what} tag")))
                elif g.number == 5:
                    tf_version = _text(_read_small(src, g, f"{what} tensorflow_version"))
        elif f.number == 2:
            graph_def_bytes = f.end - f.start  # skipped: never read
        elif f.number == 3 and f.wire_type == LEN:
            _read_small(src, f, f"{what} saver_def")
            has_saver = True
        elif f.number == 5:
            signatures.append(_signature_entry(_read_small(src, f, f"{what} signature_def"), what))
        elif f.number == 7:
            has_object_graph = True
    return MetaGraphInfo(
        tuple(tags), tf_version, has_saver, tuple(signatures), graph_def_bytes, has_object_graph
    )


def _map_entry(data: bytes, what: str) -> tuple[str, bytes]:
    key, value = "", b""
    for f, payload in _fields(data, what):
        if f.number == 1 and f.wire_type == LEN:
            key = _text(payload)
        elif f.number == 2 and f.wire_type == LEN:
            value = payload
    return key, value


def _signature_entry(data: bytes, what: str) -> SignatureInfo:
    key, value = _map_entry(data, f"{what} signature_def entry")
    inputs: list[tuple[str, TensorSpec]] = []
    outputs: list[tuple[str, TensorSpec]] = []
    method = ""
    for f, payload in _fields(value, f"{what} signature {key!r}"):
        if f.number in (1, 2) and f.wire_type == LEN:
            name, info = _map_entry(payload, f"{what} signature {key!r} tensor")
            (inputs if f.number == 1 else outputs).append((name, _tensor_info(info, what)))
        elif f.number == 3 and f.wire_type == LEN:
            method = _text(payload)
    return SignatureInfo(key, method, tuple(sorted(inputs)), tuple(sorted(outputs)))


def _tensor_info(data: bytes, what: str) -> TensorSpec:
    name, dtype, shape, encoding = "", 0, None, "name"
    for f, payload in _fields(data, f"{what} TensorInfo"):
        if f.number == 1 and f.wire_type == LEN:
            name = _text(payload)
        elif f.number == 2 and f.wire_type == VARINT:
            dtype = f.value
        elif f.number == 3 and f.wire_type == LEN:
            shape = _shape(payload, what)
        elif f.number == 4:
            encoding = "coo_sparse"
        elif f.number == 5:
            encoding = "composite_tensor"
    return TensorSpec(name, DTYPES.get(dtype, f"DT_{dtype}"), shape, encoding)


def _shape(data: bytes, what: str) -> tuple[int, ...] | None:
    dims: list[int] = []
    unknown_rank = False
    for f, payload in _fields(data, f"{what} TensorShape"):
        if f.number == 2 and f.wire_type == LEN:
            size = 0
            for g, _ in _fields(payload, f"{what} TensorShape.Dim"):
                if g.number == 1 and g.wire_type == VARINT:
                    size = signed64(g.value)
            dims.append(size)
        elif f.number == 3 and f.wire_type == VARINT:
            unknown_rank = bool(f.value)
    return None if unknown_rank else tuple(dims)


# -- text format (saved_model.pbtxt) ----------------------------------------------------------------------


def read_saved_model_text(text: str) -> SavedModelInfo:
    """A light reading of saved_model.pbtxt: tags, saver presence and signature keys per MetaGraph."""
    import re

    chunks = re.split(r"(?m)^\s*meta_graphs\s*\{", text)[1:]
    if not chunks:
        raise WireError("saved_model.pbtxt holds no meta_graphs block (not a SavedModel)")
    graphs = []
    for chunk in chunks:
        info = chunk.split("graph_def {", 1)[0]
        tags = tuple(re.findall(r'\btags\s*:\s*"([^"]*)"', info))
        keys = re.findall(r'signature_def\s*\{\s*key\s*:\s*"([^"]*)"', chunk)
        has_saver = re.search(r"\bsaver_def\s*\{", chunk) is not None
        graphs.append(MetaGraphInfo(tags, "", has_saver, tuple(SignatureInfo(k, "", (), ()) for k in keys)))
    return SavedModelInfo(1, tuple(graphs))


