"""Network compression with the BayesNAS machinery (spec §8), PyTorch reference of src/compress.

The same procedure as the TypeScript side, written independently (NCHW layouts):
  * LeNet-300-100 and LeNet-5-Caffe with unit masks: a dense/conv layer's effective weight is
    W ⊙ out_alive ⊗ in_alive, its bias b ⊙ out_alive;
  * groups ("neuron"): one per input unit of a dense layer (its outgoing weights, a column of the
    PyTorch [out, in] weight) and one per conv filter; ("filter"): one per output unit (no classifier);
  * diagonal weight Hessians by the forward-recorded recursion (spec §6.3, §6.6): seed p(1−p)/N,
    dense H_x = H_y (W∘²), H_W = H_yᵀ x²; conv H_x = conv2d_input(W∘², H_y), H_W = conv2d_weight(x², H_y);
    ReLU masks; max-pool by its own VJP; flatten reshapes;
  * clean γ/ω/C update per group (bayes.update_group), prune γ < τ with the dependents;
  * training: SGD (momentum 0.9) on the data term, then the proximal step of λ Σ ω_g ||W_g||₂.

  python -m bayesnas_ref.compress --model lenet-300-100 --train-steps 20 --finetune-steps 10 \
      --hessian-batches 2 --batch 100 --threads 2 [--rounds 3] [--json]
  python -m bayesnas_ref.compress --serve [same options]
      stdin: "step N" runs N compression rounds, prints {"ms": [...], "loss": null}; "quit" exits.
      A readiness line (JSON) goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input, conv2d_weight

from .bayes import update_group
from .serving import announce, count_arg, serve_lines

PRESETS = {
    "lenet-300-100": [("flatten",), ("dense", 300), ("dense", 100), ("dense", 10)],
    "lenet-5": [("conv", 20, 5), ("maxpool", 2), ("conv", 50, 5), ("maxpool", 2), ("flatten",), ("dense", 500), ("dense", 10)],
}


class Layer:
    def __init__(self, kind, cin, cout, k, classifier, group, in_hw=None):
        self.kind, self.cin, self.cout, self.k, self.classifier = kind, cin, cout, k, classifier
        fan_in = cin * k * k
        bound = 1.0 / fan_in ** 0.5
        shape = (cout, cin) if kind == "dense" else (cout, cin, k, k)
        self.W = torch.empty(shape).uniform_(-bound, bound).requires_grad_()
        self.b = torch.empty(cout).uniform_(-bound, bound).requires_grad_()
        self.in_alive = torch.ones(cin, dtype=torch.bool)
        self.out_alive = torch.ones(cout, dtype=torch.bool)
        self.group = group                      # "fanout" | "fanin" | "none"
        n = cin if group == "fanout" else cout if group == "fanin" else 0
        self.gamma = torch.ones(n, dtype=torch.float64)
        self.omega = torch.ones(n, dtype=torch.float64)
        self.prev_hw = None                     # flattened input: feature f reads channel f // prev_hw

    def mask(self):
        m = self.out_alive[:, None] & self.in_alive[None, :]
        return (m if self.kind == "dense" else m[:, :, None, None].expand_as(self.W)).to(self.W.dtype)

    def effective(self):
        return self.W * self.mask(), self.b * self.out_alive.to(self.b.dtype)

    def group_alive(self):
        return self.in_alive if self.group == "fanout" else self.out_alive

    def sq_norm_dims(self):
        if self.kind == "dense":
            return (0,) if self.group == "fanout" else (1,)
        return (0, 2, 3) if self.group == "fanout" else (1, 2, 3)


class CompressNet:
    def __init__(self, model="lenet-300-100", grouping="neuron", input_shape=(1, 28, 28), classes=10, seed=0):
        torch.manual_seed(seed)
        C, H, W = input_shape
        self.ops, self.layers = [], []
        flat = None
        defs = PRESETS[model]
        for i, d in enumerate(defs):
            classifier = i == len(defs) - 1
            if d[0] == "flatten":
                flat, hw, self._flat_c = C * H * W, H * W, C
                self.ops.append(("flatten",))
            elif d[0] == "maxpool":
                H, W = H // d[1], W // d[1]
                self.ops.append(("maxpool", d[1]))
            else:
                group = ("fanout" if d[0] == "dense" else "fanin") if grouping == "neuron" else ("none" if classifier else "fanin")
                if d[0] == "dense":
                    l = Layer("dense", flat, d[1], 1, classifier, group)
                    if self.layers and self.layers[-1].kind == "conv":
                        l.prev_hw = hw
                    flat = d[1]
                else:
                    l = Layer("conv", C, d[1], d[2], classifier, group)
                    H, W, C = H - d[2] + 1, W - d[2] + 1, d[1]
                self.layers.append(l)
                self.ops.append(("weight", l))
                if not classifier:
                    self.ops.append(("relu",))
        assert self.layers[-1].cout == classes

    def parameters(self):
        return [p for l in self.layers for p in (l.W, l.b)]

    def apply_op(self, op, x, tape=None):
        if op[0] == "flatten":
            y = x.reshape(x.shape[0], -1)
            if tape is not None:
                tape.append((op, x))
            return y
        if op[0] == "relu":
            if tape is not None:
                tape.append((op, x))
            return F.relu(x)
        if op[0] == "maxpool":
            if tape is not None:
                tape.append((op, x))
            return F.max_pool2d(x, op[1])
        l = op[1]
        W, b = l.effective()
        if tape is not None:
            tape.append((op, x, W))
        return F.linear(x, W, b) if l.kind == "dense" else F.conv2d(x, W, b)

    def forward(self, x, tape=None):
        for op in self.ops:
            x = self.apply_op(op, x, tape)
        return x

    # ── diagonal weight Hessians (spec §6.6) ──────────────────────────────────────────────────
    @torch.no_grad()
    def _backward(self, tape, Hy):
        out = {}
        for rec in reversed(tape):
            op, x = rec[0], rec[1]
            if op[0] == "flatten":
                Hy = Hy.reshape(x.shape)
            elif op[0] == "relu":
                Hy = Hy * (x > 0).to(Hy.dtype)
            elif op[0] == "maxpool":
                with torch.enable_grad():
                    xr = x.detach().requires_grad_()
                    Hy, = torch.autograd.grad(F.max_pool2d(xr, op[1]), xr, Hy)
            else:
                l, W = op[1], rec[2]
                if l.kind == "dense":
                    out[id(l)] = Hy.t() @ (x * x)
                    Hy = Hy @ (W * W)
                else:
                    out[id(l)] = conv2d_weight(x * x, W.shape, Hy)
                    Hy = conv2d_input(x.shape, W * W, Hy)
        return out

    def weight_hessians(self, batches):
        acc, M = None, 0
        for x, y in batches:
            tape = []
            with torch.no_grad():
                logits = self.forward(x, tape)
                p = torch.softmax(logits, 1)
                seed = p * (1 - p) / x.shape[0]
            h = self._backward(tape, seed)
            hs = [h[id(l)] for l in self.layers]
            acc = hs if acc is None else [a + b for a, b in zip(acc, hs)]
            M += 1
        return [a / M for a in acc]

    # ── groups, update, pruning ──────────────────────────────────────────────────────────────
    @torch.no_grad()
    def update_groups(self, H, lam):
        """Clean update of every group at once (segment sums over the group axis), float64."""
        for l, h in zip(self.layers, H):
            if l.group == "none":
                continue
            m = l.mask().double()
            hk = torch.clamp(h.double(), min=0) / lam * m
            g = l.gamma.reshape([-1 if d not in l.sq_norm_dims() else 1 for d in range(l.W.dim())])
            omega = (hk / (1 + g * hk)).sum(dim=l.sq_norm_dims()).sqrt().clamp(min=1e-12)
            norm = (l.W.detach().double() * m).pow(2).sum(dim=l.sq_norm_dims()).sqrt()
            alive = l.group_alive()
            l.gamma = torch.where(alive, torch.clamp(norm / omega, max=1e12), torch.zeros_like(norm))
            l.omega = torch.where(alive, omega, torch.zeros_like(omega))

    def update_groups_loop(self, H, lam):
        """The same update group by group through bayes.update_group (the reference for the test)."""
        for l, h in zip(self.layers, H):
            if l.group == "none":
                continue
            mask = l.mask().bool()
            Wd = l.W.detach()
            alive = l.group_alive()
            for g in range(len(l.gamma)):
                if not alive[g]:
                    l.gamma[g], l.omega[g] = 0.0, 0.0
                    continue
                sel = (slice(None), g) if l.group == "fanout" else (g,)
                m = mask[sel]
                s, hk = Wd[sel][m].double().numpy(), h[sel][m].double().numpy()
                gam, om, _ = update_group([l.gamma[g].item()], s, hk, lam, None, "clean")
                l.gamma[g], l.omega[g] = float(gam[0]), om

    @torch.no_grad()
    def prune(self, threshold):
        n = 0
        for l in self.layers:
            if l.group == "none":
                continue
            alive = l.group_alive()
            drop = alive & (l.gamma < threshold)
            if drop.sum() == alive.sum() and alive.any():
                best = torch.where(alive, l.gamma, torch.full_like(l.gamma, -1.0)).argmax()
                drop[best] = False
            alive &= ~drop
            n += int(drop.sum())
        self.cleanup()
        return n

    @torch.no_grad()
    def cleanup(self):
        changed = True
        while changed:
            changed = False
            for i, l in enumerate(self.layers):
                live_cols = l.mask().reshape(l.cout, l.cin, -1).any(dim=2).any(dim=0)
                new_in = l.in_alive & live_cols
                if not torch.equal(new_in, l.in_alive):
                    l.in_alive.copy_(new_in)
                    changed = True
                if i == 0:
                    continue
                p = self.layers[i - 1]
                unit = torch.arange(l.cin) // l.prev_hw if l.prev_hw else torch.arange(l.cin)
                new_in = l.in_alive & p.out_alive[unit]
                read = torch.zeros(p.cout, dtype=torch.bool)
                read[unit[new_in]] = True
                new_out = p.out_alive & read
                if not (torch.equal(new_in, l.in_alive) and torch.equal(new_out, p.out_alive)):
                    l.in_alive.copy_(new_in)
                    p.out_alive.copy_(new_out)
                    changed = True

    @torch.no_grad()
    def prox_step(self, lam, step):
        for l in self.layers:
            if l.group == "none":
                continue
            Wm = l.W * l.mask()
            norms = Wm.pow(2).sum(dim=l.sq_norm_dims(), keepdim=True).sqrt()
            om = l.omega.to(l.W.dtype) * l.group_alive().to(l.W.dtype)
            om = om.reshape([-1 if d not in l.sq_norm_dims() else 1 for d in range(l.W.dim())])
            l.W.copy_(Wm * torch.clamp(1 - step * lam * om / (norms + 1e-30), min=0))

    def counts(self):
        return sum(int(l.mask().sum()) for l in self.layers), sum(l.W.numel() for l in self.layers)


class Round:
    """One compression round on fixed random batches (the benchmark workload)."""

    def __init__(self, model, train_steps, finetune_steps, hessian_batches, batch, seed, lam, lr=0.05):
        torch.manual_seed(seed)
        shape = (1, 28, 28)
        self.net = CompressNet(model, "neuron", shape, 10, seed)
        self.x = torch.randn(batch, *shape)
        self.y = torch.arange(batch) * 7 % 10
        self.opt = torch.optim.SGD(self.net.parameters(), lr=lr, momentum=0.9)
        self.lr, self.lam = lr, lam
        self.train_steps, self.finetune_steps, self.hessian_batches = train_steps, finetune_steps, hessian_batches

    def step(self, lam):
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.net.forward(self.x), self.y)
        loss.backward()
        self.opt.step()
        if lam > 0:
            self.net.prox_step(lam, self.lr)
        return loss.item()

    def run(self):
        t0 = time.perf_counter()
        for _ in range(self.train_steps):
            self.step(self.lam)
        H = self.net.weight_hessians([(self.x, self.y)] * self.hessian_batches)
        self.net.update_groups(H, self.lam)
        self.net.prune(0.0)
        for _ in range(self.finetune_steps):
            self.step(0.0)
        return (time.perf_counter() - t0) * 1e3


def serve(r: Round, fin=sys.stdin, fout=sys.stdout):
    """'step N': N compression rounds -> {"ms": [one per round], "loss": null}."""
    def handle(parts: list[str]) -> dict:
        if parts[0] != "step" or len(parts) != 2:
            raise ValueError(f"expected 'step N' or 'quit', got {' '.join(parts)!r}")
        return {"ms": [r.run() for _ in range(count_arg(parts, 1, 1, 0))], "loss": None}
    serve_lines(handle, fin, fout)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bayesnas_ref.compress")
    ap.add_argument("--model", default="lenet-300-100", choices=sorted(PRESETS))
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--finetune-steps", type=int, default=10)
    ap.add_argument("--hessian-batches", type=int, default=2)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lambda", dest="lam", type=float, default=1e-4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    r = Round(a.model, a.train_steps, a.finetune_steps, a.hessian_batches, a.batch, a.seed, a.lam)
    if a.serve:
        announce({"torch": torch.__version__, "threads": torch.get_num_threads(), "weights": r.net.counts()[1]})
        serve(r)
        return 0
    ms = [r.run() for _ in range(a.rounds)]
    res = {"model": a.model, "rounds_ms": ms, "weights": r.net.counts()}
    print(json.dumps(res) if a.json else f"{a.model}: rounds {' '.join(f'{m:.0f}' for m in ms)} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
