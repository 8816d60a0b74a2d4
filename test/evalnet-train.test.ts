import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { readTensorFile } from '../src/bridge/arrow.js';
import { PUBLISHED } from '../src/genotype/published.js';
import { DEFAULT_RETRAIN, dropPathAt, retrain, retrainLr, type RetrainConfig } from '../src/evalnet/train.js';

await initEngine({ quiet: true });

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `bayesnas-${name}-`));

const cfg: RetrainConfig = {
  ...DEFAULT_RETRAIN, genotype: PUBLISHED.DARTS_V2.genotype, genotypeSource: 'DARTS_V2', layers: 3, channels: 4,
  dataset: 'fashion-mnist', batch: 32, epochs: 2, lr: 0.05, auxiliaryWeight: 0.4, dropPath: 0.2,
  augment: { cropPad: 2, flip: true, cutout: 8 }, trainSize: 128, testSize: 128, seed: 4,
};

test('cosine learning rate from lr to lrMin and a linear drop-path ramp, per epoch', (t) => {
  const c = { lr: 0.1, lrMin: 0.001, epochs: 4, dropPath: 0.2 };
  const close = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) < 1e-12);
  const lrs = [0, 1, 2, 3].map((e) => retrainLr(c, e));
  t.true(close(lrs, [0.1, 0.001 + 0.0495 * (1 + Math.SQRT1_2), 0.0505, 0.001 + 0.0495 * (1 - Math.SQRT1_2)]), String(lrs));
  const dps = [0, 1, 2, 3].map((e) => dropPathAt(c, e));
  t.true(close(dps, [0, 0.05, 0.1, 0.15]), String(dps));
});

test.serial('a training run writes its run folder, and a run stopped after epoch 1 resumes to the same final weights and metrics', async (t) => {
  const a = tmp('retrain-a'), b = tmp('retrain-b');
  const full = await retrain(cfg, a);
  t.is(full.epochs.length, 2);
  t.true(full.testAcc >= 0 && full.testAcc <= 1);
  t.is(full.testImages, 128);
  t.is(full.trainImages, 128);
  for (const f of ['config.json', 'metrics.jsonl', 'result.json', 'weights.arrow', 'checkpoint/params.arrow', 'checkpoint/optimizer.arrow', 'checkpoint/state.json']) t.true(fs.existsSync(path.join(a, f)), f);
  const metrics = fs.readFileSync(path.join(a, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.deepEqual(metrics.filter((m) => m.type === 'epoch').map((m) => [m.epoch, m.dropPath]), [[1, 0], [2, 0.1]]);
  const config = JSON.parse(fs.readFileSync(path.join(a, 'config.json'), 'utf8'));
  t.is(config.network.params, full.params);
  t.is(config.images.channels, 1);
  // stop after the first epoch (its checkpoint is written before the event), then resume
  await t.throwsAsync(retrain(cfg, b, { onEpochEnd: (m) => { if (m.epoch === 1) throw new Error('stop'); } }), { message: 'stop' });
  t.is(JSON.parse(fs.readFileSync(path.join(b, 'checkpoint/state.json'), 'utf8')).epochDone, 0);
  const resumed = await retrain(cfg, b, {}, true);
  t.deepEqual(resumed.epochs.map((e) => [e.trainLoss, e.testAcc, e.testLoss]), full.epochs.map((e) => [e.trainLoss, e.testAcc, e.testLoss]));
  const wa = readTensorFile(path.join(a, 'weights.arrow')).rows, wb = readTensorFile(path.join(b, 'weights.arrow')).rows;
  t.is(wa.length, wb.length);
  for (let i = 0; i < wa.length; i++) t.deepEqual(Array.from(wb[i].data), Array.from(wa[i].data), wa[i].name);
  fs.rmSync(a, { recursive: true, force: true });
  fs.rmSync(b, { recursive: true, force: true });
});

test.serial('a few epochs on Fashion-MNIST learn: test accuracy well above chance', async (t) => {
  const dir = tmp('retrain-learn');
  const r = await retrain({ ...cfg, epochs: 2, trainSize: 640, testSize: 300, auxiliaryWeight: 0, dropPath: 0, channels: 8, augment: { cropPad: 0, flip: false, cutout: 0 }, lr: 0.05 }, dir);
  t.true(r.testAcc > 0.4, `test accuracy ${r.testAcc}`);
  t.true(r.epochs[1].trainLoss < r.epochs[0].trainLoss);
  fs.rmSync(dir, { recursive: true, force: true });
});
