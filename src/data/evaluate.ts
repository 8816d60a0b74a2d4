// Loss and accuracy of a classifier over a whole split, batch by batch (no gradients).
import { tf } from '../engine/index.js';
import { batches, type BatchOptions } from './batches.js';
import type { Split } from './types.js';

/** Mean cross-entropy and accuracy of `logitsOf` over `split`; NaN for an empty split. */
export async function evaluateSplit(split: Split, opts: BatchOptions, classes: number, logitsOf: (x: tf.Tensor4D) => tf.Tensor): Promise<{ loss: number; acc: number }> {
  let loss = 0, correct = 0, n = 0;
  for (const b of batches(split, opts)) {
    const both = tf.tidy(() => {
      const logits = logitsOf(b.x);
      const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(b.y, classes), logits, undefined, undefined, tf.Reduction.SUM);
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), b.y), 'float32'));
      return tf.stack([ce, hits]);
    });
    tf.dispose([b.x, b.y]);
    const [l, c] = await both.data();
    both.dispose();
    loss += l; correct += c; n += b.size;
  }
  return { loss: n ? loss / n : NaN, acc: n ? correct / n : NaN };
}
