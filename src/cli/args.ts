// Argument parsing shared by the subcommands: node's util.parseArgs in strict mode, with errors that
// name the flag, and typed accessors that validate numbers.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;

export type Values = Record<string, string | boolean | undefined>;

export function parse(argv: string[], options: Options): { values: Values; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } }, strict: true, allowPositionals: true }) as { values: Values; positionals: string[] };
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

export function intFlag(values: Record<string, unknown>, name: string, def: number, min = 0): number {
  const v = values[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min} (got '${v}')`);
  return n;
}

export function numFlag(values: Record<string, unknown>, name: string, def: number, min = -Infinity): number {
  const v = values[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min} (got '${v}')`);
  return n;
}

export function choiceFlag<T extends string>(values: Record<string, unknown>, name: string, choices: readonly T[], def: T): T {
  const v = values[name];
  if (v === undefined) return def;
  if (!choices.includes(v as T)) throw new UsageError(`--${name} must be one of ${choices.join(', ')} (got '${v}')`);
  return v as T;
}
