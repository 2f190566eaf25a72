"""TorchUpdateRecorder(..., shards=N, tensors=REGEX) and the partition rule it shares
with ``preclab --shard I/N`` (Sources/PrecLabAnalysis/TensorSharding.swift).

The partition cases are worked by hand (the Swift tests, TensorShardingTests, check the
same ones). With a built ``preclab`` (PRECLAB_BIN or .build/debug/preclab) the shard
files are also replayed with --shard I/N, merged, and compared byte for byte with the
replay of the same recording written as one file."""

import json
import os
import subprocess
import sys
import tempfile
import types
import unittest

import numpy as np

import preclab_record as pr

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class PartitionRuleTests(unittest.TestCase):
    def test_largest_first_onto_the_lightest_shard(self):
        # Order a100 b60 c50 d40 e10; loads [100,0] [100,60] [100,110] [140,110] [140,120].
        self.assertEqual(pr.shard_assignment(["c", "a", "e", "b", "d"], [50, 100, 10, 60, 40], 2), [1, 0, 1, 1, 0])

    def test_ties_by_name_then_shard_index(self):
        self.assertEqual(pr.shard_assignment(["x", "w", "y"], [5, 5, 5], 2), [1, 0, 0])
        self.assertEqual(pr.shard_assignment(["y", "x", "w"], [5, 5, 5], 2), [0, 1, 0])
        self.assertEqual(pr.shard_assignment(["a", "\u00e9", "B", "z"], [1, 1, 1, 1], 4), [1, 3, 0, 2])

    def test_more_shards_than_tensors_and_one_shard(self):
        self.assertEqual(pr.shard_assignment(["p", "q"], [3, 7], 5), [1, 0])
        self.assertEqual(pr.shard_assignment(["p", "q", "r"], [0, 7, 1], 1), [0, 0, 0])
        with self.assertRaises(ValueError):
            pr.shard_assignment(["p"], [1], 0)

    def test_shard_path(self):
        self.assertEqual(pr.shard_path("run/updates.bin", 2, 4), "run/updates.shard2of4.bin")


class _Tensor:
    """Just enough of torch.Tensor for the recorder (fp32, numpy-backed)."""

    def __init__(self, array):
        self.array = np.asarray(array, dtype=np.float32)
        self.dtype = "torch.float32"

    shape = property(lambda self: self.array.shape)
    detach = cpu = lambda self: self
    float = clone = lambda self: _Tensor(self.array.copy())
    reshape = lambda self, *shape: _Tensor(self.array.reshape(*shape))
    numpy = lambda self: self.array


class _Optimizer:
    """Deterministic pseudo-random updates of several sizes."""

    def __init__(self, params):
        self.params, self.param_groups, self.count = params, [{"lr": 1e-3}], 0
        self.random = np.random.default_rng(7)

    def step(self):
        self.count += 1
        for p in self.params.values():
            p.array += (self.random.standard_normal(p.array.shape) * 1e-3).astype(np.float32)


def _model():
    random = np.random.default_rng(3)
    shapes = {"layers.0.q_proj.weight": (16, 12), "layers.0.up_proj.weight": (24, 12), "layers.0.norm": (12,),
              "layers.1.q_proj.weight": (16, 12), "layers.1.down_proj.weight": (12, 24), "embed.weight": (30, 8)}
    return {n: _Tensor(random.standard_normal(s).astype(np.float32)) for n, s in shapes.items()}


def _record(directory, path, steps=6, **options):
    params = _model()
    recorder = pr.TorchUpdateRecorder(_Optimizer(params), path, params, **options)
    for _ in range(steps):
        recorder.step()
    recorder.close()
    return recorder.paths


class RecorderShardTests(unittest.TestCase):
    def setUp(self):
        self._directory = tempfile.TemporaryDirectory()
        self.directory = self._directory.name
        self._saved = sys.modules.get("torch")
        if self._saved is None:
            sys.modules["torch"] = types.ModuleType("torch")
        self.cwd = os.getcwd()
        os.chdir(self.directory)

    def tearDown(self):
        os.chdir(self.cwd)
        if self._saved is None:
            sys.modules.pop("torch", None)
        self._directory.cleanup()

    def _read(self, path):
        with pr.UpdateStreamReader(path) as reader:
            records = [(r.kind, r.step, {n: r.tensor(n).copy() for n, _, _ in reader.tensors})
                       for r in reader.records()]
            return [n for n, _, _ in reader.tensors], dict(reader.metadata or {}), records

    def test_shard_files_split_one_recording_by_the_rule(self):
        whole = _record(self.directory, "whole.bin")
        self.assertEqual(whole, ["whole.bin"])
        names, _, records = self._read("whole.bin")
        counts = [int(np.prod(records[0][2][n].shape)) for n in names]
        paths = _record(self.directory, "updates.bin", shards=3)
        self.assertEqual(paths, ["updates.shard1of3.bin", "updates.shard2of3.bin", "updates.shard3of3.bin"])
        assignment = pr.shard_assignment(names, counts, 3)
        seen = []
        for index, path in enumerate(paths):
            held, metadata, shard_records = self._read(path)
            self.assertEqual(held, [n for n, k in zip(names, assignment) if k == index])
            self.assertEqual(metadata["preclab_shard"], "%d/3" % (index + 1))
            self.assertEqual(metadata["preclab_source"], "updates.bin")
            self.assertEqual(json.loads(metadata["preclab_model_tensors"]), [[n, c] for n, c in zip(names, counts)])
            self.assertEqual([(k, s) for k, s, _ in shard_records], [(k, s) for k, s, _ in records])
            for (_, _, mine), (_, _, full) in zip(shard_records, records):
                for name in held:
                    np.testing.assert_array_equal(mine[name].view(np.uint32), full[name].view(np.uint32))
            seen += held
        self.assertEqual(sorted(seen), sorted(names))

    def test_name_regex_records_a_subset(self):
        _record(self.directory, "q.bin", tensors=r"q_proj")
        names, _, _ = self._read("q.bin")
        self.assertEqual(names, ["layers.0.q_proj.weight", "layers.1.q_proj.weight"])
        with self.assertRaises(ValueError):
            _record(self.directory, "none.bin", tensors=r"^nothing$")
        with self.assertRaises(ValueError):
            _record(self.directory, "many.bin", shards=7)

    def test_preclab_merges_the_shard_files_to_the_replay_of_one_file(self):
        binary = os.environ.get("PRECLAB_BIN") or os.path.join(ROOT, ".build", "debug", "preclab")
        if not os.access(binary, os.X_OK):
            self.skipTest("no built preclab at %s" % binary)
        # The same recording as one file and as three (the optimizer is deterministic).
        _record(self.directory, "updates.bin")
        os.rename("updates.bin", "whole.bin")
        paths = _record(self.directory, "updates.bin", shards=3)
        os.rename("whole.bin", "updates.bin")

        def preclab(*arguments):
            run = subprocess.run([binary, *arguments], capture_output=True, text=True, timeout=300)
            self.assertEqual(run.returncode, 0, run.stderr)

        options = ["--null", "permute", "--quiet"]
        preclab("replay", "updates.bin", "--json", "full.json", *options)
        for index, path in enumerate(paths):
            preclab("replay", path, "--shard", "%d/3" % (index + 1), "--json", "s%d.json" % index, *options)
        preclab("merge", "merged.json", "s0.json", "s1.json", "s2.json", "--quiet")
        with open("full.json", "rb") as full, open("merged.json", "rb") as merged:
            self.assertEqual(merged.read(), full.read())
        # A recorder shard file replayed as another shard is a usage error.
        wrong = subprocess.run([binary, "replay", paths[1], "--shard", "1/3", "--json", "w.json", "--quiet"],
                               capture_output=True, text=True, timeout=300)
        self.assertEqual(wrong.returncode, 2, wrong.stderr)
        self.assertIn("was recorded as shard 2/3", wrong.stderr)


if __name__ == "__main__":
    unittest.main()
