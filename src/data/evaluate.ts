// Loss and accuracy of a classifier over a whole split, batch by batch (no gradients).
import { tf } from '../engine/index.js';
import { batches, type BatchOptions } from './batches.js';
import type { Split } from './types.js';

/** Mean cross-entropy and accuracy of `logitsOf` over `split`; NaN for an empty split. */
export function evaluateSplit(split: Split, opts: BatchOptions, classes: number, logitsOf: (x: tf.Tensor4D) => tf.Tensor): { loss: number; acc: number } {
  let loss = 0, correct = 0, n = 0;
  for (const b of batches(split, opts)) {
    const [l, c] = tf.tidy(() => {
      const logits = logitsOf(b.x);
      const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(b.y, classes), logits, undefined, undefined, tf.Reduction.SUM);
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), b.y), 'int32'));
      return [ce.dataSync()[0], hits.dataSync()[0]];
    });
    loss += l; correct += c; n += b.size;
    tf.dispose([b.x, b.y]);
  }
  return { loss: n ? loss / n : NaN, acc: n ? correct / n : NaN };
}
