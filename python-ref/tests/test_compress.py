import io
import json

import torch
import torch.nn.functional as F

from bayesnas_ref import compress as C
from bayesnas_ref.compress import CompressNet, Round


def tiny(monkeypatch, seed=0):
    monkeypatch.setitem(C.PRESETS, "tiny", [("conv", 2, 3), ("maxpool", 2), ("flatten",), ("dense", 4), ("dense", 3)])
    net = CompressNet("tiny", "neuron", (1, 6, 6), 3, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for l in net.layers:
            l.W.copy_(torch.rand(l.W.shape, generator=g) - 0.5)
            l.b.copy_(0.1 * (torch.rand(l.b.shape, generator=g) - 0.5))
    return net


def test_classifier_weight_hessian_equals_exact_second_derivatives(monkeypatch):
    net = tiny(monkeypatch)
    x = torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 2, 1, 0])
    rec = net.weight_hessians([(x, y)])
    cls = net.layers[-1]
    W0 = cls.W.detach().clone()

    def loss(w):
        cls.W = w
        try:
            return F.cross_entropy(net.forward(x), y)
        finally:
            cls.W = W0.requires_grad_()

    Hfull = torch.autograd.functional.hessian(loss, W0.clone())
    exact = Hfull.reshape(W0.numel(), W0.numel()).diagonal().reshape(W0.shape)
    assert exact.abs().max() > 1e-3
    assert torch.allclose(rec[-1], exact, rtol=1e-4, atol=1e-7)


def test_conv_weight_hessian_matches_dense_jacobian_rule(monkeypatch):
    # one conv layer feeding the logits directly: diag(J_Wᵀ diag(H_u) J_W) with H_u = p(1−p)/N
    net = tiny(monkeypatch)
    x = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(4))
    l = net.layers[0]
    tape = []
    with torch.no_grad():
        net.apply_op(net.ops[0], x, tape)
    Hy = torch.rand(2, 2, 4, 4, generator=torch.Generator().manual_seed(5))
    out = net._backward(tape, Hy)[id(l)]
    J = torch.autograd.functional.jacobian(lambda w: F.conv2d(x, w * l.mask(), l.b.detach()), l.W.detach()).reshape(Hy.numel(), -1)
    ref = (J * J * Hy.reshape(-1, 1)).sum(0).reshape(l.W.shape)
    assert torch.allclose(out, ref, rtol=1e-5, atol=1e-8)


def test_pruning_a_filter_removes_its_input_channel_and_flattened_features():
    net = CompressNet("lenet-5", "neuron", (1, 28, 28), 10, 0)
    c1, c2, fc1, _ = net.layers
    c1.gamma[3] = 0.0
    c2.gamma[7] = 0.0
    n = net.prune(1e-6)
    assert n == 2
    m2 = c2.mask()
    keep = [o for o in range(50) if o != 7]
    assert not m2[:, 3].any() and not m2[7].any() and m2[keep][:, [0, 1, 2, 4]].all()
    assert not c1.mask()[3].any() and c1.mask()[[0, 1, 2]].all()
    dead = (~fc1.in_alive).nonzero().flatten().tolist()
    assert dead == list(range(7 * 16, 8 * 16))          # NCHW flatten: channel 7's 4x4 features
    w, total = net.counts()
    assert total - w == 25 + (20 * 25 + 50 * 25 - 25) + 16 * 500   # conv1 filter 3; conv2 filter 7 and input channel 3 (shared taps once); fc1 columns


def test_pruning_a_neuron_removes_its_incoming_and_outgoing_weights():
    net = CompressNet("lenet-300-100", "neuron", (1, 28, 28), 10, 0)
    fc1, fc2, _ = net.layers
    fc2.gamma[5] = 0.0                                     # fan-out group of hidden unit 5
    net.prune(1e-6)
    assert not fc1.out_alive[5] and fc1.out_alive.sum() == 299
    assert not fc1.mask()[5].any() and not fc2.mask()[:, 5].any()
    w, total = net.counts()
    assert total - w == 784 + 100


def test_round_and_serve_protocol():
    r = Round("lenet-300-100", 2, 1, 1, 16, 0, 1e-3)
    before = r.net.counts()
    ms = r.run()
    assert ms > 0 and r.net.counts() == before             # threshold 0: nothing pruned
    assert all((l.gamma > 0).all() for l in r.net.layers if l.group != "none")
    out = io.StringIO()
    C.serve(r, io.StringIO("step 1\nbogus\nquit\n"), out)
    lines = [json.loads(s) for s in out.getvalue().splitlines()]
    assert len(lines[0]["ms"]) == 1 and "error" in lines[1]


def test_prox_step_zeroes_small_groups_exactly():
    net = CompressNet("lenet-300-100", "neuron", (1, 28, 28), 10, 0)
    fc1 = net.layers[0]
    with torch.no_grad():
        fc1.W[:, 0] *= 1e-4
    net.prox_step(1.0, 0.01)
    assert (fc1.W[:, 0] == 0).all() and (fc1.W[:, 1] != 0).any()


def test_vectorised_group_update_equals_the_per_group_reference():
    r = Round("lenet-5", 2, 0, 1, 16, 0, 1e-2)
    for _ in range(2):
        r.step(1e-2)
    net = r.net
    net.layers[1].in_alive[4] = False          # a pruned channel: its members leave the groups
    net.cleanup()
    H = net.weight_hessians([(r.x, r.y)])
    net.update_groups(H, 1e-2)
    vec = [(l.gamma.clone(), l.omega.clone()) for l in net.layers]
    for l in net.layers:
        l.gamma, l.omega = torch.ones_like(l.gamma), torch.ones_like(l.omega)
    net.update_groups_loop(H, 1e-2)
    for (g, o), l in zip(vec, net.layers):
        assert torch.allclose(g, l.gamma, rtol=1e-5) and torch.allclose(o, l.omega, rtol=1e-5)
