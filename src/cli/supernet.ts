export const summary = 'train a supernet on real data (supernet train --help)';
export const usage = 'bayesnas supernet train [options]';
export async function run(): Promise<number> { throw new Error('not yet available'); }
