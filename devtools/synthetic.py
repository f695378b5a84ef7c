"""Synthetic SavedModels built from real ones, for tests, benchmarks and the demo (no TensorFlow needed).

`pad_graph_def` grows the GraphDef of every MetaGraph with one large Const node, the way a model with big
embedded constants looks: the signatures still come after the GraphDef, so a reader must skip it to
reach them.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from savedmodel.pbwire import LEN, VARINT, BytesSource, iter_fields

DT_UINT8 = 4


def const_node(name: str, size: int, seed: int = 0) -> bytes:
    """A NodeDef `name = Const(value=<size random bytes as a uint8 tensor>)`."""
    content = random.Random(seed).randbytes(size)
    shape = encode_len(2, encode_uint(1, size))  # TensorShapeProto.dim { size }
    tensor = encode_uint(1, DT_UINT8) + encode_len(2, shape) + encode_len(4, content)
    attr_value = encode_len(8, tensor)  # AttrValue.tensor
    attr_entry = encode_len(1, b"value") + encode_len(2, attr_value)
    return encode_len(1, name.encode()) + encode_len(2, b"Const") + encode_len(5, attr_entry)


def _rewrite(data: bytes, number: int, change) -> bytes:
    """Re-encode a message, passing the payload of every LEN field `number` through `change`."""
    out = bytearray()
    for f in iter_fields(BytesSource(data)):
        if f.number == number and f.wire_type == LEN:
            out += encode_len(number, change(data[f.start : f.end]))
        else:
            out += data[f.offset : f.end]
    return bytes(out)


def pad_graph_def(saved_model: bytes, extra_bytes: int, seed: int = 0) -> bytes:
    """`saved_model` with about `extra_bytes` more GraphDef in each MetaGraph."""
    node = encode_len(1, const_node("synthetic_padding", extra_bytes, seed))  # GraphDef.node

    def grow_meta_graph(meta_graph: bytes) -> bytes:
        return _rewrite(meta_graph, 2, lambda graph_def: graph_def + node)

    return _rewrite(saved_model, 2, grow_meta_graph)


def encode_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_len(number: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | LEN) + encode_varint(len(payload)) + payload


def encode_uint(number: int, value: int) -> bytes:
    return encode_varint(number << 3 | VARINT) + encode_varint(value)


def sharded_model(source: Path, dest: Path, shards: int, shard_bytes: int, seed: int = 0) -> Path:
    """A copy of the version directory `source` at `dest` whose variables are `shards` consistent
    `variables.data-NNNNN-of-MMMMM` files of `shard_bytes` bytes each, written in 1 MiB pieces (memory
    stays small for any size): one random MiB, each piece stamped with its own number, so no two pieces
    are alike and writing a gigabyte costs no more than the disk. The contract accepts it; TF could not
    restore it (the index still describes the original checkpoint), which no test here asks of it."""
    shutil.copytree(source, dest)
    variables = dest / "variables"
    for old in variables.glob("variables.data-*"):
        old.unlink()
    block = random.Random(seed).randbytes(1024 * 1024)
    stamp = 0
    for index in range(shards):
        with open(variables / f"variables.data-{index:05d}-of-{shards:05d}", "wb") as handle:
            remaining = shard_bytes
            while remaining > 0:
                piece = min(remaining, len(block))
                stamp += 1
                handle.write((stamp.to_bytes(8, "little") + block[8:])[:piece])
                remaining -= piece
    return dest
