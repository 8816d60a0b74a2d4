// Direct-loop reference implementations (PyTorch semantics, NHWC arrays) for checking the engine's ops.
export interface Arr4 { data: Float32Array; shape: [number, number, number, number] }

export function convRef(x: Arr4, w: Arr4, stride: number, pad: number, dil: number, depthwise: boolean): Arr4 {
  const [B, H, W, Ci] = x.shape;
  const [kh, kw, , m] = w.shape;
  const Co = depthwise ? Ci * m : m;
  const Ho = Math.floor((H + 2 * pad - dil * (kh - 1) - 1) / stride) + 1;
  const Wo = Math.floor((W + 2 * pad - dil * (kw - 1) - 1) / stride) + 1;
  const out = new Float32Array(B * Ho * Wo * Co);
  for (let b = 0; b < B; b++) for (let oh = 0; oh < Ho; oh++) for (let ow = 0; ow < Wo; ow++) for (let co = 0; co < Co; co++) {
    let s = 0;
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
      const ih = oh * stride + i * dil - pad, iw = ow * stride + j * dil - pad;
      if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
      if (depthwise) {
        const c = Math.floor(co / m), q = co % m;
        s += x.data[((b * H + ih) * W + iw) * Ci + c] * w.data[((i * kw + j) * Ci + c) * m + q];
      } else {
        for (let ci = 0; ci < Ci; ci++) s += x.data[((b * H + ih) * W + iw) * Ci + ci] * w.data[((i * kw + j) * Ci + ci) * Co + co];
      }
    }
    out[((b * Ho + oh) * Wo + ow) * Co + co] = s;
  }
  return { data: out, shape: [B, Ho, Wo, Co] };
}

export function poolRef(x: Arr4, k: number, stride: number, pad: number, kind: 'max' | 'avg', opts: { countIncludePad?: boolean; padValue?: number } = {}): Arr4 {
  const [B, H, W, C] = x.shape;
  const Ho = Math.floor((H + 2 * pad - k) / stride) + 1, Wo = Math.floor((W + 2 * pad - k) / stride) + 1;
  const out = new Float32Array(B * Ho * Wo * C);
  const padValue = opts.padValue ?? -Infinity;
  for (let b = 0; b < B; b++) for (let oh = 0; oh < Ho; oh++) for (let ow = 0; ow < Wo; ow++) for (let c = 0; c < C; c++) {
    let acc = kind === 'max' ? -Infinity : 0, n = 0;
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
      const ih = oh * stride + i - pad, iw = ow * stride + j - pad;
      const inside = ih >= 0 && iw >= 0 && ih < H && iw < W;
      const v = inside ? x.data[((b * H + ih) * W + iw) * C + c] : (kind === 'max' ? padValue : 0);
      if (kind === 'max') acc = Math.max(acc, v);
      else { acc += v; if (inside || opts.countIncludePad) n++; }
    }
    out[((b * Ho + oh) * Wo + ow) * C + c] = kind === 'max' ? acc : acc / n;
  }
  return { data: out, shape: [B, Ho, Wo, C] };
}
