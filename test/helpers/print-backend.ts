// Prints the selected engine as JSON; used by tests that start a fresh process with a given command line.
import { initEngine } from '../../src/engine/index.js';

console.log(JSON.stringify(await initEngine({ quiet: true })));
