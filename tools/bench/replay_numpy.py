"""Reference replay in plain numpy + ml_dtypes, timed by `make bench`.

Reads an update stream (spec: update-stream-v1) and replays it under the same five
policies as `preclab replay` (fp32/master share the fp32 truth), with bf16 storage.
Prints one JSON line: {"element_steps": ..., "seconds": {"fp32,master,pure,kahan": s, "all": s}}
(fp32 and master share the truth; the master export is counted once at the end, as
`preclab replay` does in its final analysis). Each time is the best of REPEATS runs
(argument 2, default 3), as the Swift side times itself.
"""
import json
import struct
import sys
import time

import numpy as np

try:
    import ml_dtypes
except ImportError:  # the benchmark reports the skip
    print(json.dumps({"skipped": "ml_dtypes is not installed"}))
    sys.exit(0)

BF16 = ml_dtypes.bfloat16


def records(path):
    data = np.memmap(path, dtype=np.uint8, mode="r")
    header_length = struct.unpack_from("<I", data, 12)[0]
    header = json.loads(bytes(data[16:16 + header_length]).decode("utf-8"))
    position = 16 + header_length
    while position < len(data):
        tag = bytes(data[position:position + 4]).decode("ascii")
        payload_length = struct.unpack_from("<Q", data, position + 24)[0]
        start = position + 32
        values = np.frombuffer(data, dtype="<f4", count=payload_length // 4, offset=start)
        yield tag, values
        position = start + payload_length + 8
    del header


def replay(path, policies, seed=0):
    truth = stored_base = pure = stochastic = kahan_w = kahan_c = None
    rng = np.random.default_rng(seed)
    steps = 0
    elements = 0
    for tag, values in records(path):
        if tag == "BASE":
            truth = values.copy()
            stored_base = truth.astype(BF16)
            pure = stored_base.copy()
            stochastic = stored_base.copy()
            kahan_w = stored_base.copy()
            kahan_c = np.zeros_like(stored_base)
            elements = truth.size
            continue
        if tag != "STEP":
            continue
        steps += 1
        truth += values
        if "pure" in policies:
            pure = (pure.astype(np.float32) + values).astype(BF16)
        if "stochastic" in policies:
            total = stochastic.astype(np.float32) + values
            bits = total.view(np.uint32)
            random = rng.integers(0, 1 << 16, size=bits.size, dtype=np.uint32)
            up = (random < (bits & 0xFFFF)).astype(np.uint32)
            stochastic = ((bits >> 16) + up).astype(np.uint16).view(BF16)
        if "kahan" in policies:
            c = (kahan_c.astype(np.float32) + values).astype(BF16)
            old = kahan_w
            kahan_w = (old.astype(np.float32) + c.astype(np.float32)).astype(BF16)
            lost = (old.astype(np.float32) - kahan_w.astype(np.float32)).astype(BF16)
            kahan_c = (c.astype(np.float32) + lost.astype(np.float32)).astype(BF16)
    if "master" in policies:
        visible = int(np.count_nonzero(truth.astype(BF16).view(np.uint16) != stored_base.view(np.uint16)))
    else:
        visible = -1
    return steps * elements, visible


def main():
    path = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    timings = {}
    element_steps = 0
    for name, policies in (("fp32,master,pure,kahan", ("master", "pure", "kahan")),
                           ("all", ("master", "pure", "stochastic", "kahan"))):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            element_steps, _ = replay(path, policies)
            best = min(best, time.perf_counter() - start)
        timings[name] = best
    print(json.dumps({"element_steps": element_steps, "seconds": timings}))


if __name__ == "__main__":
    main()
