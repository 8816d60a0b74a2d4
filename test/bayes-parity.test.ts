import test from 'ava';
import { initialState, updateType, type UpdateMode } from '../src/bayes/update.js';
import { seededRandom } from '../src/space/params.js';
import { closePython, pyCall, pyModule } from '../src/bridge/session.js';

test.after.always(() => closePython());

for (const mode of ['clean', 'faithful'] as UpdateMode[]) {
  test.serial(`one ${mode} γ/ω update from the same Hessians and switches agrees with python-ref to 1e-6`, async (t) => {
    const r = seededRandom(mode === 'clean' ? 5 : 6);
    const K = 3, E = 4, O = 3;
    const st = initialState({ normal: K, reduce: 1 }, { normal: E, reduce: E }, O, mode, r);
    const x = {
      origin: Array.from({ length: K }, () => Array.from({ length: E }, () => r() * 2 - 0.5)),
      child: Array.from({ length: K }, () => Array.from({ length: E }, () => Array.from({ length: O }, () => r() * 2 - 0.5))),
      hOrigin: Array.from({ length: K }, () => Array.from({ length: E }, () => r() * 3)),
      hChild: Array.from({ length: K }, () => Array.from({ length: E }, () => Array.from({ length: O }, () => r() * 3))),
    };
    const o = { lambdaOrigin: 0.05, lambdaChild: 0.02, mode };
    const ts = updateType(st.normal, x, o);
    const py = await pyModule('bayesnas_ref.bayes');
    const out = JSON.parse(String(await pyCall('bayes.update_type_json', () => py.update_type_json(JSON.stringify({
      gamma_origin: st.normal.origin.map((g) => g.gamma), gamma_child: st.normal.child.map((row) => row.map((g) => g.gamma)),
      s_origin: x.origin, s_child: x.child, h_origin: x.hOrigin, h_child: x.hChild, lambda_origin: o.lambdaOrigin, lambda_child: o.lambdaChild, mode,
    })))));
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
    let worst = 0;
    ts.origin.forEach((g, e) => { worst = Math.max(worst, rel(g.gamma[0], out.gamma_origin[e][0]), rel(g.omega, out.omega_origin[e])); });
    ts.child.forEach((row, e) => row.forEach((g, k) => { worst = Math.max(worst, rel(g.gamma[0], out.gamma_child[e][k][0]), rel(g.omega, out.omega_child[e][k])); }));
    t.true(worst <= 1e-6, `worst relative difference ${worst}`);
  });
}
