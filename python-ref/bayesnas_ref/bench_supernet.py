"""Training-step benchmark of a whole supernet (PyTorch half of the supernet bench).

Default: the `darts` preset (8 cells, C=16, 14 edges x 7 ops, gate "output"), batch 64, a
reduced input size of 16x16 with 3 channels, 10 classes. One step = forward, cross-entropy,
backward, SGD update (lr 0.025, momentum 0.9, weight decay 3e-4, on every parameter including
the switches), on one fixed random batch, timed with time.perf_counter. In the JSON result,
"steps" are the timed steps (warmup excluded), "loss_first" the loss of the very first step
(warmup included) and "loss_last" that of the last timed step; images_per_second is
batch / median step time.

Note: all switches start at 1 and a node sums all its ops and edges unnormalised, so the
initial logits are large (loss ~19.9 for the default run, not ln 10). At the default lr 0.025
the loss on the fixed batch oscillates and then diverges (about 1e30 at step 11, NaN at step 12
of the default run), so "loss_last" is then null; --lr 0.0025 trains down steadily. Timings are
what this benchmark is for.

  python -m bayesnas_ref.bench_supernet [--space darts|bayesnas|file.json] [--batch 64]
      [--size 16] [--C N] [--layers N] [--steps 10] [--warmup 2] [--threads 2] [--seed 0]
      [--gate output|input] [--lr 0.025] [--json]

  python -m bayesnas_ref.bench_supernet --serve [same options]
      stdin protocol as bench_engine: "step N" -> {"ms": [...], "loss": x}; "quit" exits.
      A readiness line (JSON, with "ready": true and "params") goes to stderr first.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from .bench_engine import _num, serve
from .serving import announce, device_of, synchronize, timed_steps
from .spaces import SpaceError, get_space
from .supernet import GATES, Supernet


class Trainer:
    def __init__(self, space, batch: int, size: int, seed: int, num_classes: int = 10,
                 in_channels: int = 3, gate: str = "output", lr: float = 0.025, device: str = "cpu"):
        torch.manual_seed(seed)
        self.device = device_of(device)
        self.model = Supernet(space, num_classes, in_channels, gate).train()
        self.x = torch.randn(batch, in_channels, size, size)
        self.y = torch.randint(0, num_classes, (batch,))
        self.model, self.x, self.y = self.model.to(self.device), self.x.to(self.device), self.y.to(self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9,
                                   weight_decay=3e-4)

    def step(self) -> tuple[float, float]:
        """One training step; returns (milliseconds, loss)."""
        synchronize(self.device)
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        synchronize(self.device)
        ms = (time.perf_counter() - t0) * 1e3
        return ms, loss.item()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--space", default="darts", help="darts | bayesnas | path to a JSON space")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--C", type=int, default=None, help="override the space's C")
    ap.add_argument("--layers", type=int, default=None, help="override the space's cell count")
    ap.add_argument("--gate", choices=GATES, default="output")
    ap.add_argument("--lr", type=float, default=0.025, help="SGD learning rate")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu | cuda (timings synchronise the device)")
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    ap.add_argument("--serve", action="store_true", help="step-by-step mode on stdin")
    a = ap.parse_args(argv)

    try:
        space = get_space(a.space, C=a.C, layers=a.layers)
    except SpaceError as e:
        ap.error(str(e))
    torch.set_num_threads(a.threads)
    tr = Trainer(space, a.batch, a.size, a.seed, gate=a.gate, lr=a.lr, device=a.device)
    params = tr.model.param_count()
    info = {"framework": "pytorch", "torch": torch.__version__, "device": str(tr.device),
            "threads": torch.get_num_threads(), "space": space.name, "C": space.C,
            "layers": space.layers, "gate": a.gate, "lr": a.lr, "batch": a.batch,
            "size": a.size,
            "params": params}

    if a.serve:
        announce(info)
        serve(tr)
        return

    if a.steps < 1:
        ap.error("--steps must be >= 1")
    losses = timed_steps(tr.step, a.warmup)[1]
    steps, timed_losses = timed_steps(tr.step, a.steps)
    losses += timed_losses
    med = statistics.median(steps)
    res = {**info, "steps": steps, "median_ms": med,
           "images_per_second": a.batch / (med / 1e3),
           "loss_first": _num(losses[0]), "loss_last": _num(losses[-1])}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"pytorch {res['torch']} threads={res['threads']} space={space.name} C={space.C} "
              f"layers={space.layers} gate={a.gate} batch={a.batch} size={a.size} "
              f"params={params}")
        print(f"steps={a.steps} (+{a.warmup} warmup) median {med:.1f} ms/step "
              f"({res['images_per_second']:.1f} images/s), min {min(steps):.1f}, "
              f"max {max(steps):.1f}")
        print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")


if __name__ == "__main__":
    main()
