import test from 'ava';
import {
  fixedPointGamma, hierarchicalGamma, initialState, omegaSquared, updateGroupClean, updateGroupFaithful, updateType, type GroupState,
} from '../src/bayes/update.js';
import { seededRandom } from '../src/space/params.js';

const o = { lambdaOrigin: 0.01, lambdaChild: 0.01 };
const group = (gamma: number[], omega = 1): GroupState => ({ gamma, omega, C: gamma.map(() => [0]) });

test('closed forms: 1/γ − C/γ² = h/(1+γh) with C = (1/γ + h)⁻¹; ω² = 1/(γ + λ/h) (spec §10.12)', (t) => {
  const r = seededRandom(1);
  for (let i = 0; i < 200; i++) {
    const g = r() * 5 + 1e-3, h = r() * 10, lambda = r() * 0.1 + 1e-4;
    const hl = h / lambda, C = 1 / (1 / g + hl);
    t.true(Math.abs((1 / g - C / (g * g)) - hl / (1 + g * hl)) <= 1e-9 * Math.max(1, hl));
    t.true(Math.abs(omegaSquared(g, h, lambda) - 1 / (g + lambda / h)) <= 1e-9 * omegaSquared(g, h, lambda) + 1e-15);
  }
});

test('group form: ω_g² = Σ_k (h_k/λ)/(1 + γ h_k/λ), γ = ||s||₂/ω, bounds 0 < C ≤ γ and ω² ≤ K/γ (spec §10.9, §10.12)', (t) => {
  const s = [0.5, -1.2, 0.3], H = [2, 0.5, 7], lambda = 0.05, gamma = 0.8;
  const g = updateGroupClean(group([gamma, gamma, gamma]), s, H, lambda, undefined, o);
  const w2 = H.reduce((a, h) => a + (h / lambda) / (1 + gamma * h / lambda), 0);
  t.true(Math.abs(g.omega ** 2 - w2) < 1e-9 * w2);
  t.true(Math.abs(g.gamma[0] - Math.hypot(...s) / Math.sqrt(w2)) < 1e-12);
  t.true(g.C.every(([c]) => c > 0 && c <= gamma));
  t.true(g.omega ** 2 <= 3 / gamma);
  t.true(g.gamma.every((v) => v === g.gamma[0]), 'one γ per group');
});

test('fixed point: the origin iteration converges monotonically to (s² + sqrt(s⁴ + 4s²λ/h))/2 (spec §10.13)', (t) => {
  const r = seededRandom(2);
  for (let i = 0; i < 300; i++) {
    const s = (r() - 0.5) * 4, h = r() * 20 + 1e-3, lambda = r() * 0.1 + 1e-4;
    let g = group([r() * 3]);
    const seq = [g.gamma[0]];
    for (let it = 0; it < 400; it++) { g = updateGroupClean(g, [s], [h], lambda, undefined, o); seq.push(g.gamma[0]); }
    const star = fixedPointGamma(s, h, lambda);
    t.true(Math.abs(seq.at(-1)! - star) <= 1e-9 * Math.max(star, 1e-12), `γ=${seq.at(-1)} γ*=${star}`);
    const up = seq[1] >= seq[0];
    t.true(seq.slice(1).every((v, k) => (up ? v >= seq[k] - 1e-15 : v <= seq[k] + 1e-15)), 'monotone');
  }
  t.is(updateGroupClean(group([1]), [0], [3], 0.01, undefined, o).gamma[0], 0, 's = 0 gives γ = 0');
  const silent = updateGroupClean(group([1]), [0.4], [0], 0.01, undefined, o);
  t.true(Number.isFinite(silent.gamma[0]) && silent.gamma[0] > 1e3, 'h = 0 is guarded: ω floored, γ large but finite');
});

test('hierarchy: (1/γ_c + 1/γ_o)⁻¹ is symmetric, ≤ min, increasing, → 0 with γ_o; a child settles below min(γ*, γ_o) (spec §10.14)', (t) => {
  const r = seededRandom(3);
  for (let i = 0; i < 200; i++) {
    const a = r() * 5 + 1e-6, b = r() * 5 + 1e-6;
    const e = hierarchicalGamma(a, b);
    t.is(e, hierarchicalGamma(b, a));
    t.true(e <= Math.min(a, b));
    t.true(hierarchicalGamma(a * 1.1, b) > e);
    t.true(hierarchicalGamma(a, 1e-9) < 1e-8);
  }
  let c = group([1]);
  const go = 0.3, s = 0.9, h = 4, lambda = 0.02;
  for (let it = 0; it < 500; it++) c = updateGroupClean(c, [s], [h], lambda, go, o);
  t.true(c.gamma[0] < Math.min(fixedPointGamma(s, h, lambda), go));
});

test('faithful mode reproduces the official update on a hand-computed 2-cell example (spec §10.15)', (t) => {
  // γ per cell (0.2, 0.6), raw H (3, 5), λ = 0.5, s = (0.4, -0.7)
  const g = updateGroupFaithful(group([0.2, 0.6]), [0.4, -0.7], [3, 5], 0.5, undefined, o);
  const h = [6, 10];
  const C = [[1 / (5 + 6), 1 / (5 + 10)], [1 / (1 / 0.6 + 6), 1 / (1 / 0.6 + 10)]];
  const gk = 0.6;
  let sum = 0;
  for (const row of C) for (const c of row) sum += Math.abs(1 / gk - c / (gk * gk));
  t.deepEqual(g.C.map((r) => r.map((v) => +v.toFixed(12))), C.map((r) => r.map((v) => +v.toFixed(12))));
  t.true(Math.abs(g.omega - Math.sqrt(sum)) < 1e-12);
  const gt = Math.hypot(0.4, -0.7) / Math.sqrt(sum);
  t.deepEqual(g.gamma, [gt, gt], 'the same scalar written to every cell');
  void h;
  const child = updateGroupFaithful(group([0.2, 0.6]), [1, 1], [3, 5], 0.5, gt, o);
  const raw = Math.SQRT2 / Math.sqrt(sum);
  t.true(Math.abs(child.gamma[0] - 1 / (1 / raw + 1 / gt)) < 1e-12);
});

test('updateType: origins first, children combined with the new origin γ; initial states', (t) => {
  const st = initialState({ normal: 2, reduce: 1 }, { normal: 3, reduce: 3 }, 2, 'clean');
  t.deepEqual(st.normal.origin[0].gamma, [1, 1]);
  const x = {
    origin: [[1, 0.5, 0], [0.8, 0.4, 0]], child: [[[1, 0.2], [0.5, 0.5], [0.1, 0.1]], [[0.9, 0.1], [0.4, 0.6], [0.1, 0.2]]],
    hOrigin: [[1, 2, 3], [1, 2, 3]], hChild: [[[1, 1], [2, 2], [3, 3]], [[1, 1], [2, 2], [3, 3]]],
  };
  const next = updateType(st.normal, x, o);
  t.is(next.origin[2].gamma[0], 0, 'an origin at zero in every cell is pruned');
  t.true(next.child[2].every((g) => g.gamma[0] === 0), 'zero-op priority: its children follow (spec §10.18)');
  t.true(next.child[0][0].gamma[0] <= next.origin[0].gamma[0]);
  const f = initialState({ normal: 2, reduce: 1 }, { normal: 1, reduce: 1 }, 1, 'faithful', seededRandom(4));
  t.true(f.normal.origin[0].gamma[0] !== f.normal.origin[0].gamma[1], 'faithful: per-cell initial γ');
});
