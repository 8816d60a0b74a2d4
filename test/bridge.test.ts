import test from 'ava';
import fs from 'node:fs';
import { closePython, exchangeDir, pyCall, pyModule } from '../src/bridge/session.js';
import { readTensorFile, writeTensorFile } from '../src/bridge/arrow.js';
import { probePython } from '../src/bridge/python.js';
import { randomArray } from './helpers/numeric.js';

test.after.always(() => closePython());

test.serial('the reference environment has torch, pyarrow and numpy', async (t) => {
  const info = await probePython();
  t.true(info.ok, info.error ?? '');
  t.regex(info.torch ?? '', /^2\./);
});

test.serial('a real Python answers through pythonia; its exceptions arrive with the traceback', async (t) => {
  const math = await pyModule('math');
  t.is(await math.sqrt(2), Math.SQRT2);
  const np = await pyModule('numpy');
  const err = await t.throwsAsync(pyCall('reshape', async () => { const a = await np.array([1, 2]); return a.reshape(3); }));
  t.regex(err!.message, /reshape: Python raised[\s\S]*ValueError: cannot reshape array of size 2 into shape \(3,?\)/);
});

test.serial('tensors cross as Arrow IPC files: TypeScript → pyarrow → TypeScript, shapes and metadata kept', async (t) => {
  const ex = exchangeDir();
  const rows = [
    { name: 'a', group: 'weights', shape: [2, 3, 4], data: randomArray(24, 1) },
    { name: 'b', group: 'switches', shape: [5], data: randomArray(5, 2) },
  ];
  writeTensorFile(ex.file('in.arrow'), rows, { note: 'round trip' });
  const ipc = await pyModule('pyarrow.ipc');
  const table = await (await ipc.open_file(ex.file('in.arrow'))).read_all();
  t.is(await table.num_rows, 2);
  // read with pyarrow, double every value, write back with pyarrow
  const script = `
import pyarrow as pa, pyarrow.ipc as ipc, pyarrow.compute as pc
t = ipc.open_file(${JSON.stringify(ex.file('in.arrow'))}).read_all()
data = pa.array([[2 * v for v in row] for row in t.column('data').to_pylist()], pa.list_(pa.float32()))
out = pa.table({'name': t.column('name'), 'group': t.column('group'), 'shape': t.column('shape'), 'data': data}).replace_schema_metadata({**t.schema.metadata, b'by': b'python'})
with ipc.new_file(${JSON.stringify(ex.file('out.arrow'))}, out.schema) as w:
    w.write_table(out)
`;
  fs.writeFileSync(ex.file('rt.py'), script);
  const runpy = await pyModule('runpy');
  await pyCall('round trip', () => runpy.run_path(ex.file('rt.py')));
  const back = readTensorFile(ex.file('out.arrow'));
  t.is(back.metadata.by, 'python');
  t.is(back.metadata.layout, 'NHWC');
  t.deepEqual(back.rows.map((r) => [r.name, r.group, r.shape]), rows.map((r) => [r.name, r.group, r.shape]));
  back.rows.forEach((r, i) => t.deepEqual(Array.from(r.data), Array.from(rows[i].data, (v) => Math.fround(2 * v))));
  ex.cleanup();
});

test.serial('corrupt Arrow files fail with the file name', (t) => {
  const ex = exchangeDir();
  fs.writeFileSync(ex.file('bad.arrow'), 'ARROW1 but not really');
  t.throws(() => readTensorFile(ex.file('bad.arrow')), { message: new RegExp(`${ex.file('bad.arrow')}: not a readable Arrow IPC file`) });
  t.throws(() => writeTensorFile(ex.file('x.arrow'), [{ name: 'w', shape: [2, 2], data: new Float32Array(3) }]), { message: /tensor w: shape \[2,2\] has 4 elements but data has 3/ });
  ex.cleanup();
});
