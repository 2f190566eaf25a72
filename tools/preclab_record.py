"""Record optimizer updates as a preclab update stream (format v1).

One file, numpy only at import. It holds:

* ``UpdateStreamWriter``: appends one record per optimizer step and flushes it, so a
  killed run loses at most the record in flight;
* ``UpdateStreamReader``: validates a stream exactly as ``preclab`` does (magic,
  version, header rules, tags, flags, padding, payload length, CRC-32, record order)
  and yields records as float32 numpy views;
* ``TorchUpdateRecorder``: wraps a PyTorch optimizer (torch is imported lazily) and
  records ``master_after - master_before`` in fp32 for chosen parameters.

The byte layout is specified in docs/update-stream.md (update-stream-v1.md). All
integers are little-endian; each record is tag, flags, step, learning rate, payload
length, payload, CRC-32 of everything before it, zero padding.
"""

import json
import math
import mmap
import os
import struct
import tempfile
import zlib

import numpy as np

__all__ = [
    "MAGIC", "VERSION", "StreamFormatError", "UpdateStreamWriter", "UpdateStreamReader",
    "Record", "TorchUpdateRecorder", "shard_assignment", "shard_path",
]

MAGIC = b"\x89PCLB\r\n\x1a"
VERSION = 1
FORMAT_NAME = "preclab-updates"
MAX_HEADER_LENGTH = 16_777_216
TAGS = (b"BASE", b"STEP", b"FINL")
_RECORD_HEAD = struct.Struct("<4sIQdQ")   # tag, flags, step, lr, payload_length
_RECORD_TAIL = struct.Struct("<II")       # crc, padding
_MAX_JSON_DEPTH = 128
_INT63 = (1 << 63) - 1


class StreamFormatError(ValueError):
    """A stream that breaks the format. The message names the file, the byte offset
    and what was expected."""


def _fail(path, offset, what):
    if offset is None:
        return StreamFormatError("%s: %s" % (path, what))
    return StreamFormatError("%s: at byte offset %d: %s" % (path, offset, what))


# --------------------------------------------------------------------------- header

def _strict_json(data):
    """Parses JSON as strictly as preclab: UTF-8 only, no duplicate keys, no NaN or
    Infinity, no lone surrogates, nesting at most 128 levels."""
    text = data.decode("utf-8")  # raises UnicodeDecodeError on invalid UTF-8

    def pairs(items):
        seen = {}
        for key, value in items:
            if key in seen:
                raise ValueError("duplicate key %r" % key)
            seen[key] = value
        return seen

    def constant(name):
        raise ValueError("%s is not JSON" % name)

    value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)

    def walk(item, depth):
        if depth > _MAX_JSON_DEPTH:
            raise ValueError("nesting deeper than %d levels" % _MAX_JSON_DEPTH)
        if isinstance(item, str):
            item.encode("utf-8")  # rejects lone surrogates from \\ud800 escapes
        elif isinstance(item, dict):
            for key, child in item.items():
                key.encode("utf-8")
                walk(child, depth + 1)
        elif isinstance(item, list):
            for child in item:
                walk(child, depth + 1)
    walk(value, 0 if not isinstance(value, (dict, list)) else 1)
    return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def validate_header(header):
    """Checks a parsed header against the spec; returns [(name, shape, dtype)].
    Raises ValueError naming the rule broken."""
    if not isinstance(header, dict):
        raise ValueError("header must be a JSON object")
    if "format" not in header:
        raise ValueError('header has no "format" key, expected "format": "preclab-updates"')
    if header["format"] != FORMAT_NAME:
        raise ValueError('"format" is %r, expected "preclab-updates"' % (header["format"],))
    if "delta_dtype" not in header:
        raise ValueError('header has no "delta_dtype" key, expected "delta_dtype": "F32"')
    if header["delta_dtype"] != "F32":
        raise ValueError('delta_dtype is %r, expected "F32"' % (header["delta_dtype"],))
    tensors = header.get("tensors")
    if not isinstance(tensors, list):
        raise ValueError('header has no "tensors" array')
    if not tensors:
        raise ValueError("'tensors' is empty, expected at least one tensor")
    result, seen, total = [], set(), 0
    for index, entry in enumerate(tensors):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ValueError('tensors[%d] has no string "name"' % index)
        name = entry["name"]
        if not name:
            raise ValueError("tensor #%d has an empty name" % index)
        if name in seen:
            raise ValueError("tensor name %r appears twice (names must be unique)" % name)
        seen.add(name)
        shape = entry.get("shape")
        if not isinstance(shape, list):
            raise ValueError("tensor %r: no \"shape\" array" % name)
        if not all(_is_int(d) for d in shape):
            raise ValueError("tensor %r: shape %r must hold positive integers" % (name, shape))
        if not 1 <= len(shape) <= 8:
            raise ValueError("tensor %r: shape has %d dimensions, expected 1 to 8" % (name, len(shape)))
        if not all(d > 0 for d in shape):
            raise ValueError("tensor %r: shape %r must hold positive integers" % (name, shape))
        count = 1
        for d in shape:
            count *= d
        total += count
        if total * 4 > _INT63:
            raise ValueError("tensor %r: shape %r makes the payload larger than 2^63 bytes" % (name, shape))
        dtype = entry.get("dtype")
        if "dtype" in entry and not isinstance(dtype, str):
            raise ValueError('tensor %r: "dtype" must be a string' % name)
        if dtype is not None and dtype not in SAFETENSORS_DTYPES:
            raise ValueError('tensor %r: dtype "%s" is not a safetensors dtype name' % (name, dtype))
        result.append((name, tuple(shape), dtype))
    if "metadata" in header:
        meta = header["metadata"]
        if not isinstance(meta, dict):
            raise ValueError('"metadata" must be an object of strings')
        for key, value in meta.items():
            if not isinstance(value, str):
                raise ValueError("metadata %r is not a string" % key)
    return result


# The dtype names of safetensors (case-sensitive), the only values a tensor's "dtype" may take.
SAFETENSORS_DTYPES = frozenset([
    "BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "BF16", "F32", "F64", "C64",
    "F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F6_E2M3", "F6_E3M2", "F4",
])


def encode_header(tensors, metadata=None):
    """The preamble and space-padded header for [(name, shape[, dtype])]."""
    entries = []
    for tensor in tensors:
        name, shape = tensor[0], [int(d) for d in tensor[1]]
        entry = {"name": name, "shape": shape}
        if len(tensor) > 2 and tensor[2] is not None:
            entry["dtype"] = tensor[2]
        entries.append(entry)
    header = {"format": FORMAT_NAME, "delta_dtype": "F32", "tensors": entries}
    if metadata:
        header["metadata"] = {str(k): str(v) for k, v in metadata.items()}
    validate_header(header)
    body = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    body += b" " * ((-(16 + len(body))) % 8)
    if len(body) > MAX_HEADER_LENGTH:
        raise ValueError("header is %d bytes, above the 16777216-byte limit" % len(body))
    return MAGIC + struct.pack("<II", VERSION, len(body)) + body


# --------------------------------------------------------------------------- writer

class UpdateStreamWriter:
    """Writes a stream record by record.

    ``tensors``: [(name, shape)] or [(name, shape, model_dtype)] in payload order.
    Values are given as a list of arrays in that order or a dict name -> array; they
    are converted to little-endian float32. With ``atomic=True`` the file is written to
    a temporary name and renamed on ``close()`` (for whole files); otherwise each record
    is written and flushed at once (for training runs).
    """

    def __init__(self, path, tensors, metadata=None, atomic=False, overwrite=False):
        self.path = os.fspath(path)
        self.tensors = [(t[0], tuple(int(d) for d in t[1]), t[2] if len(t) > 2 else None) for t in tensors]
        self.counts = [int(np.prod(shape)) for _, shape, _ in self.tensors]
        self.total = sum(self.counts)
        prefix = encode_header(self.tensors, metadata)
        if os.path.exists(self.path) and not overwrite:
            raise FileExistsError("%s: already exists (pass overwrite=True to replace it)" % self.path)
        self._atomic = atomic
        if atomic:
            directory = os.path.dirname(os.path.abspath(self.path))
            fd, self._temporary = tempfile.mkstemp(prefix=os.path.basename(self.path) + ".tmp-", dir=directory)
            self._file = os.fdopen(fd, "wb")
        else:
            self._temporary = None
            self._file = open(self.path, "wb")
        self._file.write(prefix)
        self._file.flush()
        self._records = 0
        self._previous_step = None
        self._last_step = None
        self._base_step = None
        self._finished = False
        self._closed = False

    def _payload(self, values):
        if isinstance(values, dict):
            values = [values[name] for name, _, _ in self.tensors]
        if len(values) != len(self.tensors):
            raise ValueError("expected %d tensors, got %d" % (len(self.tensors), len(values)))
        parts = []
        for (name, shape, _), count, value in zip(self.tensors, self.counts, values):
            array = np.ascontiguousarray(np.asarray(value), dtype="<f4").reshape(-1)
            if array.size != count:
                raise ValueError("tensor %r needs %d values (shape %s), got %d" % (name, count, shape, array.size))
            parts.append(array.tobytes())
        return b"".join(parts)

    def _record(self, tag, step, lr, values):
        if self._closed:
            raise ValueError("%s: the stream is closed" % self.path)
        if self._finished:
            raise ValueError("%s: FINL was written; it must be the last record" % self.path)
        payload = self._payload(values)
        head = _RECORD_HEAD.pack(tag, 0, int(step), float(lr), len(payload))
        crc = zlib.crc32(payload, zlib.crc32(head))
        self._file.write(head)
        self._file.write(payload)
        self._file.write(_RECORD_TAIL.pack(crc, 0))
        self._file.flush()
        self._records += 1

    def write_base(self, values, step=0):
        """The fp32 weights before the first step (learning rate NaN)."""
        if self._records:
            raise ValueError("%s: BASE must be the first record" % self.path)
        self._record(b"BASE", step, math.nan, values)
        self._base_step = self._previous_step = int(step)

    def write_step(self, step, learning_rate, deltas):
        """One step's update, master_after - master_before in fp32. Steps must increase."""
        step = int(step)
        if self._previous_step is not None and step <= self._previous_step:
            raise ValueError("%s: step %d does not increase (previous %d)" % (self.path, step, self._previous_step))
        lr = math.nan if learning_rate is None else float(learning_rate)
        self._record(b"STEP", step, lr, deltas)
        self._previous_step = self._last_step = step

    def write_final(self, values):
        """The fp32 master weights after the last step; the stream's last record."""
        step = self._last_step if self._last_step is not None else self._base_step
        if step is None:
            raise ValueError("%s: FINL needs a STEP or BASE record before it" % self.path)
        self._record(b"FINL", step, math.nan, values)
        self._finished = True

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if self._atomic:
            os.replace(self._temporary, self.path)

    def abort(self):
        """Drops an atomic stream (nothing appears); closes a streaming one as is."""
        if self._closed:
            return
        self._closed = True
        self._file.close()
        if self._atomic:
            os.unlink(self._temporary)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is not None and self._atomic:
            self.abort()
        else:
            self.close()


# --------------------------------------------------------------------------- reader

class Record:
    """One record: ``kind`` ('BASE', 'STEP', 'FINL'), ``step``, ``learning_rate``,
    ``offset`` and ``values`` (all tensors, float32, a view into the file) with
    ``tensor(name)`` for one reshaped tensor."""

    __slots__ = ("kind", "step", "learning_rate", "offset", "values", "_layout")

    def __init__(self, kind, step, learning_rate, offset, values, layout):
        self.kind, self.step, self.learning_rate = kind, step, learning_rate
        self.offset, self.values, self._layout = offset, values, layout

    def tensor(self, name):
        start, count, shape = self._layout[name]
        return self.values[start:start + count].reshape(shape)

    def tensors(self):
        return {name: self.tensor(name) for name in self._layout}


class UpdateStreamReader:
    """Reads and validates a stream. ``records()`` walks it once; ``summary()`` too."""

    def __init__(self, path, verify_crc=True, allow_truncated=False):
        self.path = os.fspath(path)
        self.verify_crc = verify_crc
        self.allow_truncated = allow_truncated
        with open(self.path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            self._data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        data, path = self._data, self.path
        for index in range(min(8, size)):
            if data[index] != MAGIC[index]:
                raise _fail(path, index, "wrong magic: expected the update-stream magic 89 50 43 4C 42 0D 0A 1A")
        if size < 16:
            raise _fail(path, size, "file ends inside the 16-byte preamble (%d bytes)" % size)
        version, length = struct.unpack_from("<II", data, 8)
        if version != VERSION:
            raise _fail(path, 8, "unsupported version %d, expected 1" % version)
        if not 2 <= length <= MAX_HEADER_LENGTH:
            raise _fail(path, 12, "header length %d out of range, expected 2 to 16777216" % length)
        if (16 + length) % 8:
            raise _fail(path, 12, "header length %d leaves the records unaligned: 16 + header length must be a multiple of 8" % length)
        if 16 + length > size:
            raise _fail(path, size, "file ends inside the header (header length %d needs %d bytes, file has %d)" % (length, 16 + length, size))
        raw = bytes(data[16:16 + length])
        try:
            header = _strict_json(raw)
        except json.JSONDecodeError as error:
            where = 16 + len(error.doc[:error.pos].encode("utf-8"))
            raise _fail(path, where, "header is not valid UTF-8 JSON: %s" % error.msg)
        except UnicodeDecodeError as error:
            raise _fail(path, 16 + error.start, "header is not valid UTF-8 JSON: invalid UTF-8")
        except (UnicodeError, ValueError, RecursionError) as error:
            raise _fail(path, 16, "header is not valid UTF-8 JSON: %s" % error)
        try:
            self.tensors = validate_header(header)
        except ValueError as error:
            raise _fail(path, 16, "header: %s" % error)
        self.header = header
        self.metadata = dict(header.get("metadata", {}))
        self.records_start = 16 + length
        self.size = size
        self._layout, start = {}, 0
        for name, shape, _ in self.tensors:
            count = int(np.prod(shape))
            self._layout[name] = (start, count, shape)
            start += count
        self.total = start
        self.payload_length = 4 * start
        self.truncated_at = None

    def close(self):
        if isinstance(self._data, mmap.mmap):
            try:
                self._data.close()
            except BufferError:
                # Record views are still alive; the mapping goes away with them.
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def records(self):
        """Yields every record after checking it; raises StreamFormatError at the
        first rule broken (after yielding the good records before it)."""
        data, path, size = self._data, self.path, self.size
        record_length = 32 + self.payload_length + 8
        position, index = self.records_start, 0
        previous = last_step = base_step = None
        saw_final = False
        self.truncated_at = None
        while position < size:
            remaining = size - position

            def fail(at, what):
                return _fail(path, at, "record #%d (starting at byte %d): %s" % (index, position, what))
            if remaining >= 4 and bytes(data[position:position + 4]) not in TAGS:
                raise fail(position, "unknown tag %r, expected BASE, STEP or FINL" % bytes(data[position:position + 4]))
            if remaining >= 8:
                flags = struct.unpack_from("<I", data, position + 4)[0]
                if flags:
                    raise fail(position + 4, "flags are %d, expected 0" % flags)
            if remaining >= 32:
                length = struct.unpack_from("<Q", data, position + 24)[0]
                if length != self.payload_length:
                    raise fail(position + 24, "payload_length is %d, expected %d" % (length, self.payload_length))
            if remaining < record_length:
                if self.allow_truncated:
                    self.truncated_at = position
                    return
                raise _fail(path, position, "file ends inside record #%d: %d of its %d bytes are present (a truncated stream)" % (index, remaining, record_length))
            tag, _, step, lr, _ = _RECORD_HEAD.unpack_from(data, position)
            trailer = position + 32 + self.payload_length
            crc, padding = _RECORD_TAIL.unpack_from(data, trailer)
            if padding:
                raise fail(trailer + 4, "padding is %d, expected 0" % padding)
            if self.verify_crc:
                computed = zlib.crc32(memoryview(data)[position:trailer])
                if computed != crc:
                    raise fail(trailer, "CRC-32 mismatch: stored 0x%08x, computed 0x%08x" % (crc, computed))
            kind = tag.decode("ascii")
            if saw_final:
                raise fail(position, "%s record after FINL: FINL must be the last record" % kind)
            if kind == "BASE":
                if index != 0:
                    raise fail(position, "second BASE record: at most one BASE is allowed" if base_step is not None
                               else "BASE record is not the first record: BASE must come first")
                base_step = previous = step
            elif kind == "STEP":
                if previous is not None and step <= previous:
                    raise fail(position + 8, "step %d does not increase: expected a step greater than %d" % (step, previous))
                previous = last_step = step
            else:
                expected = last_step if last_step is not None else base_step
                if expected is not None and step != expected:
                    raise fail(position + 8, "FINL step is %d, expected %d" % (step, expected))
                saw_final = True
            values = np.frombuffer(data, dtype="<f4", count=self.total, offset=position + 32)
            yield Record(kind, step, lr, position, values, self._layout)
            position += record_length
            index += 1

    def summary(self):
        """Walks the stream and returns a dict like ``preclab inspect --json``."""
        steps, lrs, unknown = [], [], 0
        base = final = None
        records = 0
        for record in self.records():
            records += 1
            if record.kind == "BASE":
                base = record.step
            elif record.kind == "FINL":
                final = record.step
            else:
                steps.append(record.step)
                if math.isnan(record.learning_rate):
                    unknown += 1
                else:
                    lrs.append(record.learning_rate)
        # The first update follows the base's step, so base -> first STEP can be a gap too.
        previous = ([base] if base is not None else []) + steps
        strides = [b - a for a, b in zip(previous, previous[1:])]
        return {
            "records": records, "steps": len(steps),
            "first_step": steps[0] if steps else None, "last_step": steps[-1] if steps else None,
            "gaps": sum(1 for s in strides if s > 1), "missing_steps": sum(s - 1 for s in strides if s > 1),
            "learning_rate_min": min(lrs) if lrs else None, "learning_rate_max": max(lrs) if lrs else None,
            "unknown_learning_rates": unknown, "has_base": base is not None, "has_final": final is not None,
            "truncated": self.truncated_at is not None,
        }


# --------------------------------------------------------------------------- shards

def shard_assignment(names, element_counts, shards):
    """The shard (0-based) of each tensor: the partition ``preclab --shard I/N`` uses.

    Tensors are taken largest first (equal element counts by name, compared by Unicode
    code points, i.e. the bytes of UTF-8), and each goes to the shard with the fewest
    elements so far (equal loads: the lowest shard index). Sources/PrecLabAnalysis/
    TensorSharding.swift implements the same rule; both are tested on the same cases.
    """
    shards = int(shards)
    if shards < 1:
        raise ValueError("shards must be at least 1")
    if len(names) != len(element_counts):
        raise ValueError("one element count per name")
    order = sorted(range(len(names)),
                   key=lambda i: (-int(element_counts[i]), names[i].encode("utf-8"), i))
    loads = [0] * shards
    assignment = [0] * len(names)
    for tensor in order:
        lightest = min(range(shards), key=lambda k: (loads[k], k))
        assignment[tensor] = lightest
        loads[lightest] += int(element_counts[tensor])
    return assignment


def shard_path(path, index, count):
    """The file of shard ``index`` (1-based) of ``count``: "updates.bin" becomes
    "updates.shard2of4.bin"."""
    root, extension = os.path.splitext(path)
    return "%s.shard%dof%d%s" % (root, index, count, extension)


class _ShardedWriter:
    """N stream files, one per shard, behind the single-writer interface the recorder
    uses. Every file is a complete v1 stream of its tensors (BASE, STEPs, FINL); its
    metadata names the shard ("preclab_shard": "I/N"), the recording as one stream
    would be named ("preclab_source") and every recorded tensor with its element count
    ("preclab_model_tensors", JSON), which ``preclab replay --shard I/N`` reads."""

    def __init__(self, path, tensors, metadata, shards, overwrite):
        names = [t[0] for t in tensors]
        counts = [int(np.prod(t[1])) for t in tensors]
        if shards > len(tensors):
            raise ValueError("shards=%d but only %d tensors are recorded" % (shards, len(tensors)))
        assignment = shard_assignment(names, counts, shards)
        self.groups = [[i for i in range(len(tensors)) if assignment[i] == k] for k in range(shards)]
        model = json.dumps([[n, c] for n, c in zip(names, counts)], separators=(",", ":"))
        self.writers = []
        try:
            for k, group in enumerate(self.groups):
                meta = dict(metadata)
                meta.update({"preclab_shard": "%d/%d" % (k + 1, shards), "preclab_source": path,
                             "preclab_model_tensors": model})
                self.writers.append(UpdateStreamWriter(shard_path(path, k + 1, shards),
                                                       [tensors[i] for i in group], meta, overwrite=overwrite))
        except BaseException:
            self.abort()
            raise
        self.paths = [w.path for w in self.writers]

    def _split(self, values):
        return [[values[i] for i in group] for group in self.groups]

    def write_base(self, values, step=0):
        for writer, part in zip(self.writers, self._split(values)):
            writer.write_base(part, step=step)

    def write_step(self, step, learning_rate, deltas):
        for writer, part in zip(self.writers, self._split(deltas)):
            writer.write_step(step, learning_rate, part)

    def write_final(self, values):
        for writer, part in zip(self.writers, self._split(values)):
            writer.write_final(part)

    def close(self):
        for writer in self.writers:
            writer.close()

    def abort(self):
        for writer in self.writers:
            writer.abort()

    @property
    def _previous_step(self):
        return self.writers[0]._previous_step

    @property
    def _last_step(self):
        return self.writers[0]._last_step

    @property
    def _base_step(self):
        return self.writers[0]._base_step


# --------------------------------------------------------------------------- torch

class TorchUpdateRecorder:
    """Wraps a PyTorch optimizer so that every ``step()`` is recorded.

    "Master" weights are the fp32 values the optimizer updates. By default they are
    read as ``p.detach().float()`` for each recorded parameter: exact for fp32
    parameters; for bf16/fp16 parameters it is the widened stored value. When the
    optimizer keeps separate fp32 master copies (mixed-precision wrappers), pass them
    as ``masters={name: fp32_tensor}`` and those are recorded instead.

    The BASE record holds the masters before the first step, each STEP the difference
    ``master_after - master_before`` computed in fp32, where ``master_before`` is the
    weights the stream has reached (BASE plus the recorded deltas, added in fp32), and
    ``close()`` writes FINL with the weights the stream reaches, which an fp32 replay
    reproduces bit for bit. They equal the true masters except where fp32 subtraction
    was inexact (a weight crossing zero or changing scale); ``inexact_values`` and
    ``largest_inexact_gap`` report how often and by how much, and such misses never
    accumulate. With ``every=k`` only every k-th step is written, and its delta covers
    all steps since the previous record.

    ``tensors=REGEX`` records only the parameters whose names contain a match
    (``re.search``). ``shards=N`` writes N files instead of one ("updates.bin" becomes
    "updates.shard1ofN.bin" ... "updates.shardNofN.bin", see ``shard_path``), the
    tensors split by ``shard_assignment`` exactly as ``preclab --shard I/N`` splits
    them; ``preclab replay updates.shardIofN.bin --shard I/N --json I.json`` replays
    each, and ``preclab merge`` joins them into the replay of the whole recording
    (docs/scale.md). ``self.paths`` lists the files written.

    Usage::

        recorder = TorchUpdateRecorder(optimizer, "updates.bin",
                                       dict(model.named_parameters()))
        for batch in data:
            loss = model(batch).loss
            loss.backward()
            recorder.step()          # calls optimizer.step() and records it
            optimizer.zero_grad()
        recorder.close()
    """

    def __init__(self, optimizer, path, parameters, masters=None, every=1, metadata=None,
                 record_base=True, first_step=1, overwrite=False, shards=1, tensors=None):
        import torch  # noqa: F401  (lazy: the stream code above works without torch)
        self.optimizer = optimizer
        self.parameters = dict(parameters)
        if tensors is not None:
            import re
            pattern = re.compile(tensors)
            self.parameters = {n: p for n, p in self.parameters.items() if pattern.search(n)}
        if not self.parameters:
            raise ValueError("no parameters to record" + (" match %r" % tensors if tensors is not None else ""))
        self.masters = dict(masters) if masters is not None else {}
        self.every = int(every)
        if self.every < 1:
            raise ValueError("every must be at least 1")
        self.step_number = int(first_step) - 1
        dtype_names = {"torch.float32": "F32", "torch.bfloat16": "BF16", "torch.float16": "F16",
                       "torch.float64": "F64", "torch.float8_e4m3fn": "F8_E4M3", "torch.float8_e5m2": "F8_E5M2"}
        tensors = [(name, tuple(p.shape) or (1,), dtype_names.get(str(p.dtype)))
                   for name, p in self.parameters.items()]
        meta = {"optimizer": type(optimizer).__name__, "recorder": "preclab_record.py"}
        meta.update(metadata or {})
        if int(shards) > 1:
            self.writer = _ShardedWriter(path, tensors, meta, int(shards), overwrite)
            self.paths = self.writer.paths
        else:
            self.writer = UpdateStreamWriter(path, tensors, meta, overwrite=overwrite)
            self.paths = [self.writer.path]
        self._snapshot = self._read_masters()
        # fp32 subtraction is exact only when the two values are within a factor of two
        # (Sterbenz); where a weight crosses zero or changes scale, ``after - before``
        # rounds and ``before + delta`` misses ``after`` by a fraction of an ULP. Deltas
        # are therefore taken from the weights the stream has reached, which keeps the
        # recorded trajectory within one such rounding of the true masters (errors do not
        # accumulate) and makes FINL exactly reproducible. These count the misses.
        self.inexact_values = 0
        self.largest_inexact_gap = 0.0
        if record_base:
            self.writer.write_base(self._snapshot, step=self.step_number)

    def _read_masters(self):
        result = []
        for name, p in self.parameters.items():
            source = self.masters.get(name, p)
            result.append(source.detach().float().cpu().reshape(-1).clone().numpy())
        return result

    def _learning_rate(self):
        groups = getattr(self.optimizer, "param_groups", None)
        if groups and "lr" in groups[0]:
            return float(groups[0]["lr"])
        return math.nan

    def step(self, closure=None):
        """Runs ``optimizer.step(closure)`` and records its update."""
        lr = self._learning_rate()
        result = self.optimizer.step(closure) if closure is not None else self.optimizer.step()
        self.step_number += 1
        if self.step_number % self.every == 0:
            self._record(self.step_number, lr, self._read_masters())
        return result

    def _record(self, step, lr, after):
        """Writes one STEP: the fp32 difference between the new masters and the weights
        the stream has reached so far (BASE plus every delta, added in fp32), so that an
        fp32 replay lands exactly on what is recorded."""
        deltas = [a - r for a, r in zip(after, self._snapshot)]  # float32 - float32 in fp32
        self.writer.write_step(step, lr, deltas)
        reached = [r + d for r, d in zip(self._snapshot, deltas)]  # the replay's fp32 add
        for now, true in zip(reached, after):
            differing = now.view(np.uint32) != true.view(np.uint32)
            count = int(np.count_nonzero(differing))
            if count:
                self.inexact_values += count
                gap = np.abs(now[differing].astype(np.float64) - true[differing].astype(np.float64))
                self.largest_inexact_gap = max(self.largest_inexact_gap, float(gap.max()))
        self._snapshot = reached

    def close(self, write_final=True):
        """Writes FINL (the weights the stream reaches) and closes the file."""
        if write_final:
            current = self._read_masters()
            previous = self.writer._previous_step
            if previous is None or self.step_number > previous:
                changed = any(not np.array_equal(c.view(np.uint32), s.view(np.uint32))
                              for c, s in zip(current, self._snapshot))
                if changed:
                    # Steps after the last recorded one: record them so FINL matches.
                    self._record(self.step_number, self._learning_rate(), current)
            if self.writer._last_step is not None or self.writer._base_step is not None:
                self.writer.write_final(self._snapshot)
        self.writer.close()
