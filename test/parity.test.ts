import test from 'ava';
import { initEngine, tf } from '../src/engine/index.js';
import { buildSupernet } from '../src/space/supernet.js';
import { BAYESNAS_SPACE, DARTS_SPACE, type SpaceSpec } from '../src/space/spaces.js';
import { forwardBackwardParity } from '../src/bridge/parity.js';
import { closePython } from '../src/bridge/session.js';
import { randomTensor } from './helpers/numeric.js';

await initEngine({ quiet: true });
test.after.always(() => closePython());

const spaces: SpaceSpec[] = [
  { ...DARTS_SPACE, C: 4, layers: 3 },
  { ...BAYESNAS_SPACE, C: 4, layers: 3 },
  { ...BAYESNAS_SPACE, C: 4, layers: 3, gate: 'input' },
];

for (const space of spaces) {
  test.serial(`${space.name} supernet (gate ${space.gate}): TypeScript and PyTorch give the same logits, loss and gradients on identical weights (1e-4)`, async (t) => {
    const net = buildSupernet(space, { inChannels: 1, seed: 2 });
    const x = randomTensor([4, 8, 8, 1], 9) as tf.Tensor4D;
    const y = tf.tensor1d([1, 2, 3, 4], 'int32');
    const r = await forwardBackwardParity(net, x, y);
    const get = (q: string) => r.find((c) => c.quantity === q)!;
    for (const q of ['logits', 'loss', 'grad (all weights)', 'grad (all switches)']) t.true(get(q).relative <= 1e-4, `${q}: ${get(q).relative}`);
    // per tensor, measured against its own scale or 1% of the largest gradient (some are exactly 0
    // in exact arithmetic: a per-channel shift that the next training-mode BN removes)
    const globalMax = get('grad (all weights)').maxAbs / Math.max(get('grad (all weights)').relative, 1e-30);
    const worst = r.filter((c) => c.quantity.startsWith('grad cells') || c.quantity.startsWith('grad stem') || c.quantity.startsWith('grad classifier'))
      .map((c) => ({ q: c.quantity, e: c.maxAbs / Math.max(c.maxAbs / Math.max(c.relative, 1e-30), 1e-2 * globalMax) }))
      .sort((a, b) => b.e - a.e)[0];
    t.true(worst.e <= 1e-4, `${worst.q}: ${worst.e}`);
    net.dispose();
  });
}

test.serial('weights made by PyTorch load into the TypeScript supernet and give the same logits and gradients', async (t) => {
  const { pyModule, pyCall, exchangeDir } = await import('../src/bridge/session.js');
  const { spaceToPython } = await import('../src/bridge/parity.js');
  const space = { ...BAYESNAS_SPACE, C: 4, layers: 3 };
  const ex = exchangeDir();
  const py = await pyModule('bayesnas_ref.parity');
  await pyCall('export_fresh', () => py.export_fresh$(spaceToPython(space), ex.file('torch-init.arrow'), { in_channels: 1, seed: 11 }));
  const net = buildSupernet(space, { inChannels: 1, seed: 99 });
  net.params.load(ex.file('torch-init.arrow'));
  const { readTensorFile } = await import('../src/bridge/arrow.js');
  const rows = readTensorFile(ex.file('torch-init.arrow')).rows;
  t.is(rows.length, net.params.entries.length);
  for (const row of rows) t.deepEqual(Array.from(net.params.get(row.name).dataSync()), Array.from(row.data), row.name);
  const r = await forwardBackwardParity(net, randomTensor([4, 8, 8, 1], 12) as tf.Tensor4D, tf.tensor1d([0, 1, 2, 3], 'int32'));
  for (const q of ['logits', 'loss', 'grad (all weights)', 'grad (all switches)']) t.true(r.find((c) => c.quantity === q)!.relative <= 1e-4, q);
  ex.cleanup();
  net.dispose();
});
