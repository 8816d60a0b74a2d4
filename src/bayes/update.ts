// HARD prior updates (spec §3–§5). For every group g = (cell type T, edge e, switch type t) whose
// members k are the cells of type T:
//   h_k = H_k / λ_t,  C_k = 1/(1/γ_g + h_k),  ω_g = sqrt(Σ_k h_k/(1 + γ_g h_k)),  γ̃_g = ||s_g||₂ / ω_g,
//   origin: γ_g = γ̃_g;   child: γ_g = (1/γ̃_g + 1/γ_{T,e,origin})⁻¹ with the NEW origin γ  (§5.1, 'clean').
// 'faithful' reproduces Algorithm.update of the official code (§5.2): per-cell initial γ, the K×K
// broadcast of C, ω from the γ of the last cell with |·| over K² terms, the same scalar written to
// every cell.

export type UpdateMode = 'clean' | 'faithful';

export interface GroupState {
  /** prior variance per member (clean: all equal; faithful: per cell before the first update) */
  gamma: number[];
  omega: number;
  /** posterior variance per member (faithful: row k of the K×K matrix) */
  C: number[][];
}

/** State of one cell type: [edge] origin groups and [edge][op] child groups. */
export interface TypeState { origin: GroupState[]; child: GroupState[][] }

export interface BayesState { normal: TypeState; reduce: TypeState; updates: number }

export interface UpdateOptions {
  lambdaOrigin: number;
  lambdaChild: number;
  mode?: UpdateMode;
  /** floor of ω (h = 0 carries no information: ω = 0, γ = ∞) */
  omegaMin?: number;
  /** ceiling of γ */
  gammaMax?: number;
}

export const OMEGA_MIN = 1e-12;
export const GAMMA_MAX = 1e12;

/** Initial state: γ = 1, ω = 1 (clean), or U(0,1) per cell for γ (faithful, seeded). */
export function initialState(counts: { normal: number; reduce: number }, edges: { normal: number; reduce: number }, ops: number, mode: UpdateMode, rand: () => number = Math.random): BayesState {
  const group = (K: number): GroupState => ({
    gamma: Array.from({ length: K }, () => (mode === 'faithful' ? rand() : 1)),
    omega: mode === 'faithful' ? rand() : 1,
    C: Array.from({ length: K }, () => Array(K).fill(0)),
  });
  const type = (K: number, E: number): TypeState => ({
    origin: Array.from({ length: E }, () => group(K)),
    child: Array.from({ length: E }, () => Array.from({ length: ops }, () => group(K))),
  });
  return { normal: type(counts.normal, edges.normal), reduce: type(counts.reduce, edges.reduce), updates: 0 };
}

/** Scalar closed form ω² = (h/λ)/(1 + γh/λ) = 1/(γ + λ/h) (spec §10.12). */
export function omegaSquared(gamma: number, h: number, lambda: number): number {
  const hl = h / lambda;
  return hl / (1 + gamma * hl);
}

/**
 * One clean-form update of a group: returns the new state. `s` and `H` have one entry per member;
 * `originGamma` is given for child groups (hierarchical combination), undefined for origin groups.
 */
export function updateGroupClean(g: GroupState, s: number[], H: number[], lambda: number, originGamma: number | undefined, o: UpdateOptions): GroupState {
  const gamma = g.gamma[0];
  const h = H.map((v) => Math.max(v, 0) / lambda);
  const C = h.map((hk) => 1 / (1 / gamma + hk));
  const omega = Math.max(Math.sqrt(h.reduce((a, hk) => a + hk / (1 + gamma * hk), 0)), o.omegaMin ?? OMEGA_MIN);
  const norm = Math.sqrt(s.reduce((a, v) => a + v * v, 0));
  let next = Math.min(norm / omega, o.gammaMax ?? GAMMA_MAX);
  if (originGamma !== undefined) next = next > 0 && originGamma > 0 ? 1 / (1 / next + 1 / originGamma) : 0;
  return { gamma: g.gamma.map(() => next), omega, C: C.map((c) => [c]) };
}

/** The official code's update of one group (spec §5.2 items 1–5). */
export function updateGroupFaithful(g: GroupState, s: number[], H: number[], lambda: number, originGamma: number | undefined, o: UpdateOptions): GroupState {
  const K = s.length;
  const h = H.map((v) => v / lambda);
  const C = g.gamma.map((gi) => h.map((hj) => 1 / (1 / gi + hj)));   // (K,1) + (K,) broadcast
  const gk = g.gamma[K - 1];                                         // leaked loop index k* = K−1
  let sum = 0;
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) sum += Math.abs(1 / gk - C[i][j] / (gk * gk));
  const omega = Math.max(Math.sqrt(sum), o.omegaMin ?? OMEGA_MIN);
  const norm = Math.sqrt(s.reduce((a, v) => a + v * v, 0));
  let next = Math.min(norm / omega, o.gammaMax ?? GAMMA_MAX);
  if (originGamma !== undefined) next = next > 0 && originGamma > 0 ? 1 / (1 / next + 1 / originGamma) : 0;
  return { gamma: g.gamma.map(() => next), omega, C };
}

export interface TypeInputs {
  /** switches per member cell: origin [K][E], child [K][E][O] */
  origin: number[][];
  child: number[][][];
  /** raw switch Hessians, same shapes */
  hOrigin: number[][];
  hChild: number[][][];
}

/** Updates every group of one cell type: origins first, then children with the new origin γ. */
export function updateType(st: TypeState, x: TypeInputs, o: UpdateOptions): TypeState {
  const f = (o.mode ?? 'clean') === 'faithful' ? updateGroupFaithful : updateGroupClean;
  const E = st.origin.length;
  const origin = st.origin.map((g, e) => f(g, x.origin.map((c) => c[e]), x.hOrigin.map((c) => c[e]), o.lambdaOrigin, undefined, o));
  const child = st.child.map((row, e) => row.map((g, op) => f(g, x.child.map((c) => c[e][op]), x.hChild.map((c) => c[e][op]), o.lambdaChild, origin[e].gamma[0], o)));
  void E;
  return { origin, child };
}

/** Effective γ of the hierarchy as a function (spec §10.14): (1/γ_c + 1/γ_o)⁻¹. */
export function hierarchicalGamma(gc: number, go: number): number {
  return gc > 0 && go > 0 ? 1 / (1 / gc + 1 / go) : 0;
}

/** Fixed point of the scalar clean iteration γ ← |s|·sqrt(γ + λ/h) (spec §5.4). */
export function fixedPointGamma(s: number, h: number, lambda: number): number {
  const s2 = s * s;
  return (s2 + Math.sqrt(s2 * s2 + (4 * s2 * lambda) / h)) / 2;
}
