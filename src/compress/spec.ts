// Model descriptions for network compression (spec §8): plain feed-forward networks of dense, conv,
// max-pool and flatten layers, as data. Presets: LeNet-300-100 and LeNet-5-Caffe; any other network
// as JSON, e.g. {"layers": [{"type": "conv", "filters": 8, "kernel": 5}, {"type": "maxpool", "size": 2},
// {"type": "flatten"}, {"type": "dense", "units": 64}, {"type": "dense", "units": 10}]}.
// Hidden dense and conv layers default to ReLU; the last layer must be a dense classifier (linear).
import fs from 'node:fs';

export type Activation = 'relu' | 'linear';

export type LayerDef =
  | { type: 'dense'; units: number; activation?: Activation }
  | { type: 'conv'; filters: number; kernel: number; stride?: number; padding?: number; activation?: Activation }
  | { type: 'maxpool'; size: number; stride?: number }
  | { type: 'flatten' };

export interface ModelSpec {
  name: string;
  /** [H, W, C] of one input; presets take it from the dataset */
  input?: [number, number, number];
  layers: LayerDef[];
}

/** The dense and conv layers of a model: the layers that hold weights (and take a λ multiplier each). */
export function weightLayerCount(spec: ModelSpec): number {
  return spec.layers.filter((l) => l.type === 'dense' || l.type === 'conv').length;
}

/** LeNet-300-100 (LeCun et al. 1998): 784-300-100-10 with ReLU. */
export const LENET_300_100: ModelSpec = {
  name: 'lenet-300-100',
  layers: [{ type: 'flatten' }, { type: 'dense', units: 300 }, { type: 'dense', units: 100 }, { type: 'dense', units: 10 }],
};

/**
 * LeNet-5-Caffe: conv 20 5x5, max-pool 2, conv 50 5x5, max-pool 2, dense 500, dense 10 (valid convs;
 * ReLU after both convs and the hidden dense layer, as the PyTorch re-implementations of the compression
 * papers use). 430,500 weights (431,080 parameters with the biases) on 28x28 inputs.
 */
export const LENET_5: ModelSpec = {
  name: 'lenet-5',
  layers: [
    { type: 'conv', filters: 20, kernel: 5 }, { type: 'maxpool', size: 2 },
    { type: 'conv', filters: 50, kernel: 5 }, { type: 'maxpool', size: 2 },
    { type: 'flatten' }, { type: 'dense', units: 500 }, { type: 'dense', units: 10 },
  ],
};

export const MODEL_PRESETS: Record<string, ModelSpec> = { 'lenet-300-100': LENET_300_100, 'lenet-5': LENET_5 };

function fail(source: string, where: string, msg: string): never {
  throw new Error(`${source}: ${where}: ${msg}`);
}

const posInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** Validates a parsed JSON model description; errors name the field. */
export function checkModelSpec(raw: unknown, source: string): ModelSpec {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail(source, '$', 'a model is an object with a "layers" array');
  const o = raw as Record<string, unknown>;
  if (!Array.isArray(o.layers) || !o.layers.length) fail(source, '$.layers', 'must be a non-empty array');
  if (o.input !== undefined && !(Array.isArray(o.input) && o.input.length === 3 && o.input.every(posInt))) fail(source, '$.input', 'must be [H, W, C] positive integers');
  const layers = (o.layers as unknown[]).map((l, i): LayerDef => {
    const at = `$.layers[${i}]`;
    if (!l || typeof l !== 'object') fail(source, at, 'must be an object');
    const d = l as Record<string, unknown>;
    const act = d.activation;
    if (act !== undefined && act !== 'relu' && act !== 'linear') fail(source, `${at}.activation`, `must be "relu" or "linear" (got ${JSON.stringify(act)})`);
    const check = (k: string, optional = false) => {
      if (d[k] === undefined && optional) return;
      if (!posInt(d[k])) fail(source, `${at}.${k}`, `must be a positive integer (got ${JSON.stringify(d[k])})`);
    };
    switch (d.type) {
      case 'dense': check('units'); return { type: 'dense', units: d.units as number, ...(act ? { activation: act as Activation } : {}) };
      case 'conv':
        check('filters'); check('kernel'); check('stride', true);
        if (d.padding !== undefined && !(Number.isInteger(d.padding) && (d.padding as number) >= 0)) fail(source, `${at}.padding`, 'must be an integer >= 0');
        return { type: 'conv', filters: d.filters as number, kernel: d.kernel as number, stride: (d.stride as number) ?? 1, padding: (d.padding as number) ?? 0, ...(act ? { activation: act as Activation } : {}) };
      case 'maxpool': check('size'); check('stride', true); return { type: 'maxpool', size: d.size as number, stride: (d.stride as number) ?? (d.size as number) };
      case 'flatten': return { type: 'flatten' };
      default: fail(source, `${at}.type`, `must be dense, conv, maxpool or flatten (got ${JSON.stringify(d.type)})`);
    }
  });
  if (layers[layers.length - 1].type !== 'dense') fail(source, '$.layers', 'the last layer must be a dense classifier');
  return { name: typeof o.name === 'string' ? o.name : 'custom', ...(o.input ? { input: o.input as [number, number, number] } : {}), layers };
}

/** A preset name or a JSON file. */
export function loadModelSpec(nameOrFile: string): ModelSpec {
  const preset = MODEL_PRESETS[nameOrFile];
  if (preset) return structuredClone(preset);
  if (!fs.existsSync(nameOrFile)) throw new Error(`--model: '${nameOrFile}' is neither a preset (${Object.keys(MODEL_PRESETS).join(', ')}) nor a file`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(nameOrFile, 'utf8'));
  } catch (e) {
    throw new Error(`${nameOrFile}: not valid JSON (${(e as Error).message})`);
  }
  return checkModelSpec(raw, nameOrFile);
}
