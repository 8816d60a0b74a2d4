"""Training-step benchmark of the supernet slice (PyTorch half of the engine bench).

One step = forward, cross-entropy loss, backward, SGD update, on one fixed
random batch. Each step is timed with time.perf_counter. In the JSON result,
"steps" are the timed steps (warmup excluded), "loss_first" is the loss of the
very first step run (warmup included, i.e. the loss at initialisation) and
"loss_last" that of the last timed step.

  python -m bayesnas_ref.bench_engine --batch 32 --size 32 --steps 15 \
      --warmup 3 --threads 2 --seed 0 [--json]

  python -m bayesnas_ref.bench_engine --serve [same options]
      stdin protocol, one command per line:
        "step N" -> runs N steps, prints {"ms": [...], "loss": last_loss or null}
        "quit"   -> exits (so does end of input)
      Anything else prints {"error": "..."}. One JSON line per command, flushed.
      A readiness line (JSON) goes to stderr once the model is built; stdout
      carries only command replies.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from .serving import announce, count_arg, device_of, serve_lines, synchronize, timed_steps
from .slice_net import build_slice, param_count


class Trainer:
    def __init__(self, batch: int, size: int, seed: int, num_classes: int = 10, device: str = "cpu"):
        torch.manual_seed(seed)
        self.device = device_of(device)
        self.model = build_slice(num_classes=num_classes).train()
        self.x = torch.randn(batch, 3, size, size)
        self.y = torch.randint(0, num_classes, (batch,))
        self.model, self.x, self.y = self.model.to(self.device), self.x.to(self.device), self.y.to(self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.05,
                                   momentum=0.9, weight_decay=3e-4)

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


def _num(v):
    """JSON-safe float: NaN/inf become null (JavaScript's JSON.parse rejects NaN)."""
    return v if v is not None and math.isfinite(v) else None


def serve(tr, fin=sys.stdin, fout=sys.stdout) -> None:
    """'step [N]': N training steps (default 1) -> {"ms": [one per step], "loss": the last loss}."""
    def handle(parts: list[str]) -> dict:
        if parts[0] != "step" or len(parts) > 2:
            raise ValueError(f"expected 'step [N]' or 'quit', got {' '.join(parts)!r}")
        ms, losses = timed_steps(tr.step, count_arg(parts, 1, 1, 0))
        return {"ms": ms, "loss": _num(losses[-1] if losses else None)}
    serve_lines(handle, fin, fout)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu | cuda (timings synchronise the device)")
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    ap.add_argument("--serve", action="store_true", help="step-by-step mode on stdin")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    tr = Trainer(a.batch, a.size, a.seed, device=a.device)
    info = {"framework": "pytorch", "torch": torch.__version__, "device": str(tr.device),
            "threads": torch.get_num_threads(), "batch": a.batch, "size": a.size}

    if a.serve:
        announce({**info, "params": param_count(tr.model)})
        serve(tr)
        return

    if a.steps < 1:
        ap.error("--steps must be >= 1")
    losses = timed_steps(tr.step, a.warmup)[1]
    steps, timed_losses = timed_steps(tr.step, a.steps)
    losses += timed_losses
    res = {**info, "steps": steps, "median_ms": statistics.median(steps),
           "params": param_count(tr.model),
           "loss_first": _num(losses[0]), "loss_last": _num(losses[-1])}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"pytorch {res['torch']} threads={res['threads']} batch={a.batch} "
              f"size={a.size} params={res['params']}")
        print(f"steps={a.steps} (+{a.warmup} warmup) median {res['median_ms']:.1f} ms/step, "
              f"min {min(steps):.1f}, max {max(steps):.1f}")
        print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")


if __name__ == "__main__":
    main()
