"""Reads a .safetensors file the way the reference reader does (spec: u64 LE header size, JSON header,
little-endian data at data_offsets relative to the end of the header), validating what it validates:
8-byte alignment of the header, contiguous offsets covering the whole data section. Prints JSON:
{name: {dtype, shape, sum, first}} plus __metadata__."""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "F16": "<f2"}

with open(sys.argv[1], "rb") as f:
    buf = f.read()
(n,) = struct.unpack("<Q", buf[:8])
assert (8 + n) % 8 == 0, "header not padded to 8 bytes"
header = json.loads(buf[8 : 8 + n].decode("utf-8"))
meta = header.pop("__metadata__", {})
assert all(isinstance(v, str) for v in meta.values()), "metadata values must be strings"
data = buf[8 + n :]
spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
pos = 0
for b, e, k in spans:
    assert b == pos, f"{k}: offsets not contiguous"
    pos = e
assert pos == len(data), "data section not fully covered"
out = {"__metadata__": meta}
for k, v in header.items():
    b, e = v["data_offsets"]
    arr = np.frombuffer(data[b:e], dtype=DTYPES[v["dtype"]]).reshape(v["shape"])
    out[k] = {"dtype": v["dtype"], "shape": list(arr.shape), "sum": float(arr.astype(np.float64).sum()),
              "first": float(arr.reshape(-1)[0]) if arr.size else None}
print(json.dumps(out))
