// Progress bars with ETA on stderr (cli-progress); silent when --json is given or stderr is not a TTY
// and BAYESNAS_PROGRESS is not set, in which case a line per `every` steps is logged instead.
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

export function progress(label: string, total: number, opts: { quiet?: boolean; fields?: string[] } = {}): Progress {
  if (opts.quiet) return { update() {}, stop() {} };
  const fields = opts.fields ?? [];
  if (!process.stderr.isTTY && !process.env.BAYESNAS_PROGRESS) {
    const t0 = Date.now();
    let last = 0;
    return {
      update(done, f = {}) {
        const now = Date.now();
        if (done < total && now - last < 5000) return;
        last = now;
        const el = (now - t0) / 1000, eta = done ? (el / done) * (total - done) : 0;
        const extra = fields.map((k) => `${k} ${f[k] ?? '-'}`).join(' | ');
        process.stderr.write(`${label} ${done}/${total} | ${extra} | ${el.toFixed(0)}s elapsed, ETA ${eta.toFixed(0)}s\n`);
      },
      stop() {},
    };
  }
  const format = `${label} [{bar}] {value}/{total} | ${fields.map((k) => `${k} {${k}}`).join(' | ')} | ETA {eta_formatted}`;
  const bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true, etaBuffer: 20, clearOnComplete: false }, cliProgress.Presets.shades_classic);
  bar.start(total, 0, Object.fromEntries(fields.map((k) => [k, '-'])));
  return { update: (done, f) => bar.update(done, f), stop: () => bar.stop() };
}
