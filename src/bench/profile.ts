// Where the time of one step goes: tf.profile's per-kernel times, summed by kernel name. On the webgpu
// backend the kernel times come from GPU timestamp queries where the adapter has them (else they are
// null and only the counts are meaningful); on tensorflow and cpu they are each kernel's wall time.
import { tf } from '../engine/index.js';

export interface KernelRow { kernel: string; calls: number; ms: number | null; share: number | null }
export interface StepProfile {
  wallMs: number; kernelMs: number | null; kernels: KernelRow[]; newTensors: number;
  /** GPU programs launched (webgpu only): tf.profile counts a kernel once even when it launches several (Unpack: one slice per output) */
  launches: number | null;
}

/** Counts the webgpu backend's program launches while `f` runs (null on other backends). */
async function countLaunches<T>(f: () => Promise<T>): Promise<{ result: T; launches: number | null }> {
  const be = tf.backend() as unknown as { recordAndSubmit?: (...a: unknown[]) => unknown };
  if (tf.getBackend() !== 'webgpu' || typeof be.recordAndSubmit !== 'function') return { result: await f(), launches: null };
  const own = Object.prototype.hasOwnProperty.call(be, 'recordAndSubmit');
  const orig = be.recordAndSubmit;
  let launches = 0;
  be.recordAndSubmit = function (this: unknown, ...a: unknown[]) { launches++; return orig.apply(this, a); };
  try {
    return { result: await f(), launches };
  } finally {
    if (own) be.recordAndSubmit = orig; else delete be.recordAndSubmit;
  }
}

/** Profiles one call of `step` (which must leave no tensors behind: its returned tensor is read and disposed). */
export async function profileStep(step: () => tf.Tensor): Promise<StepProfile> {
  const t0 = performance.now();
  const { result: info, launches } = await countLaunches(() => tf.profile(async () => {
    const out = step();
    await out.data();
    out.dispose();
  }));
  const wallMs = performance.now() - t0;
  const by = new Map<string, { calls: number; ms: number | null }>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' && Number.isFinite(k.kernelTimeMs) ? k.kernelTimeMs : null;
    const row = by.get(k.name) ?? { calls: 0, ms: 0 };
    row.calls++;
    row.ms = row.ms === null || ms === null ? null : row.ms + ms;
    by.set(k.name, row);
  }
  const timed = [...by.values()].every((r) => r.ms !== null);
  const kernelMs = timed ? [...by.values()].reduce((s, r) => s + (r.ms ?? 0), 0) : null;
  const kernels = [...by.entries()].map(([kernel, r]) => ({ kernel, calls: r.calls, ms: r.ms, share: kernelMs && r.ms !== null ? r.ms / kernelMs : null }))
    .sort((a, b) => (b.ms ?? 0) - (a.ms ?? 0) || b.calls - a.calls);
  return { wallMs, kernelMs, kernels, newTensors: info.newTensors, launches };
}

/** The profile as a Markdown table of the `top` kernels by time. */
export function profileTable(p: StepProfile, top = 15): string {
  const rows = p.kernels.slice(0, top).map((k) => `| ${k.kernel} | ${k.calls} | ${k.ms === null ? '–' : k.ms.toFixed(2)} | ${k.share === null ? '–' : `${(100 * k.share).toFixed(1)}%`} |`);
  const calls = p.kernels.reduce((s, k) => s + k.calls, 0);
  return [`step wall time ${p.wallMs.toFixed(1)} ms; kernel time ${p.kernelMs === null ? 'not measured' : `${p.kernelMs.toFixed(1)} ms`}; ${calls} kernel calls${p.launches === null ? '' : `, ${p.launches} GPU program launches`}`, '',
    '| kernel | calls | ms | share |', '|---|---|---|---|', ...rows].join('\n');
}
