// The `bayesnas` command: dispatches to subcommands; each has --help and --json.
import { UsageError } from './args.js';

interface Command { summary: string; usage: string; run(argv: string[]): Promise<number> }

const commands: Record<string, () => Promise<Command>> = {
  doctor: () => import('./doctor.js'),
  bench: () => import('./bench.js'),
  supernet: () => import('./supernet.js'),
  hessian: () => import('./hessian.js'),
  search: () => import('./search.js'),
  derive: () => import('./derive.js'),
  genotype: () => import('./genotype.js'),
  parity: () => import('./parity.js'),
  compress: () => import('./compress.js'),
  'eval-net': () => import('./evalnet.js'),
  train: () => import('./train.js'),
};

async function help(): Promise<string> {
  const rows = await Promise.all(Object.entries(commands).map(async ([n, load]) => `  ${n.padEnd(10)} ${(await load()).summary}`));
  return `bayesnas — BayesNAS neural architecture search on TensorFlow.js, checked against PyTorch

Usage: bayesnas <command> [options]     (bayesnas <command> --help for details)

Commands:
${rows.join('\n')}

Environment:
  BAYESNAS_BACKEND=tensorflow|cpu   force a TensorFlow.js backend (default: tensorflow if built, else cpu)
  BAYESNAS_DATA_DIR=DIR             look for datasets in DIR first
  BAYESNAS_REF_PYTHON=PATH          interpreter of the PyTorch reference (default python-ref/.venv)`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await help());
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    console.error(`bayesnas: unknown command '${name}'\n\n${await help()}`);
    return 2;
  }
  try {
    return await (await load()).run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`bayesnas ${name}: ${e.message}\n(see bayesnas ${name} --help)`);
      return 2;
    }
    console.error(`bayesnas ${name}: ${(e as Error).message}`);
    if (process.env.BAYESNAS_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}
