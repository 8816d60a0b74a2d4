"""The BayesNAS search schedule in PyTorch (spec §4.3), the reference half of `bayesnas bench search`.

Same schedule and settings as the TypeScript search (src/search/search.ts), read from the same
config JSON:
  warm-up epochs   weights only, on the `train` split (SGD momentum, weight decay, norm clipping,
                   cosine learning rate over all epochs), then a validation pass (BN running stats);
  per round        switch epoch: weights and switches (second SGD, no weight decay) on the
                   `switch` split with the group penalty λ·ω·||s_g||₂ per cell type, validation;
                   diagonal switch Hessian (the recursion of hessian.py, training-mode BN) averaged
                   over M batches of the switch split; HARD-prior update (bayes.update_type) per
                   cell type; optional pruning of switches whose γ fell under the threshold;
  finally          derivation of a connected cell per type from γ (spec §7.3, the rules of
                   src/genotype/derive.ts).

Data: an Arrow tensor file (tsweights format) with rows train.x, train.y, switch.x, switch.y,
val.x, val.y; x normalised float32 NHWC as the TypeScript batches feed the network, y class
indices. Weights are PyTorch-initialised (this run times the schedule; parity on identical
weights is parity.py's job).

  python -m bayesnas_ref.search --space SPACE.json --config CONFIG.json --data DATA.arrow [--json]
      runs the whole schedule and prints the seconds per phase.
  python -m bayesnas_ref.search --serve ...
      stdin: "phase warmup E" | "phase switch E" | "phase hessian R" | "phase update R" |
      "phase derive" | "quit"; one JSON reply per line with "seconds". Readiness JSON on stderr.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import bayes
from .hessian import _space_from_json, recursion_switch_hessian
from .serving import announce, serve_lines
from .supernet import Supernet
from .tsweights import nhwc_to_nchw, read_tensor_file

TYPES = ("normal", "reduce")


def derive_cell(edges, ops, nodes, origin, child, mode="bayesnas", tau_edge=0.1, tau_op=0.1,
                relative=True, on_dead="reattach", inputs_per_node=2):
    """A connected cell from γ (spec §7.3). edges: [(node, source)], origin: (E,), child: (E, O)
    effective γ. Returns {"nodes": [[(op, input), ...] per node], "concat": [...]}.

    Zero-op priority (an edge under τ_edge takes all its ops), op threshold τ_op, a node without a
    live input is dead and so are its outgoing edges; a dead node gets its best edge re-attached
    (default) or leaves the concat ("shrink"). "darts": top-2 edges per node, top-1 op per edge."""
    origin, child = np.asarray(origin, float), np.asarray(child, float)
    usable = [op != "none" for op in ops]

    def best_op(e):
        cand = [k for k in range(len(ops)) if usable[k]]
        return max(cand, key=lambda k: (child[e, k], -k))

    out_nodes, concat = [[] for _ in range(nodes)], []
    if mode == "darts":
        for n in range(nodes):
            cand = sorted([i for i, (node, _) in enumerate(edges) if node == n],
                          key=lambda i: (-origin[i], i))[:inputs_per_node]
            out_nodes[n] = [(ops[best_op(i)], edges[i][1]) for i in cand]
            concat.append(n + 2)
        return {"nodes": out_nodes, "concat": concat}
    tau_e = tau_edge * origin.max() if relative else tau_edge
    tau_o = tau_op * child.max() if relative else tau_op
    alive = [True, True]
    for n in range(nodes):
        entries = []
        for i, (node, src) in enumerate(edges):
            if node != n or not alive[src] or not origin[i] >= tau_e:
                continue
            entries += [(ops[k], src) for k in range(len(ops)) if usable[k] and child[i, k] >= tau_o]
        if not entries and on_dead == "reattach":
            cand = [i for i, (node, src) in enumerate(edges) if node == n and alive[src]]
            if cand:
                b = max(cand, key=lambda i: (origin[i], -i))
                entries.append((ops[best_op(b)], edges[b][1]))
        alive.append(bool(entries))
        out_nodes[n] = entries
        if entries:
            concat.append(n + 2)
    if not concat:
        return derive_cell(edges, ops, nodes, origin, child, mode, tau_edge, tau_op, relative,
                           "reattach", inputs_per_node)
    return {"nodes": out_nodes, "concat": concat}


def derive_cell_json(args_json: str) -> str:
    """derive_cell with JSON in and out (for the bridge): {edges, ops, nodes, origin, child [E][O],
    options: {mode, tauEdge, tauOp, relative, onDead, inputsPerNode}}."""
    a = json.loads(args_json)
    o = a.get("options", {})
    cell = derive_cell([tuple(e) for e in a["edges"]], a["ops"], a["nodes"], a["origin"], a["child"],
                       o.get("mode", "bayesnas"), o.get("tauEdge", 0.1), o.get("tauOp", 0.1),
                       o.get("relative", True), o.get("onDead", "reattach"), o.get("inputsPerNode", 2))
    return json.dumps(cell)


def read_splits(path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    rows, _ = read_tensor_file(path)
    by = {r.name: r for r in rows}
    out = {}
    for split in ("train", "switch", "val"):
        if f"{split}.x" not in by or f"{split}.y" not in by:
            raise ValueError(f"{path}: rows {split}.x and {split}.y are required")
        x = nhwc_to_nchw(by[f"{split}.x"].array())
        y = torch.from_numpy(by[f"{split}.y"].array().astype(np.int64))
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{path}: {split}.x has {x.shape[0]} images but {split}.y {y.shape[0]} labels")
        out[split] = (x, y)
    return out


class SearchRun:
    """The model, the two optimisers and the Bayesian state of one search; one method per phase."""

    def __init__(self, space, gate: str, cfg: dict, splits, num_classes: int):
        self.cfg, self.splits, self.space = cfg, splits, space
        torch.manual_seed(cfg["seed"])
        self.gen = torch.Generator().manual_seed(cfg["seed"])
        in_ch = splits["train"][0].shape[1] if splits["train"][0].numel() else splits["switch"][0].shape[1]
        self.model = Supernet(space, num_classes, in_ch, gate).train()
        self.weights, self.switches = self.model.weights(), self.model.switches()
        self.w_opt = torch.optim.SGD(self.weights, lr=cfg["lr"], momentum=cfg["momentum"],
                                     weight_decay=cfg["weightDecay"])
        self.s_opt = torch.optim.SGD(self.switches, lr=cfg["switchLr"], momentum=cfg["switchMomentum"])
        self.cells = {t: [c for c in self.model.cells if c.cell_type == t] for t in TYPES}
        O = len(space.ops)
        rng = np.random.default_rng(cfg["seed"] + 17)
        faithful = cfg["updateMode"] == "faithful"
        self.state = {}
        for t in TYPES:
            K, E = len(self.cells[t]), len(space.cell_edges(t))
            init = (lambda *s: rng.random(s)) if faithful else (lambda *s: np.ones(s))
            self.state[t] = {"gamma_origin": init(E, K), "gamma_child": init(E, O, K),
                             "omega_origin": np.ones(E), "omega_child": np.ones((E, O))}
        self.mask = None
        self.hessian = None

    # -- epochs ---------------------------------------------------------------------------------

    def learning_rate(self, epoch: int) -> float:
        c = self.cfg
        total = c["warmupEpochs"] + c["rounds"]
        if c["lrSchedule"] == "constant" or total <= 1:
            return c["lr"]
        return c["lrMin"] + 0.5 * (c["lr"] - c["lrMin"]) * (1 + math.cos(math.pi * epoch / total))

    def penalty(self) -> torch.Tensor:
        terms = []
        for t in TYPES:
            cells = self.cells[t]
            if not cells:
                continue
            st = self.state[t]
            for lam, attr, omega in ((self.cfg["lambdaOrigin"], "switch_origin", st["omega_origin"]),
                                     (self.cfg["lambdaChild"], "switch_child", st["omega_child"])):
                if lam:
                    s = torch.stack([getattr(c, attr) for c in cells])
                    norm = torch.sqrt((s * s).sum(0) + 1e-12)
                    terms.append(lam * (norm * torch.as_tensor(omega, dtype=s.dtype)).sum())
        return sum(terms) if terms else torch.zeros(())

    def epoch(self, epoch: int, phase: str) -> dict:
        c = self.cfg
        x_all, y_all = self.splits["train" if phase == "warmup" else "switch"]
        for g in self.w_opt.param_groups:
            g["lr"] = self.learning_rate(epoch)
        for s in self.switches:
            s.requires_grad_(phase == "switch")
        n, B = x_all.shape[0], c["batch"]
        perm = torch.randperm(n, generator=self.gen)
        loss_sum, hits, seen = 0.0, 0, 0
        for i in range(n // B):
            idx = perm[i * B:(i + 1) * B]
            x, y = x_all[idx], y_all[idx]
            logits = self.model(x)
            loss = F.cross_entropy(logits, y)
            if phase == "switch" and (c["lambdaOrigin"] or c["lambdaChild"]):
                loss = loss + self.penalty()
            self.w_opt.zero_grad(set_to_none=True)
            self.s_opt.zero_grad(set_to_none=True)
            loss.backward()
            if c["gradClip"] > 0:
                torch.nn.utils.clip_grad_norm_(self.weights, c["gradClip"])
            self.w_opt.step()
            if phase == "switch":
                self.s_opt.step()
                self._apply_mask()
            v = loss.item()
            if not math.isfinite(v):
                raise FloatingPointError(f"loss became {v} at epoch {epoch + 1}, step {i + 1}")
            loss_sum += v * B
            hits += int((logits.argmax(1) == y).sum())
            seen += B
        for s in self.switches:
            s.requires_grad_(True)
        val = self.evaluate()
        return {"train_loss": loss_sum / max(seen, 1), "train_acc": hits / max(seen, 1), **val}

    @torch.no_grad()
    def evaluate(self) -> dict:
        x_all, y_all = self.splits["val"]
        self.model.eval()
        B = max(self.cfg["batch"], 64)
        loss, hits = 0.0, 0
        for i in range(0, x_all.shape[0], B):
            logits = self.model(x_all[i:i + B])
            loss += float(F.cross_entropy(logits, y_all[i:i + B], reduction="sum"))
            hits += int((logits.argmax(1) == y_all[i:i + B]).sum())
        self.model.train()
        n = max(x_all.shape[0], 1)
        return {"val_loss": loss / n, "val_acc": hits / n}

    # -- Hessian, update, pruning, derivation -----------------------------------------------------

    def switch_hessian(self, round_: int) -> dict:
        h = self.cfg["hessian"]
        x_all, y_all = self.splits["switch"]
        g = torch.Generator().manual_seed(self.cfg["seed"] + 1000 + round_)
        perm = torch.randperm(x_all.shape[0], generator=g)
        acc, M = None, 0
        for i in range(min(h["batches"], x_all.shape[0] // h["batch"])):
            idx = perm[i * h["batch"]:(i + 1) * h["batch"]]
            cells = recursion_switch_hessian(self.model, x_all[idx], y_all[idx], h["mode"], h["seed"],
                                             h["scale"], x_all.shape[0])
            if acc is None:
                acc = [{"origin": c["origin"].copy(), "child": c["child"].copy()} for c in cells]
            else:
                for a, c in zip(acc, cells):
                    a["origin"] += c["origin"]
                    a["child"] += c["child"]
            M += 1
        if not M:
            raise ValueError("the switch split holds fewer images than one Hessian batch")
        self.hessian = [{"origin": a["origin"] / M, "child": a["child"] / M} for a in acc]
        return {"batches": M}

    def update(self) -> dict:
        if self.hessian is None:
            raise RuntimeError("update before any Hessian")
        for t in TYPES:
            cells = self.cells[t]
            if not cells:
                continue
            ks = [i for i, c in enumerate(self.model.cells) if c.cell_type == t]
            st = self.state[t]
            so = np.stack([c.switch_origin.detach().double().numpy() for c in cells])
            sc = np.stack([c.switch_child.detach().double().numpy() for c in cells])
            ho = np.stack([self.hessian[k]["origin"] for k in ks])
            hc = np.stack([self.hessian[k]["child"] for k in ks])
            go, wo, gc, wc = bayes.update_type(st["gamma_origin"], st["gamma_child"], so, sc, ho, hc,
                                               self.cfg["lambdaOrigin"], self.cfg["lambdaChild"],
                                               self.cfg["updateMode"])
            st.update(gamma_origin=go, omega_origin=wo, gamma_child=gc, omega_child=wc)
        pruned = 0
        if self.cfg.get("prune", 0) > 0:
            self.mask = {}
            for t in TYPES:
                if not self.cells[t]:
                    continue
                st, tau = self.state[t], self.cfg["prune"]
                keep_o = (st["gamma_origin"][:, 0] >= tau).astype(np.float32)
                keep_c = (st["gamma_child"][:, :, 0] >= tau).astype(np.float32) * keep_o[:, None]
                pruned += int((keep_o == 0).sum() + (keep_c == 0).sum())
                for c in self.cells[t]:
                    self.mask[c.switch_origin] = torch.from_numpy(keep_o)
                    self.mask[c.switch_child] = torch.from_numpy(keep_c)
            self._apply_mask()
        return {"pruned": pruned}

    @torch.no_grad()
    def _apply_mask(self) -> None:
        if self.mask:
            for p, m in self.mask.items():
                p.mul_(m.to(p.dtype))

    def derive(self) -> dict:
        d = self.cfg["derive"]
        out = {}
        for t in TYPES:
            if not self.cells[t]:
                continue
            st = self.state[t]
            out[t] = derive_cell(self.space.cell_edges(t), self.space.ops, self.space.nodes,
                                 st["gamma_origin"][:, 0], st["gamma_child"][:, :, 0],
                                 d.get("mode", "bayesnas"), d.get("tauEdge", 0.1), d.get("tauOp", 0.1),
                                 d.get("relative", True), d.get("onDead", "reattach"),
                                 d.get("inputsPerNode", 2))
        return {"genotype": out}

    def phase(self, name: str, index: int = 0) -> dict:
        t0 = time.perf_counter()
        if name in ("warmup", "switch"):
            r = self.epoch(index, name)
        elif name == "hessian":
            r = self.switch_hessian(index)
        elif name == "update":
            r = self.update()
        elif name == "derive":
            r = self.derive()
        else:
            raise ValueError(f"unknown phase {name!r} (warmup, switch, hessian, update, derive)")
        return {"phase": name, "seconds": time.perf_counter() - t0, **r}

    def run_all(self) -> list[dict]:
        c = self.cfg
        out = [self.phase("warmup", e) for e in range(c["warmupEpochs"])]
        for r in range(1, c["rounds"] + 1):
            out.append(self.phase("switch", c["warmupEpochs"] + r - 1))
            out.append(self.phase("hessian", r))
            out.append(self.phase("update", r))
        out.append(self.phase("derive"))
        return out


def build(space_file: str, config_file: str, data_file: str, num_classes: int | None = None) -> SearchRun:
    space, gate = _space_from_json(space_file, None, None)
    with open(config_file) as f:
        cfg = json.load(f)
    missing = [k for k in ("seed", "batch", "lr", "lrSchedule", "lrMin", "momentum", "weightDecay",
                           "switchLr", "switchMomentum", "lambdaOrigin", "lambdaChild", "gradClip",
                           "warmupEpochs", "rounds", "updateMode", "hessian", "derive") if k not in cfg]
    if missing:
        raise ValueError(f"{config_file}: missing setting(s) {', '.join(missing)}")
    splits = read_splits(data_file)
    if num_classes is None:
        num_classes = int(max(int(y.max()) for _, y in splits.values() if y.numel())) + 1
    return SearchRun(space, gate or "output", cfg, splits, num_classes)


def _serve(run: SearchRun, fin=sys.stdin, fout=sys.stdout) -> None:
    """'phase NAME [INDEX]': one phase of the search -> its reply (see SearchRun.phase)."""
    def handle(parts: list[str]) -> dict:
        if parts[0] != "phase" or len(parts) not in (2, 3):
            raise ValueError(f"expected 'phase NAME [INDEX]' or 'quit', got {' '.join(parts)!r}")
        return run.phase(parts[1], int(parts[2]) if len(parts) == 3 else 0)
    serve_lines(handle, fin, fout)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--space", required=True, help="space JSON (TypeScript or Python form)")
    ap.add_argument("--config", required=True, help="search config JSON (the TypeScript SearchConfig)")
    ap.add_argument("--data", required=True, help="Arrow tensor file with the three splits")
    ap.add_argument("--classes", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        run = build(a.space, a.config, a.data, a.classes)
    except (OSError, ValueError) as e:
        ap.error(str(e))
    info = {"framework": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
            "params": run.model.param_count(switches=False), "switches": sum(p.numel() for p in run.switches)}
    if a.serve:
        announce(info)
        _serve(run)
        return
    phases = run.run_all()
    if a.json:
        print(json.dumps({**info, "phases": phases}))
    else:
        for p in phases:
            extra = {k: v for k, v in p.items() if k not in ("phase", "seconds", "genotype")}
            print(f"{p['phase']:8s} {p['seconds']:8.2f} s  {extra}")
        print(json.dumps(phases[-1]["genotype"]))


if __name__ == "__main__":
    main()
