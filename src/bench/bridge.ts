// Bridge benchmark: the cost of a pythonia round trip, and of moving a large float32 tensor
// TypeScript → Python and back, as an Arrow IPC file versus as a plain list through pythonia.
import { readTensorFile, writeTensorFile } from '../bridge/arrow.js';
import { closePython, exchangeDir, pyModule } from '../bridge/session.js';
import { median } from './engine.js';

export interface BridgeBenchOptions { calls: number; arrowMB: number; listMB: number; repeats: number }

export async function benchBridge(o: BridgeBenchOptions) {
  const py = await pyModule('bayesnas_ref.bridgebench');
  const ex = exchangeDir();
  try {
    await py.ping(1);
    const rt: number[] = [];
    for (let i = 0; i < o.calls; i++) { const t0 = performance.now(); await py.ping(i); rt.push(performance.now() - t0); }
    const n = Math.floor((o.arrowMB * 1e6) / 4), nl = Math.floor((o.listMB * 1e6) / 4);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.sin(i) * 0.5;
    const toPy: number[] = [], fromPy: number[] = [], listTo: number[] = [], listFrom: number[] = [];
    for (let r = 0; r < o.repeats; r++) {
      let t0 = performance.now();
      writeTensorFile(ex.file('a.arrow'), [{ name: 't', shape: [n], data }]);
      const got = await py.read_arrow(ex.file('a.arrow'));
      toPy.push(performance.now() - t0);
      if (Number(await got.n) !== n) throw new Error('Arrow TS→Python: wrong element count');
      t0 = performance.now();
      await py.write_arrow(ex.file('b.arrow'), n, r);
      const back = readTensorFile(ex.file('b.arrow')).rows[0].data;
      fromPy.push(performance.now() - t0);
      if (back.length !== n) throw new Error('Arrow Python→TS: wrong element count');
      const list = Array.from(data.subarray(0, nl));
      t0 = performance.now();
      await py.sum_list(list);
      listTo.push(performance.now() - t0);
      t0 = performance.now();
      const proxy = await py.make_list(nl, r);
      const arr = await proxy.valueOf();
      listFrom.push(performance.now() - t0);
      if ((arr as number[]).length !== nl) throw new Error('list Python→TS: wrong length');
    }
    const mbps = (mb: number, ms: number) => mb / (ms / 1000);
    return {
      roundTripMs: { median: median(rt), calls: o.calls },
      arrow: { MB: o.arrowMB, toPythonMs: median(toPy), fromPythonMs: median(fromPy), toPythonMBps: mbps(o.arrowMB, median(toPy)), fromPythonMBps: mbps(o.arrowMB, median(fromPy)) },
      list: { MB: o.listMB, toPythonMs: median(listTo), fromPythonMs: median(listFrom), toPythonMBps: mbps(o.listMB, median(listTo)), fromPythonMBps: mbps(o.listMB, median(listFrom)) },
      options: o,
    };
  } finally {
    ex.cleanup();
    closePython();
  }
}
