// IDX reader (the MNIST / Fashion-MNIST file format), raw or gzip-compressed.
//
// Format: big-endian. Bytes 0-1 are zero, byte 2 is the element type (0x08 = uint8, the only one
// accepted here), byte 3 the number of dimensions d; then d uint32 sizes; then the elements, row-major.
// Images: magic 0x00000803 (N, rows, cols); labels: magic 0x00000801 (N).
// Every error names the file and the byte offset at which the data stopped making sense. For gzip files
// the offsets after the header checks are offsets in the decompressed stream (the message says so).
import fs from 'node:fs';
import zlib from 'node:zlib';

export type IdxKind = 'images' | 'labels';

export interface IdxArray {
  /** sizes of the dimensions, e.g. [60000, 28, 28] */
  dims: number[];
  /** the elements, row-major (a view into the decompressed file) */
  data: Uint8Array;
}

export interface IdxHeader {
  dims: number[];
  /** header length in bytes (4 + 4 * ndims) */
  headerBytes: number;
  /** element bytes the header announces */
  dataBytes: number;
}

const NDIMS: Record<IdxKind, number> = { images: 3, labels: 1 };
const hex = (b: ArrayLike<number>): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');

export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** Gunzips `buf` if it starts with the gzip magic; errors name the file. */
export function maybeGunzip(buf: Uint8Array, file: string): { data: Uint8Array; gzip: boolean } {
  if (!isGzip(buf)) return { data: buf, gzip: false };
  try {
    return { data: zlib.gunzipSync(buf), gzip: true };
  } catch (e) {
    const msg = (e as Error).message;
    // A stream that is merely cut short still decompresses with a sync flush: say how far it got.
    let partial: Buffer | null = null;
    try {
      partial = zlib.gunzipSync(buf, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch {
      partial = null;
    }
    if (partial) {
      throw new Error(`${file}: truncated gzip file at byte ${buf.length}: the compressed stream ends early (${msg}) `
        + `after ${partial.length} decompressed bytes; expected the rest of the stream and the 8-byte gzip trailer: download it again`);
    }
    throw new Error(`${file}: gzip data cannot be decompressed (${msg}); the ${buf.length}-byte file is corrupt: download it again`);
  }
}

/**
 * Parses and checks an IDX header. `where` is appended to offsets (e.g. " of the decompressed data").
 * Throws unless the magic is right for `kind` and the length is exactly header + data.
 */
export function parseIdxHeader(buf: Uint8Array, file: string, kind: IdxKind | null, opts: { where?: string; totalBytes?: number } = {}): IdxHeader {
  const where = opts.where ?? '';
  const total = opts.totalBytes ?? buf.length;
  const want = kind ? NDIMS[kind] : null;
  const wantMagic = want !== null ? `00 00 08 0${want}` : '00 00 08 0d';
  const what = kind ?? 'IDX';
  if (buf.length < 4) {
    throw new Error(`${file}: truncated at byte ${buf.length}${where}: expected a 4-byte IDX magic number (${wantMagic}) for ${what}`);
  }
  if (buf[0] !== 0 || buf[1] !== 0) {
    throw new Error(`${file}: bad magic number at byte 0${where}: expected ${wantMagic} (IDX ${what}), got ${hex(buf.subarray(0, 4))}: not an IDX file`);
  }
  if (buf[2] !== 0x08) {
    throw new Error(`${file}: unsupported element type 0x${buf[2]!.toString(16).padStart(2, '0')} at byte 2${where}: expected 0x08 (uint8)`);
  }
  const nd = buf[3]!;
  if (want !== null && nd !== want) {
    throw new Error(`${file}: bad magic number at byte 0${where}: expected ${wantMagic} (IDX ${what}, ${want} dimension${want > 1 ? 's' : ''}), got ${hex(buf.subarray(0, 4))} (${nd} dimensions)`);
  }
  if (nd === 0) throw new Error(`${file}: byte 3${where} says 0 dimensions: expected at least 1`);
  const headerBytes = 4 + 4 * nd;
  if (buf.length < headerBytes) {
    throw new Error(`${file}: truncated at byte ${buf.length}${where}: expected a ${headerBytes}-byte header (${nd} dimension sizes after the 4-byte magic)`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, headerBytes);
  const dims: number[] = [];
  let dataBytes = 1;
  for (let i = 0; i < nd; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    if (i > 0 && d === 0) throw new Error(`${file}: dimension ${i} at byte ${4 + 4 * i}${where} is 0: expected a positive size`);
    dims.push(d);
    dataBytes *= d;
  }
  if (dataBytes > 2 ** 31) throw new Error(`${file}: header${where} announces ${dims.join('x')} = ${dataBytes} bytes: too large`);
  const expected = headerBytes + dataBytes;
  if (total < expected) {
    throw new Error(`${file}: truncated at byte ${total}${where}: expected ${dataBytes} bytes of ${kind === 'labels' ? 'label' : kind === 'images' ? 'pixel' : 'element'} data `
      + `(${dims.join('x')}) after the ${headerBytes}-byte header, i.e. ${expected} bytes in all`);
  }
  if (total > expected) {
    throw new Error(`${file}: unexpected extra data at byte ${expected}${where}: the header announces ${dims.join('x')} elements, i.e. ${expected} bytes in all, but there are ${total} bytes`);
  }
  return { dims, headerBytes, dataBytes };
}

/** Parses an IDX buffer (already decompressed). */
export function parseIdx(buf: Uint8Array, file: string, kind: IdxKind | null = null, where = ''): IdxArray {
  const h = parseIdxHeader(buf, file, kind, { where });
  return { dims: h.dims, data: new Uint8Array(buf.buffer, buf.byteOffset + h.headerBytes, h.dataBytes) };
}

/** Reads an IDX file, raw or gzip (detected from the content, not the name). */
export function readIdxFile(file: string, kind: IdxKind | null = null): IdxArray {
  const { data, gzip } = maybeGunzip(readFile(file), file);
  return parseIdx(data, file, kind, gzip ? ' of the decompressed data' : '');
}

/** Reads an IDX3 image file: N x rows x cols uint8. */
export function readIdxImages(file: string): { images: Uint8Array; n: number; height: number; width: number } {
  const a = readIdxFile(file, 'images');
  return { images: a.data, n: a.dims[0]!, height: a.dims[1]!, width: a.dims[2]! };
}

/** Reads an IDX1 label file and checks every label is < numClasses. */
export function readIdxLabels(file: string, numClasses = 10): { labels: Uint8Array; n: number } {
  const { data, gzip } = maybeGunzip(readFile(file), file);
  const a = parseIdx(data, file, 'labels', gzip ? ' of the decompressed data' : '');
  checkLabels(a.data, numClasses, file, 8, gzip ? ' of the decompressed data' : '');
  return { labels: a.data, n: a.dims[0]! };
}

/** Throws naming the first label >= numClasses and its byte offset (`offset` = byte of label 0). */
export function checkLabels(labels: Uint8Array, numClasses: number, file: string, offset: number, where = '', stride = 1): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= numClasses) {
      throw new Error(`${file}: bad label ${labels[i]} at byte ${offset + i * stride}${where} (item ${i}): expected 0..${numClasses - 1}`);
    }
  }
}

function readFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * Cheap check of an IDX file without reading it all: parses the header (for gzip, from the first few KB
 * only) and compares the announced size with the file size (raw) or with the gzip trailer's ISIZE field
 * (the uncompressed length mod 2^32). Returns the header or throws like the full reader.
 */
export function peekIdxHeader(file: string, kind: IdxKind | null = null): IdxHeader & { gzip: boolean; fileBytes: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, 4096));
    fs.readSync(fd, head, 0, head.length, 0);
    if (!isGzip(head)) {
      return { ...parseIdxHeader(head, file, kind, { totalBytes: size }), gzip: false, fileBytes: size };
    }
    if (size < 18) throw new Error(`${file}: truncated gzip file at byte ${size}: expected at least 18 bytes (gzip header and trailer)`);
    let start: Buffer;
    try {
      start = zlib.gunzipSync(head, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (e) {
      throw new Error(`${file}: gzip data cannot be decompressed (${(e as Error).message}); the file is corrupt: download it again`);
    }
    const tail = Buffer.alloc(4);
    fs.readSync(fd, tail, 0, 4, size - 4);
    const isize = tail.readUInt32LE(0);
    // The header check needs the real total; ISIZE is mod 2^32, which is exact for any IDX file here (< 4 GiB).
    const h = parseIdxHeader(start, file, kind, { where: ' of the decompressed data', totalBytes: isize });
    return { ...h, gzip: true, fileBytes: size };
  } finally {
    fs.closeSync(fd);
  }
}
