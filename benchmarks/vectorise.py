"""Is vectorising the book's tiny networks over seeds faster than running seeds in processes?

    python benchmarks/vectorise.py [--members 10] [--repeats 3]

Chapter 5 retrains one bandit reward network per seed (``core.models.RewardNet``, one hidden
layer of 50 units; 100 Adam steps on mini-batches of 512, gradients clipped per network) and
chapter 7's ensembles train several small networks on the same data.  This measures one such
retraining for ``members`` networks, three ways, on one torch thread per process:

* ``loop``: one network after another (what a single worker does);
* ``vmap``: all networks at once, their parameters stacked with ``torch.func.stack_module_state``
  and the loss vectorised with ``torch.func.vmap`` over networks (Adam is element-wise, so one
  optimiser over the stacked parameters is every network's own; clipping is per network);
* ``processes``: the loop split over ``ESSAY_WORKERS`` worker processes by the book's runner
  (``core.runner.run_tasks``; pool start-up included in the first repeat only).

It prints the median wall time of each and the speed-up over the loop.  The networks see the
same data and draws in every variant; ``vmap``'s results equal the loop's to float rounding.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

from bayes_at_scale.core import runner
from bayes_at_scale.core.models import RewardNet
from bayes_at_scale.core.settings import derive_seed, seeded_torch

STEPS, BATCH, ROWS, CONTEXT, ARMS, CLIP, LR = 100, 512, 600, 2, 5, 5.0, 1e-2


def data(seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(ROWS, CONTEXT + ARMS, generator=g)
    x[:, CONTEXT:] = torch.nn.functional.one_hot(torch.randint(0, ARMS, (ROWS,), generator=g),
                                                 ARMS).float()
    return x, torch.randn(ROWS, generator=g)


def network(seed: int) -> RewardNet:
    with seeded_torch(derive_seed(seed, 3)):
        return RewardNet(CONTEXT, ARMS, hidden=(50,))


def batches(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(derive_seed(seed, 4))
    return torch.randint(0, ROWS, (STEPS, BATCH), generator=g)


def train_one(seed: int) -> dict:
    """One network's retraining, as a bandit policy does it."""
    torch.set_num_threads(1)
    x, y = data(seed)
    net, idx = network(seed), batches(seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=LR)
    for step in range(STEPS):
        loss = ((net(x[idx[step]])[:, 0] - y[idx[step]]) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
        optimiser.step()
    return {k: v.detach() for k, v in net.state_dict().items()}


def loop(seeds) -> list[dict]:
    return [train_one(s) for s in seeds]


def vectorised(seeds) -> dict:
    """Every network trained at once; returns the stacked parameters."""
    nets = [network(s) for s in seeds]
    params, buffers = stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")
    xs, ys = zip(*(data(s) for s in seeds))
    x, y = torch.stack(xs), torch.stack(ys)
    idx = torch.stack([batches(s) for s in seeds])               # (members, steps, batch)
    leaves = [p.requires_grad_(False) for p in params.values()]

    def loss(p, b, xb, yb):
        return ((functional_call(base, (p, b), (xb,))[:, 0] - yb) ** 2).mean()

    gradient = vmap(grad(loss))
    optimiser = torch.optim.Adam(leaves, lr=LR)
    rows = torch.arange(len(seeds))[:, None]
    for step in range(STEPS):
        batch = idx[:, step]
        grads = gradient(params, buffers, x[rows, batch], y[rows, batch])
        norm = torch.sqrt(sum((g.flatten(1) ** 2).sum(1) for g in grads.values()))
        scale = (CLIP / (norm + 1e-6)).clamp(max=1.0)
        for p, g in zip(params.values(), grads.values()):
            p.grad = g * scale.view(-1, *[1] * (g.dim() - 1))
        optimiser.step()
    return params


def processes(seeds) -> list[dict]:
    return runner.run_tasks(train_one, [(s,) for s in seeds], seeds)


def timed(fn, seeds, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(seeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.members))
    reference = loop(seeds)
    stacked = vectorised(seeds)
    worst = max(float((stacked[k][i] - reference[i][k]).abs().max())
                for i in range(len(seeds)) for k in stacked)
    print(f"vmap matches the loop to {worst:.1e} (largest parameter difference)")
    results = {name: timed(fn, seeds, args.repeats)
               for name, fn in (("loop", loop), ("vmap", vectorised), ("processes", processes))}
    print(f"{args.members} reward networks, {STEPS} Adam steps of {BATCH}, 1 thread per process, "
          f"{runner.workers_from_env()} workers")
    for name, seconds in results.items():
        print(f"  {name:<10} {seconds:7.2f} s   x{results['loop'] / seconds:4.1f}")


if __name__ == "__main__":
    main()
