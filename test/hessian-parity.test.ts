import test from 'ava';
import { initEngine, tf } from '../src/engine/index.js';
import { buildSupernet } from '../src/space/supernet.js';
import { BAYESNAS_SPACE, DARTS_SPACE, type SpaceSpec } from '../src/space/spaces.js';
import { hessianParity } from '../src/bridge/parity.js';
import { closePython } from '../src/bridge/session.js';
import { randomTensor } from './helpers/numeric.js';

await initEngine({ quiet: true });
test.after.always(() => closePython());

const spaces: SpaceSpec[] = [{ ...DARTS_SPACE, C: 4, layers: 3 }, { ...BAYESNAS_SPACE, C: 4, layers: 3, gate: 'input' }];
for (const space of spaces) {
  for (const mode of ['per-sample', 'faithful'] as const) {
    test.serial(`${space.name} (gate ${space.gate}), ${mode}: the TypeScript switch-Hessian recursion equals python-ref's independent recursion (1e-4)`, async (t) => {
      const net = buildSupernet(space, { inChannels: 1, seed: 3 });
      const x = randomTensor([4, 8, 8, 1], 4) as tf.Tensor4D;
      const y = tf.tensor1d([0, 3, 5, 9], 'int32');
      const r = await hessianParity(net, x, y, { mode, seed: mode === 'faithful' ? 'target' : 'diagonal', scale: mode === 'faithful' ? 'batchSum' : 'mean' });
      t.true(r.recursion.n === net.params.count('switches'));
      t.true(r.recursion.relative <= 1e-4, `relative difference ${r.recursion.relative}`);
      net.dispose();
    });
  }
}
