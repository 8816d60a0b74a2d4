"""Training-epoch benchmark of an evaluation network (PyTorch half of `bayesnas bench train`).

Default workload: DARTS_V2's NetworkCIFAR at a reduced size (8 cells, 16 channels), auxiliary
head (weight 0.4), drop-path 0.2, batch 64 of 32x32x3, 10 classes; one epoch = --images random
images (default 640, 10 steps) in a fixed order. One step = forward, CE + 0.4 CE_aux, backward,
gradient-norm clip 5, SGD (lr 0.025, momentum 0.9, weight decay 3e-4), timed with
time.perf_counter.

  python -m bayesnas_ref.bench_train [--genotype DARTS_V2] [--layers 8] [--C 16] [--batch 64]
      [--size 32] [--images 640] [--drop-path 0.2] [--auxiliary-weight 0.4] [--threads 2]
      [--seed 0] [--json]
  python -m bayesnas_ref.bench_train --serve [same options]
      stdin protocol of bench_engine: "step N" -> {"ms": [...], "loss": x}; "quit" exits.
      A readiness line (JSON, "ready": true, "params") goes to stderr first.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from .bench_engine import _num, serve
from .evalnet import NetworkCIFAR
from .genotypes import load_genotype
from .serving import announce, timed_steps


class Trainer:
    def __init__(self, genotype: str, layers: int, C: int, batch: int, size: int, images: int,
                 drop_path: float, aux_weight: float, seed: int, classes: int = 10):
        torch.manual_seed(seed)
        self.model = NetworkCIFAR(load_genotype(genotype), C, layers, classes,
                                  auxiliary=aux_weight > 0).train()
        self.model.drop_path_prob = drop_path
        self.aux_weight = aux_weight
        self.x = torch.randn(images, 3, size, size)
        self.y = torch.randint(0, classes, (images,))
        self.batch = batch
        self.steps_per_epoch = max(1, images // batch)
        self.i = 0
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.025, momentum=0.9,
                                   weight_decay=3e-4)

    def step(self) -> tuple[float, float]:
        """One training step on the next batch of the epoch; returns (milliseconds, loss)."""
        k = self.i % self.steps_per_epoch
        self.i += 1
        x, y = self.x[k * self.batch:(k + 1) * self.batch], self.y[k * self.batch:(k + 1) * self.batch]
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        logits, aux = self.model(x)
        loss = F.cross_entropy(logits, y)
        if aux is not None:
            loss = loss + self.aux_weight * F.cross_entropy(aux, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.opt.step()
        return (time.perf_counter() - t0) * 1e3, loss.item()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--genotype", default="DARTS_V2")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--images", type=int, default=640)
    ap.add_argument("--drop-path", type=float, default=0.2)
    ap.add_argument("--auxiliary-weight", type=float, default=0.4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    tr = Trainer(a.genotype, a.layers, a.C, a.batch, a.size, a.images, a.drop_path,
                 a.auxiliary_weight, a.seed)
    info = {"framework": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
            "genotype": a.genotype, "layers": a.layers, "C": a.C, "batch": a.batch, "size": a.size,
            "images": a.images, "steps_per_epoch": tr.steps_per_epoch,
            "params": tr.model.param_count(), "params_auxiliary": tr.model.param_count(True)}
    if a.serve:
        announce(info)
        serve(tr)
        return
    for _ in range(a.warmup):
        tr.step()
    tr.i = 0
    steps, losses = timed_steps(tr.step, tr.steps_per_epoch)
    med = statistics.median(steps)
    res = {**info, "steps": steps, "median_ms": med, "epoch_seconds": sum(steps) / 1e3,
           "loss_first": _num(losses[0]), "loss_last": _num(losses[-1])}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"pytorch {res['torch']} threads={res['threads']} {a.genotype} layers={a.layers} "
              f"C={a.C} batch={a.batch} size={a.size} params={info['params']}")
        print(f"epoch of {a.images} images: {res['epoch_seconds']:.2f} s, median {med:.1f} ms/step")


if __name__ == "__main__":
    main()
