// The settings of `bayesnas compress` as command-line flags, in one table: the CLI parses its flags
// from it and `--table` prints a run's configuration back through it, so a printed command
// reproduces its run.
import { GROUPINGS } from './model.js';
import { DEFAULT_COMPRESS as D, type CompressConfig } from './run.js';

/**
 * One setting. `def` undefined: optional, stored only when given (the final lr defaults to lr/10, the
 * final weight decay to the weight decay). `branch`: may be changed when a run
 * is resumed or branched.
 */
export type SettingFlag = { key: keyof CompressConfig; flag: string; branch?: boolean } & (
  | { kind: 'int' | 'num'; min: number; def?: number }
  | { kind: 'choice'; choices: readonly string[]; def?: string }
  | { kind: 'list'; min: number; def?: undefined });

/** In the order `--table` prints them (`--seed` last, never printed in the flags column). */
export const SETTING_FLAGS: SettingFlag[] = [
  { key: 'grouping', flag: 'group', kind: 'choice', choices: GROUPINGS, def: D.grouping },
  { key: 'lambda', flag: 'lambda', kind: 'num', min: 0, def: D.lambda },
  { key: 'lambdaScale', flag: 'lambda-scale', kind: 'list', min: 0 },
  { key: 'lambdaRounds', flag: 'lambda-rounds', kind: 'list', min: 0 },
  { key: 'threshold', flag: 'threshold', kind: 'num', min: 0, def: D.threshold },
  { key: 'rounds', flag: 'rounds', kind: 'int', min: 1, def: D.rounds },
  { key: 'epochs', flag: 'epochs', kind: 'int', min: 0, def: D.epochs },
  { key: 'finetuneEpochs', flag: 'finetune-epochs', kind: 'int', min: 0, def: D.finetuneEpochs },
  { key: 'finalEpochs', flag: 'final-epochs', kind: 'int', min: 0, def: D.finalEpochs, branch: true },
  { key: 'finalLr', flag: 'final-lr', kind: 'num', min: 0, branch: true },
  { key: 'finalSchedule', flag: 'final-schedule', kind: 'choice', choices: ['constant', 'cosine'], def: 'constant', branch: true },
  { key: 'weightDecay', flag: 'weight-decay', kind: 'num', min: 0, def: 0 },
  { key: 'finalWeightDecay', flag: 'final-weight-decay', kind: 'num', min: 0, branch: true },
  { key: 'val', flag: 'val', kind: 'int', min: 0, def: 0 },
  { key: 'batch', flag: 'batch', kind: 'int', min: 1, def: D.batch },
  { key: 'lr', flag: 'lr', kind: 'num', min: 0, def: D.lr },
  { key: 'optimizer', flag: 'optimizer', kind: 'choice', choices: ['sgd', 'adam'], def: D.optimizer },
  { key: 'penalty', flag: 'penalty', kind: 'choice', choices: ['prox', 'loss'], def: D.penalty },
  { key: 'hessianBatches', flag: 'hessian-batches', kind: 'int', min: 1, def: D.hessianBatches },
  { key: 'hessianBatch', flag: 'hessian-batch', kind: 'int', min: 1, def: D.hessianBatch },
  { key: 'normalize', flag: 'normalize', kind: 'choice', choices: ['unit', 'dataset'], def: 'unit' },
  { key: 'seed', flag: 'seed', kind: 'int', min: 0, def: D.seed },
];

/** Whether a stored value is what the run would get without its flag (then `--table` leaves the flag out). */
export function isImplicit(f: SettingFlag, c: CompressConfig): boolean {
  const v = c[f.key];
  if (v === undefined || v === f.def) return true;
  if (f.key === 'finalLr') return c.finalEpochs === 0 || v === c.lr / 10;
  if (f.key === 'finalSchedule') return c.finalEpochs === 0;
  if (f.key === 'finalWeightDecay') return c.finalEpochs === 0 || v === (c.weightDecay ?? 0);
  return false;
}
