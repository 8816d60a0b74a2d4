import io
import json

import pytest

from bayesnas_ref.bench_engine import serve
from bayesnas_ref.serving import count_arg, serve_lines


def replies(handle, text):
    out = io.StringIO()
    serve_lines(handle, io.StringIO(text), out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_one_reply_per_command_errors_keep_going_and_quit_stops():
    def handle(parts):
        if parts[0] != "echo":
            raise ValueError(f"unknown {parts[0]}")
        return {"words": parts[1:]}
    r = replies(handle, "echo a b\n\n   \nnope\necho c\nquit\necho never\n")
    assert r == [{"words": ["a", "b"]}, {"error": "ValueError: unknown nope"}, {"words": ["c"]}]


def test_count_arg():
    assert count_arg(["step"], 1, 1, 0) == 1
    assert count_arg(["step", "3"], 1, 1, 0) == 3
    with pytest.raises(ValueError, match="below 1"):
        count_arg(["recursion", "0"], 1, 1, 1)
    with pytest.raises(ValueError):
        count_arg(["step", "x"], 1, 1, 0)


def test_step_protocol_times_each_step_and_rejects_bad_counts():
    class Counter:
        n = 0

        def step(self):
            self.n += 1
            return 2.5, float(self.n)
    tr = Counter()
    out = io.StringIO()
    serve(tr, io.StringIO("step 3\nstep\nstep -1\nstep x\nrun\n"), out)
    r = [json.loads(line) for line in out.getvalue().splitlines()]
    assert r[0] == {"ms": [2.5, 2.5, 2.5], "loss": 3.0}
    assert r[1] == {"ms": [2.5], "loss": 4.0}
    assert "below 0" in r[2]["error"] and "ValueError" in r[3]["error"]
    assert "expected 'step [N]'" in r[4]["error"]
    assert tr.n == 4


def test_device_flag_cpu_and_a_clear_error_for_absent_cuda():
    import torch
    from bayesnas_ref.serving import device_of, synchronize
    assert device_of("cpu").type == "cpu"
    synchronize(device_of("cpu"))   # a no-op on the CPU
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="--device cuda: torch .* sees no CUDA device"):
            device_of("cuda")


def test_bench_engine_reports_its_device_and_times_steps():
    from bayesnas_ref import bench_engine
    tr = bench_engine.Trainer(batch=2, size=8, seed=0, device="cpu")
    ms, loss = tr.step()
    assert ms > 0 and loss > 0
    assert next(tr.model.parameters()).device.type == "cpu"
