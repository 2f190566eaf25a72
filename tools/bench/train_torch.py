"""PyTorch CPU reference for `preclab-bench train`: the same training step as
`preclab train --method pretrain` (MLP 2N -> 256 -> 256 -> 2^N, ReLU, cross-entropy,
clip_grad_norm_ 1.0, AdamW lr 1e-3 wd 0.01), batch prompts drawn and encoded each step.

usage: python train_torch.py BITS BATCH STEPS THREADS
prints: seconds per step (best of 3 timed blocks of STEPS steps)
"""
import sys
import time

import torch

bits, batch, steps, threads = (int(x) for x in sys.argv[1:5])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Linear(2 * bits, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 2 ** bits))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
shifts = torch.arange(bits)
generator = torch.Generator().manual_seed(0)


def step():
    a = torch.randint(0, 2 ** bits, (batch,), generator=generator)
    b = torch.randint(0, 2 ** bits, (batch,), generator=generator)
    features = torch.cat([(a[:, None] >> shifts) & 1, (b[:, None] >> shifts) & 1], dim=1).float() * 2 - 1
    target = (a + b) % (2 ** bits)
    loss = torch.nn.functional.cross_entropy(model(features), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


for _ in range(20):
    step()
best = float("inf")
for _ in range(3):
    start = time.perf_counter()
    for _ in range(steps):
        step()
    best = min(best, (time.perf_counter() - start) / steps)
print(best)
