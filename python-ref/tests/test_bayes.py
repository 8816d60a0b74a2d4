import numpy as np

from bayesnas_ref.bayes import update_group, update_type


def test_scalar_fixed_point_and_hierarchy():
    rng = np.random.default_rng(0)
    for _ in range(100):
        s, h, lam = rng.uniform(-2, 2), rng.uniform(1e-3, 20), rng.uniform(1e-4, 0.1)
        g = np.array([rng.uniform(0, 3)])
        for _ in range(400):
            g, _, _ = update_group(g, [s], [h], lam)
        star = (s * s + np.sqrt(s ** 4 + 4 * s * s * lam / h)) / 2
        assert abs(g[0] - star) <= 1e-9 * max(star, 1e-12)
    gc, _, _ = update_group([1.0], [0.9], [4.0], 0.02, origin_gamma=0.3)
    assert gc[0] < 0.3


def test_faithful_broadcast_two_cells():
    g, w, C = update_group([0.2, 0.6], [0.4, -0.7], [3, 5], 0.5, mode="faithful")
    h = np.array([6.0, 10.0])
    Cref = 1 / (1 / np.array([[0.2], [0.6]]) + h[None, :])
    assert np.allclose(C, Cref)
    assert np.isclose(w, np.sqrt(np.abs(1 / 0.6 - Cref / 0.36).sum()))
    assert np.allclose(g, np.hypot(0.4, 0.7) / w)


def test_zero_origin_prunes_children():
    go, wo, gc, wc = update_type(np.ones((2, 2)), np.ones((2, 2, 2)), [[0, 1], [0, 1]], np.ones((2, 2, 2)),
                                 np.ones((2, 2)), np.ones((2, 2, 2)), 0.01, 0.01)
    assert go[0, 0] == 0 and np.all(gc[0] == 0) and go[1, 0] > 0
