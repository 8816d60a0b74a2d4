"""HARD-prior updates of spec §5, written independently of the TypeScript side (src/bayes/update.ts)
so that one update from the same Hessians and switches can be compared number by number.

Group g = (cell type, edge, switch type); members k = the cells of that type.
clean (§5.1):   h = H/λ, C_k = 1/(1/γ + h_k), ω = sqrt(Σ_k h_k/(1+γ h_k)), γ̃ = ||s||₂/ω,
                origin γ = γ̃; child γ = (1/γ̃ + 1/γ_origin_new)⁻¹.
faithful (§5.2): per-member γ_i, C_ij = 1/(1/γ_i + h_j) (K×K broadcast), ω from γ of the last member
                over K² terms with |·|, the same γ written to every member.
"""
from __future__ import annotations

import numpy as np

OMEGA_MIN = 1e-12
GAMMA_MAX = 1e12


def update_group(gamma, s, H, lam, origin_gamma=None, mode="clean"):
    """One group. gamma: per-member γ (K,), s and H: (K,). Returns (gamma (K,), omega, C)."""
    gamma = np.asarray(gamma, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    h = np.asarray(H, dtype=np.float64) / lam
    if mode == "clean":
        h = np.maximum(h, 0.0)
        g = gamma[0]
        C = 1.0 / (1.0 / g + h)
        omega = max(np.sqrt(np.sum(h / (1.0 + g * h))), OMEGA_MIN)
    elif mode == "faithful":
        C = 1.0 / (1.0 / gamma[:, None] + h[None, :])
        gk = gamma[-1]
        omega = max(np.sqrt(np.sum(np.abs(1.0 / gk - C / gk ** 2))), OMEGA_MIN)
    else:
        raise ValueError(f"mode must be clean or faithful, got {mode!r}")
    new = min(np.linalg.norm(s) / omega, GAMMA_MAX)
    if origin_gamma is not None:
        new = 1.0 / (1.0 / new + 1.0 / origin_gamma) if new > 0 and origin_gamma > 0 else 0.0
    return np.full_like(gamma, new), float(omega), C


def update_type(gamma_origin, gamma_child, s_origin, s_child, h_origin, h_child, lam_origin, lam_child, mode="clean"):
    """One cell type. gamma_origin: (E, K), gamma_child: (E, O, K); s_*/h_*: (K, E) and (K, E, O).
    Returns new (gamma_origin, omega_origin, gamma_child, omega_child) with the same layouts
    (omega without the member axis)."""
    go, gc = np.asarray(gamma_origin, float), np.asarray(gamma_child, float)
    so, sc, ho, hc = (np.asarray(a, float) for a in (s_origin, s_child, h_origin, h_child))
    E, O = gc.shape[0], gc.shape[1]
    ngo, wo = np.zeros_like(go), np.zeros(E)
    ngc, wc = np.zeros_like(gc), np.zeros((E, O))
    for e in range(E):
        ngo[e], wo[e], _ = update_group(go[e], so[:, e], ho[:, e], lam_origin, None, mode)
        for o in range(O):
            ngc[e, o], wc[e, o], _ = update_group(gc[e, o], sc[:, e, o], hc[:, e, o], lam_child, ngo[e, 0], mode)
    return ngo, wo, ngc, wc


def update_type_json(args_json: str) -> str:
    """JSON in, JSON out (small arrays), for the bridge."""
    import json
    a = json.loads(args_json)
    go, wo, gc, wc = update_type(a["gamma_origin"], a["gamma_child"], a["s_origin"], a["s_child"],
                                 a["h_origin"], a["h_child"], a["lambda_origin"], a["lambda_child"], a.get("mode", "clean"))
    return json.dumps({"gamma_origin": go.tolist(), "omega_origin": wo.tolist(), "gamma_child": gc.tolist(), "omega_child": wc.tolist()})
