"""Tests of tools/preclab_record.py against the update-stream spec.

Expected bytes are built here by hand from the spec text (struct + zlib), not by the
module under test."""

import math
import os
import struct
import tempfile
import unittest
import zlib

import numpy as np

import preclab_record as pr


def spec_stream(tensors_json, records):
    """A stream assembled directly from the spec: records = [(tag, step, lr, values)]."""
    header = tensors_json.encode()
    header += b" " * ((-(16 + len(header))) % 8)
    out = b"\x89PCLB\r\n\x1a" + struct.pack("<II", 1, len(header)) + header
    for tag, step, lr, values in records:
        body = tag + struct.pack("<IQdQ", 0, step, lr, 4 * len(values)) + struct.pack("<%df" % len(values), *values)
        out += body + struct.pack("<II", zlib.crc32(body), 0)
    return out


HEADER = '{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2]}]}'
VALID = spec_stream(HEADER, [(b"BASE", 0, math.nan, [1.0, -2.0]), (b"STEP", 1, 0.5, [0.25, -0.125]),
                             (b"FINL", 1, math.nan, [1.25, -2.125])])


class TemporaryFiles(unittest.TestCase):
    def setUp(self):
        self._directory = tempfile.TemporaryDirectory()
        self.directory = self._directory.name

    def tearDown(self):
        self._directory.cleanup()

    def write(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as handle:
            handle.write(data)
        return path


class WriterTests(TemporaryFiles):
    def test_writer_produces_spec_bytes(self):
        for atomic in (False, True):
            path = os.path.join(self.directory, "w%d.bin" % atomic)
            with pr.UpdateStreamWriter(path, [("w", (2,))], atomic=atomic) as writer:
                writer.write_base([np.array([1.0, -2.0])])
                writer.write_step(1, 0.5, {"w": [0.25, -0.125]})
                writer.write_final([[1.25, -2.125]])
            with open(path, "rb") as handle:
                self.assertEqual(handle.read(), VALID)
            self.assertEqual(os.listdir(self.directory).count("w%d.bin" % atomic), 1)

    def test_writer_refuses_bad_order(self):
        path = os.path.join(self.directory, "o.bin")
        writer = pr.UpdateStreamWriter(path, [("w", (1,))])
        writer.write_step(3, 0.1, [[1.0]])
        with self.assertRaises(ValueError):
            writer.write_step(3, 0.1, [[1.0]])
        with self.assertRaises(ValueError):
            writer.write_base([[1.0]])
        with self.assertRaises(ValueError):
            writer.write_step(4, 0.1, [[1.0, 2.0]])
        writer.close()
        with self.assertRaises(FileExistsError):
            pr.UpdateStreamWriter(path, [("w", (1,))])
        with self.assertRaises(ValueError):
            pr.UpdateStreamWriter(os.path.join(self.directory, "x.bin"), [("w", (0,))])

    def test_atomic_abort_leaves_nothing(self):
        path = os.path.join(self.directory, "a.bin")
        with self.assertRaises(RuntimeError):
            with pr.UpdateStreamWriter(path, [("w", (1,))], atomic=True) as writer:
                writer.write_step(1, 0.1, [[1.0]])
                raise RuntimeError("boom")
        self.assertEqual(os.listdir(self.directory), [])


class ReaderTests(TemporaryFiles):
    def test_reads_valid_stream(self):
        with pr.UpdateStreamReader(self.write("v.bin", VALID)) as reader:
            records = [(r.kind, r.step, r.tensor("w").tolist()) for r in reader.records()]
            self.assertEqual(records, [("BASE", 0, [1.0, -2.0]), ("STEP", 1, [0.25, -0.125]), ("FINL", 1, [1.25, -2.125])])
            summary = reader.summary()
        self.assertEqual(summary["steps"], 1)
        self.assertTrue(summary["has_base"] and summary["has_final"])
        self.assertEqual(summary["learning_rate_min"], 0.5)

    def test_truncated(self):
        path = self.write("t.bin", VALID[:-5])
        with self.assertRaisesRegex(pr.StreamFormatError, "offset 200: file ends inside record #2"):
            list(pr.UpdateStreamReader(path).records())
        reader = pr.UpdateStreamReader(path, allow_truncated=True)
        self.assertEqual([r.kind for r in reader.records()], ["BASE", "STEP"])
        self.assertEqual(reader.truncated_at, 200)

    def test_malformed(self):
        def patched(offset, data):
            return VALID[:offset] + data + VALID[offset + len(data):]

        def header(text):
            return spec_stream(text, [(b"STEP", 1, 0.1, [0.0, 0.0])])
        step1 = (b"STEP", 1, 0.1, [1.0, 2.0])
        step2 = (b"STEP", 2, 0.1, [1.0, 2.0])
        base = (b"BASE", 0, math.nan, [1.0, 2.0])
        final2 = (b"FINL", 2, math.nan, [1.0, 2.0])
        cases = [
            (b"", "offset 0: file ends inside the 16-byte preamble"),
            (patched(1, b"Q"), "offset 1: wrong magic"),
            (patched(8, b"\x02"), "offset 8: unsupported version 2"),
            (patched(12, struct.pack("<I", 16_777_224)), "offset 12: header length"),
            (patched(12, struct.pack("<I", 87)), "offset 12: .*multiple of 8"),
            (VALID[:60], "offset 60: file ends inside the header"),
            (header('{"format":"preclab-updates",}'), "offset 44: header is not valid"),
            (header('{"format":"preclab-updates","format":"x"}'), "duplicate key"),
            (header('{"format":"preclab-updates","delta_dtype":NaN}'), "not valid"),
            (header('{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"\\ud800","shape":[1]}]}'), "not valid"),
            (header('{"delta_dtype":"F32","tensors":[{"name":"w","shape":[2]}]}'), 'no "format"'),
            (header('{"format":"x","delta_dtype":"F32","tensors":[{"name":"w","shape":[2]}]}'), "expected \"preclab-updates\""),
            (header('{"format":"preclab-updates","delta_dtype":"BF16","tensors":[{"name":"w","shape":[2]}]}'), "delta_dtype"),
            (header('{"format":"preclab-updates","delta_dtype":"F32","tensors":[]}'), "is empty"),
            (header('{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"","shape":[2]}]}'), "empty name"),
            (header('{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[1]},{"name":"w","shape":[1]}]}'), "appears twice"),
            (header('{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2,0]}]}'), "positive integers"),
            (header('{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2.0]}]}'), "positive integers"),
            (header('{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[true]}]}'), "positive integers"),
            (header('{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[]}]}'), "expected 1 to 8"),
            (header('{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[4294967296,1073741824]}]}'), "2\\^63"),
            (header('{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2]}],"metadata":{"a":1}}'), "metadata"),
            (header('{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2],"dtype":"XYZ"}]}'), 'dtype "XYZ" is not a safetensors dtype name'),
            (patched(152, b"STOP"), "offset 152: .*unknown tag"),
            (patched(156, b"\x01"), "offset 156: .*flags are 1"),
            (patched(176, b"\x0c"), "offset 176: .*payload_length is 12, expected 8"),
            (patched(184, b"\x01"), "offset 192: .*CRC-32 mismatch"),
            (patched(196, b"\x07"), "offset 196: .*padding is 7"),
            (spec_stream(HEADER, [step1, base]), "offset 152: .*BASE must come first"),
            (spec_stream(HEADER, [base, base]), "offset 152: .*second BASE"),
            (spec_stream(HEADER, [step1, step2, final2, step2]), "offset 248: .*after FINL"),
            (spec_stream(HEADER, [step1, step2, (b"FINL", 3, math.nan, [1.0, 2.0])]), "offset 208: .*FINL step is 3, expected 2"),
            (spec_stream(HEADER, [step2, step1]), "offset 160: .*step 1 does not increase"),
            (VALID[:-1], "offset 200: file ends inside record #2"),
        ]
        for index, (data, pattern) in enumerate(cases):
            path = self.write("bad%d.bin" % index, data)
            with self.subTest(pattern=pattern):
                with self.assertRaisesRegex(pr.StreamFormatError, pattern):
                    with pr.UpdateStreamReader(path) as reader:
                        list(reader.records())


class TorchRecorderTests(TemporaryFiles):
    def setUp(self):
        super().setUp()
        try:
            import torch  # noqa: F401
        except ImportError:
            self.skipTest("torch is not installed: the PyTorch recorder is not tested here")

    def test_sgd_updates_are_recorded_and_sum_to_final(self):
        import torch
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        path = os.path.join(self.directory, "u.bin")
        recorder = pr.TorchUpdateRecorder(optimizer, path, dict(model.named_parameters()))
        for _ in range(3):
            loss = model(torch.ones(4, 3)).pow(2).sum()
            loss.backward()
            recorder.step()
            optimizer.zero_grad()
        recorder.close()
        with pr.UpdateStreamReader(path) as reader:
            records = list(reader.records())
            self.assertEqual([r.kind for r in records], ["BASE", "STEP", "STEP", "STEP", "FINL"])
            weights = records[0].tensors()
            for record in records[1:-1]:
                self.assertAlmostEqual(record.learning_rate, 0.1)
                for name, delta in record.tensors().items():
                    weights[name] = (weights[name] + delta).astype(np.float32)
            differing = 0
            for name, final in records[-1].tensors().items():
                # The contract: an fp32 replay reproduces FINL bit for bit.
                np.testing.assert_array_equal(weights[name].view(np.uint32), final.view(np.uint32))
                # FINL is the true final master, except where an fp32 delta could not be
                # exact; those are counted and stay within the largest gap the recorder saw.
                true = dict(model.named_parameters())[name].detach().numpy()
                mask = final.view(np.uint32) != true.view(np.uint32)
                differing += int(np.count_nonzero(mask))
                if mask.any():
                    gap = np.abs(final[mask].astype(np.float64) - true[mask].astype(np.float64)).max()
                    self.assertLessEqual(gap, recorder.largest_inexact_gap)
                    self.assertLess(gap, 1e-6)
            self.assertLessEqual(differing, recorder.inexact_values)


if __name__ == "__main__":
    unittest.main()


class _StubTensor:
    """Just enough of torch.Tensor for the recorder, backed by numpy (bf16 emulated by
    truncating float32 to its top 16 bits when stored)."""

    def __init__(self, array, dtype="torch.float32"):
        self.array, self.dtype = np.asarray(array, dtype=np.float32), dtype

    shape = property(lambda self: self.array.shape)

    def detach(self):
        return self

    def float(self):
        return _StubTensor(self.array.copy())

    def cpu(self):
        return self

    def reshape(self, *shape):
        return _StubTensor(self.array.reshape(*shape), self.dtype)

    def clone(self):
        return _StubTensor(self.array.copy(), self.dtype)

    def numpy(self):
        return self.array


class _StubOptimizer:
    """SGD on stub tensors with a fixed gradient; keeps fp32 masters for bf16 params."""

    def __init__(self, params, masters, lr):
        self.params, self.masters, self.param_groups = params, masters, [{"lr": lr}]

    def step(self):
        for name, p in self.params.items():
            master = self.masters[name]
            master.array -= np.float32(self.param_groups[0]["lr"]) * np.float32(0.3)
            p.array = (master.array.view(np.uint32) & 0xFFFF0000).view(np.float32)


class RecorderLogicWithoutTorchTests(TemporaryFiles):
    """The recorder's bookkeeping (BASE, deltas, every=k, FINL) with a stub torch module,
    so it is tested even where torch is not installed."""

    def setUp(self):
        super().setUp()
        import sys
        import types
        self._saved = sys.modules.get("torch")
        if self._saved is None:
            sys.modules["torch"] = types.ModuleType("torch")

    def tearDown(self):
        import sys
        if self._saved is None:
            sys.modules.pop("torch", None)
        super().tearDown()

    def test_masters_every_k_and_final(self):
        masters = {"w": _StubTensor([1.0, -0.5, 3.0])}
        params = {"w": _StubTensor(masters["w"].array.copy(), "torch.bfloat16")}
        optimizer = _StubOptimizer(params, masters, lr=0.01)
        path = os.path.join(self.directory, "r.bin")
        recorder = pr.TorchUpdateRecorder(optimizer, path, params, masters=masters, every=2)
        for _ in range(5):
            recorder.step()
        recorder.close()
        with pr.UpdateStreamReader(path) as reader:
            self.assertEqual(reader.tensors, [("w", (3,), "BF16")])
            records = list(reader.records())
            self.assertEqual([(r.kind, r.step) for r in records],
                             [("BASE", 0), ("STEP", 2), ("STEP", 4), ("STEP", 5), ("FINL", 5)])
            weights = records[0].tensor("w").copy()
            for record in records[1:-1]:
                weights = (weights + record.tensor("w")).astype(np.float32)
            np.testing.assert_array_equal(weights.view(np.uint32), records[-1].tensor("w").view(np.uint32))
            np.testing.assert_array_equal(records[-1].tensor("w"), masters["w"].array)
            # The recorded base is the fp32 master, not the bf16-rounded parameter.
            self.assertEqual(records[0].tensor("w").tolist(), [1.0, -0.5, 3.0])
