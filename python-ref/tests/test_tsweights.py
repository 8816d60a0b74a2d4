"""Parameter and batch exchange with the TypeScript side (bayesnas_ref.tsweights)."""
import numpy as np
import pyarrow as pa
import pytest
import torch

from bayesnas_ref.spaces import get_space
from bayesnas_ref.supernet import Supernet
from bayesnas_ref.tsweights import (TensorFileError, TensorRow, export_params, load_ts_params,
                                    param_mappings, read_batch, read_tensor_file, ts_name,
                                    write_batch, write_tensor_file)


pytestmark = pytest.mark.usefixtures("one_thread")


def small(preset, seed=0, gate="output"):
    torch.manual_seed(seed)
    return Supernet(get_space(preset, C=4, layers=3), gate=gate)


def scramble(model, seed):
    """Random values in every parameter and BN buffer (so a round trip is not trivially 0/1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            v = torch.rand(t.shape, generator=g) + 0.5 if name.endswith("running_var") else \
                torch.randn(t.shape, generator=g)
            t.copy_(v)


def exchanged(sd):
    return {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}


@pytest.mark.parametrize("preset", ["darts", "bayesnas"])
def test_round_trip_gives_identical_state_dict(preset, tmp_path):
    a, b = small(preset, 0), small(preset, 1)
    scramble(a, 7)
    f = tmp_path / "p.arrow"
    export_params(a, f)
    rep = load_ts_params(b, f)
    assert not rep["missing"] and not rep["unexpected"]
    sa, sb = exchanged(a.state_dict()), exchanged(b.state_dict())
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    # every exchanged tensor of the state_dict is in the file, nothing else
    rows, meta = read_tensor_file(f)
    assert meta["layout"] == "NHWC"
    assert len(rows) == len(sa)
    assert {r.group for r in rows} == {"weights", "switches", "buffers"}


def test_layouts_and_names(tmp_path):
    m = small("bayesnas")
    scramble(m, 3)
    f = tmp_path / "p.arrow"
    export_params(m, f)
    rows = {r.name: r for r in read_tensor_file(f)[0]}
    # conv [cout, cin, k, k] -> [k, k, cin, cout]
    w = m.stem[0].weight.detach()
    r = rows["stem.0.weight"]
    assert r.shape == (3, 3, 3, 12)
    assert r.array()[2, 1, 0, 5] == w[5, 0, 2, 1]
    # depthwise [C, 1, k, k] -> [k, k, C, 1]  (bayesnas sep: 2 = depthwise, 3 = pointwise)
    dw = m.cells[0].edges[0].ops[1].op[2].weight.detach()
    r = rows["cells.0.edges.0.ops.1.2.weight"]
    assert r.shape == (5, 5, 4, 1)
    assert r.array()[4, 0, 3, 0] == dw[3, 0, 4, 0]
    assert rows["cells.0.edges.0.ops.1.3.weight"].shape == (1, 1, 4, 4)
    # full dilated conv
    assert rows["cells.0.edges.0.ops.3.2.weight"].shape == (5, 5, 4, 4)
    # classifier [K, F] -> [F, K]
    lw = m.classifier.weight.detach()
    r = rows["classifier.weight"]
    assert r.shape == (lw.shape[1], lw.shape[0])
    assert r.array()[7, 2] == lw[2, 7]
    # head BN, creduct size reduction after a reduction cell (cell 2 follows reduction cell 1),
    # reduction skip = BN + strided 1x1 conv
    assert "head.bn.weight" in rows and "head.bn.running_var" in rows
    assert rows["cells.2.preprocess0.reduce.weight"].shape == (1, 1, 16, 16)
    assert "cells.2.preprocess0.bn.running_mean" in rows
    assert rows["cells.1.edges.0.ops.6.1.weight"].shape == (1, 1, 8, 8)
    assert "cells.1.edges.0.ops.6.0.running_var" in rows
    assert rows["cells.0.switch_child"].shape == (8, 7)
    assert not any(".op." in n or "num_batches" in n or "head_bn" in n or "size_reduct" in n
                   for n in rows)


def test_darts_names():
    names = {mp.ts_name: mp.ts_shape for mp in param_mappings(small("darts"))}
    assert names["stem.1.running_var"] == (12,)
    assert names["cells.0.preprocess1.op.1.weight"] == (1, 1, 12, 4)
    assert names["cells.0.preprocess1.op.2.bias"] == (4,)
    # preprocess0 after a reduction cell is FactorizedReduce
    assert names["cells.2.preprocess0.conv_1.weight"] == (1, 1, 16, 8)
    assert names["cells.2.preprocess0.conv_2.weight"] == (1, 1, 16, 8)
    assert names["cells.2.preprocess0.bn.weight"] == (16,)
    # sep conv: 1 dw, 2 pw, 3 BN, 5 dw, 6 pw, 7 BN; dil conv: 1 dw dilated, 2 pw, 3 BN
    assert names["cells.0.edges.3.ops.0.1.weight"] == (3, 3, 4, 1)
    assert names["cells.0.edges.3.ops.0.7.running_mean"] == (4,)
    assert names["cells.0.edges.3.ops.3.1.weight"] == (5, 5, 4, 1)
    # pools: BN(affine=False), buffers only
    assert names["cells.0.edges.3.ops.4.1.running_var"] == (4,)
    assert "cells.0.edges.3.ops.4.1.weight" not in names
    # skip at stride 2 = FactorizedReduce directly under ops.{o}
    assert names["cells.1.edges.0.ops.6.conv_1.weight"] == (1, 1, 8, 4)
    assert names["cells.1.edges.0.ops.6.bn.running_var"] == (8,)
    assert names["cells.0.switch_origin"] == (14,)
    assert names["classifier.weight"] == (64, 10)
    assert ts_name("cells.0.edges.1.ops.0.op.3.weight") == "cells.0.edges.1.ops.0.3.weight"
    assert ts_name("head_bn.bias") == "head.bn.bias"


def _rewrite(src, dst, edit):
    rows, meta = read_tensor_file(src)
    write_tensor_file(dst, edit(rows), meta)


def test_mismatched_shape_names_tensor_and_both_shapes(tmp_path):
    a = small("bayesnas")
    f, g = tmp_path / "p.arrow", tmp_path / "bad.arrow"
    export_params(a, f)

    def edit(rows):
        out = []
        for r in rows:
            if r.name == "cells.0.edges.2.ops.0.3.weight":   # [1, 1, 4, 4] -> [1, 1, 4, 2]
                r = TensorRow(r.name, (1, 1, 4, 2), r.data[:8], r.group)
            out.append(r)
        return out
    _rewrite(f, g, edit)
    b = small("bayesnas", 5)
    before = {k: v.clone() for k, v in b.state_dict().items()}
    with pytest.raises(TensorFileError) as e:
        load_ts_params(b, g)
    msg = str(e.value)
    assert "cells.0.edges.2.ops.0.3.weight" in msg and "[1, 1, 4, 2]" in msg \
        and "[1, 1, 4, 4]" in msg
    # nothing was loaded
    assert all(torch.equal(before[k], v) for k, v in b.state_dict().items())


def test_missing_and_unexpected_tensors(tmp_path):
    a = small("darts")
    f, g, h = tmp_path / "p.arrow", tmp_path / "missing.arrow", tmp_path / "extra.arrow"
    export_params(a, f)
    _rewrite(f, g, lambda rows: [r for r in rows if r.name != "cells.1.switch_child"])
    with pytest.raises(TensorFileError, match=r"cells\.1\.switch_child.*\[14, 7\]"):
        load_ts_params(small("darts"), g)
    rep = load_ts_params(small("darts"), g, strict=False)
    assert rep["missing"] == ["cells.1.switch_child"] and not rep["unexpected"]
    _rewrite(f, h, lambda rows: rows + [TensorRow("cells.9.switch_origin", (3,),
                                                  np.zeros(3, np.float32), "switches")])
    with pytest.raises(TensorFileError, match=r"cells\.9\.switch_origin.*\[3\]"):
        load_ts_params(small("darts"), h)
    rep = load_ts_params(small("darts"), h, strict=False)
    assert rep["unexpected"] == ["cells.9.switch_origin"]


def test_wrong_preset_is_rejected(tmp_path):
    f = tmp_path / "p.arrow"
    export_params(small("darts"), f)
    with pytest.raises(TensorFileError, match="no tensor named"):
        load_ts_params(small("bayesnas"), f)


def test_corrupt_files(tmp_path):
    bad = tmp_path / "junk.arrow"
    bad.write_bytes(b"not an arrow file at all")
    with pytest.raises(TensorFileError, match="not a readable Arrow IPC file"):
        read_tensor_file(bad)
    with pytest.raises(TensorFileError, match="no such file"):
        read_tensor_file(tmp_path / "absent.arrow")
    # a row whose data does not match its shape
    t = pa.table({"name": ["a"], "group": ["weights"],
                  "shape": pa.array([[2, 3]], pa.list_(pa.int32())),
                  "data": pa.array([[1.0, 2.0]], pa.list_(pa.float32()))})
    f = tmp_path / "short.arrow"
    with pa.OSFile(str(f), "wb") as s, pa.ipc.new_file(s, t.schema) as w:
        w.write_table(t)
    with pytest.raises(TensorFileError, match=r"row 0 \(a\) has shape \[2, 3\] but 2 values"):
        read_tensor_file(f)
    # no data column
    t2 = t.drop_columns(["data"])
    f2 = tmp_path / "nodata.arrow"
    with pa.OSFile(str(f2), "wb") as s, pa.ipc.new_file(s, t2.schema) as w:
        w.write_table(t2)
    with pytest.raises(TensorFileError, match="no 'data' column"):
        read_tensor_file(f2)
    with pytest.raises(TensorFileError, match="6 elements"):
        write_tensor_file(tmp_path / "x.arrow", [TensorRow("a", (2, 3), np.zeros(5, np.float32))])


def test_batch_round_trip_and_layout(tmp_path):
    x = torch.randn(3, 2, 5, 4)
    y = torch.tensor([0, 9, 4])
    f = tmp_path / "b.arrow"
    write_batch(f, x, y)
    rows = {r.name: r for r in read_tensor_file(f)[0]}
    assert rows["x"].shape == (3, 5, 4, 2)                       # NHWC in the file
    assert rows["x"].array()[1, 4, 3, 0] == x[1, 0, 4, 3]
    x2, y2 = read_batch(f)
    assert torch.equal(x2, x) and torch.equal(y2, y) and y2.dtype == torch.int64
    # integer-valued labels written as an int list column are accepted too
    t = pa.table({"name": ["x", "y"], "group": ["", ""],
                  "shape": pa.array([[1, 2, 2, 1], [1]], pa.list_(pa.int32())),
                  "data": pa.array([[1, 2, 3, 4], [7]], pa.list_(pa.int32()))})
    t = t.replace_schema_metadata({"layout": "NHWC"})
    g = tmp_path / "int.arrow"
    with pa.OSFile(str(g), "wb") as s, pa.ipc.new_file(s, t.schema) as w:
        w.write_table(t)
    x3, y3 = read_batch(g)
    assert x3.shape == (1, 1, 2, 2) and y3.tolist() == [7]
    h = tmp_path / "frac.arrow"
    write_tensor_file(h, [TensorRow("x", (1, 1, 1, 1), np.zeros(1, np.float32)),
                          TensorRow("y", (1,), np.array([0.5], np.float32))])
    with pytest.raises(TensorFileError, match="integer labels"):
        read_batch(h)
    with pytest.raises(TensorFileError, match="no tensor named 'x'"):
        read_batch(_only_y(tmp_path))


def _only_y(tmp_path):
    f = tmp_path / "onlyy.arrow"
    write_tensor_file(f, [TensorRow("y", (1,), np.zeros(1, np.float32))])
    return f


def test_loaded_params_reproduce_logits(tmp_path):
    """Export, load into a fresh net: same logits in training and eval mode."""
    a = small("darts", gate="input")
    scramble(a, 11)
    with torch.no_grad():
        for mod in a.modules():
            if isinstance(mod, torch.nn.BatchNorm2d) and mod.affine:
                mod.weight.abs_().add_(0.5)
    f = tmp_path / "p.arrow"
    export_params(a, f)
    b = small("darts", 4, gate="input")
    load_ts_params(b, f)
    x = torch.randn(2, 3, 8, 8)
    a.eval(), b.eval()
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
