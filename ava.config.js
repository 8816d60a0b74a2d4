// ava runs the TypeScript tests through tsx; worker threads must be off (the tsx loader hook is
// not applied inside workers on Node 20). Python-backed tests share one interpreter per file.
export default {
  files: ['test/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  concurrency: 2,
  timeout: '5m',
  // the tests read tensors synchronously on the default backend, so a GPU machine must not pick
  // webgpu for them by itself; test/webgpu.test.ts forces it
  environmentVariables: { TF_CPP_MIN_LOG_LEVEL: '2', BAYESNAS_AUTO_WEBGPU: '0' },
};
