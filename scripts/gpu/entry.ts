// Entry point of the bundle that scripts/gpu/pack.mjs builds for a machine without Node packages:
// the `bayesnas` command line, as bin/bayesnas.js runs it, without tsx.
import { main } from '../../src/cli/main.js';

process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
process.exitCode = await main(process.argv.slice(2));
