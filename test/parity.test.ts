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
