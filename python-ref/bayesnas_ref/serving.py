"""The `--serve` mode of the reference's benchmark and parity programs, which the TypeScript side
drives (src/bench/engine.ts): one JSON line with "ready": true and the program's facts on stderr,
then one command per line on stdin and one JSON reply per command on stdout, until "quit" or the
end of input. A command that fails gets {"error": "..."} and the server keeps going."""
from __future__ import annotations

import json
import sys
import time
from typing import Callable


def announce(info: dict) -> None:
    """The readiness line, with `info`, on stderr."""
    sys.stderr.write(json.dumps({"ready": True, **info}) + "\n")
    sys.stderr.flush()


def serve_lines(handle: Callable[[list[str]], dict], fin=sys.stdin, fout=sys.stdout) -> None:
    """Answers every non-blank line with handle(its words); an exception becomes the error reply."""
    for line in fin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        try:
            reply = handle(parts)
        except Exception as e:  # the client shows the message
            reply = {"error": f"{type(e).__name__}: {e}"}
        fout.write(json.dumps(reply) + "\n")
        fout.flush()


def device_of(name: str):
    """The torch device of a --device flag; a clear error where CUDA is asked for and absent."""
    import torch
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: torch {torch.__version__} sees no CUDA device")
    return torch.device(name)


def synchronize(device) -> None:
    """Waits for the device's queued work (a no-op on the CPU): timings cover the whole step."""
    if device.type == "cuda":
        import torch
        torch.cuda.synchronize(device)


def count_arg(parts: list[str], i: int, default: int, least: int) -> int:
    """Word i of a command as a count >= least (default when absent)."""
    if len(parts) <= i:
        return default
    n = int(parts[i])
    if n < least:
        raise ValueError(f"{parts[0]}: count {n} is below {least}")
    return n


def timed(f: Callable[[], object], reps: int) -> list[float]:
    """Milliseconds of each of `reps` calls of f."""
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def timed_steps(step: Callable[[], tuple[float, float | None]], n: int) -> tuple[list[float], list]:
    """n calls of a trainer's step (which returns its own milliseconds and loss): both lists."""
    ms, losses = [], []
    for _ in range(n):
        t, loss = step()
        ms.append(t)
        losses.append(loss)
    return ms, losses
