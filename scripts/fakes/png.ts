import { createHash } from "node:crypto";
import { deflateSync, inflateSync } from "node:zlib";

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array, crc = 0xffffffff): number {
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return crc;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, (crc32(out.subarray(4, 8 + data.length)) ^ 0xffffffff) >>> 0);
  return out;
}

/** Encodes 8-bit RGBA pixels (row-major, 4 bytes per pixel) as a PNG (colour type 6). */
export function encodePng(width: number, height: number, rgba: Uint8Array): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`invalid PNG size ${width}x${height}`);
  }
  const stride = width * 4;
  if (rgba.length !== stride * height) throw new RangeError(`expected ${stride * height} RGBA bytes, got ${rgba.length}`);

  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8); // bit depth 8, RGBA, deflate, adaptive filtering, no interlace

  // Every scanline is prefixed with filter type 0 (None).
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) raw.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);

  const parts = [SIGNATURE, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Returns the IHDR size if `bytes` starts with a PNG signature and a well-formed IHDR chunk (CRC checked). */
export function decodePngSize(bytes: Uint8Array): { width: number; height: number } | null {
  if (bytes.length < 33 || SIGNATURE.some((b, i) => bytes[i] !== b)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8) !== 13 || String.fromCharCode(...bytes.subarray(12, 16)) !== "IHDR") return null;
  if ((crc32(bytes.subarray(12, 29)) ^ 0xffffffff) >>> 0 !== view.getUint32(29)) return null;
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  return width > 0 && height > 0 ? { width, height } : null;
}

function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const f = (n: number) => {
    const k = (n + h * 12) % 12;
    return l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1));
  };
  return [f(0) * 255, f(8) * 255, f(4) * 255];
}

const smoothstep = (e0: number, e1: number, x: number) => {
  const t = Math.min(1, Math.max(0, (x - e0) / (e1 - e0)));
  return t * t * (3 - 2 * t);
};

/**
 * A deterministic "patient portrait": near-black clinical background, a pale oval face with
 * dark eye sockets. Hue, face geometry, tilt and grain all derive from sha256(prompt).
 */
export function portraitPng(prompt: string, size = 64): Uint8Array {
  const h = createHash("sha256").update(prompt).digest();
  const u = (i: number) => h[i]! / 255;

  const hue = u(0);
  const bg = hslToRgb((hue + 0.5) % 1, 0.35, 0.04 + 0.04 * u(1));
  const skin = hslToRgb(hue, 0.15 + 0.25 * u(2), 0.68 + 0.17 * u(3));
  const socket = hslToRgb((hue + 0.95) % 1, 0.5, 0.05 + 0.08 * u(4));
  const cx = 0.42 + 0.16 * u(5);
  const cy = 0.44 + 0.1 * u(6);
  const rx = 0.17 + 0.1 * u(7);
  const ry = 0.26 + 0.1 * u(8);
  const tilt = (u(9) - 0.5) * 0.5;
  const eyeR = 0.045 + 0.045 * u(10);
  const eyeDx = 0.32 + 0.15 * u(11);
  const eyeDy = -0.12 - 0.15 * u(12);
  const eyeSkew = (u(13) - 0.5) * 0.08; // one socket sits lower than the other
  const mouthW = 0.15 + 0.35 * u(14);
  const mouthY = 0.45 + 0.15 * u(15);
  const scanlines = h[16]! & 1;
  let seed = h.readUInt32LE(20) || 1;
  const noise = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0xffffffff;
  };

  const cos = Math.cos(tilt);
  const sin = Math.sin(tilt);
  const aa = 1.5 / size;
  const rgba = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const px = (x + 0.5) / size - cx;
      const py = (y + 0.5) / size - cy;
      // Face-local coordinates, normalised so the face outline is the unit circle.
      const fx = (px * cos + py * sin) / rx;
      const fy = (-px * sin + py * cos) / ry;
      const face = 1 - smoothstep(1 - aa / rx, 1 + aa / rx, Math.hypot(fx, fy));
      const eye = (side: number) => {
        const d = Math.hypot((fx - side * eyeDx) * rx, (fy - eyeDy - side * eyeSkew) * ry);
        return 1 - smoothstep(eyeR - aa, eyeR + aa, d);
      };
      const sockets = Math.max(eye(-1), eye(1));
      const mouth = (1 - smoothstep(0.02, 0.05, Math.abs(fy - mouthY) * ry)) * (1 - smoothstep(mouthW - 0.06, mouthW + 0.06, Math.abs(fx)));
      const shade = 0.75 + 0.25 * (1 - Math.min(1, Math.hypot(fx + 0.3, fy + 0.4) / 1.6)); // light from the upper left
      const vignette = 1 - 0.6 * Math.min(1, Math.hypot(px, py) * 1.6);
      const grain = 0.88 + 0.24 * noise();
      const scan = scanlines && y % 3 === 0 ? 0.8 : 1;
      const dark = Math.max(sockets, mouth * 0.8);
      const i = (y * size + x) * 4;
      for (let c = 0; c < 3; c++) {
        const faceColour = skin[c]! * shade * (1 - dark) + socket[c]! * dark;
        const v = (bg[c]! * (1 - face) + faceColour * face) * vignette * grain * scan;
        rgba[i + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
      rgba[i + 3] = 255;
    }
  }
  return encodePng(size, size, rgba);
}

/**
 * Decodes an 8-bit, non-interlaced RGB or RGBA PNG (every filter type) to RGBA,
 * or null for anything else. Enough for the fakes' own images.
 */
export function decodePngRgba(bytes: Uint8Array): { width: number; height: number; rgba: Uint8Array } | null {
  const size = decodePngSize(bytes);
  if (!size) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [depth, colorType, , , interlace] = bytes.subarray(24, 29);
  if (depth !== 8 || (colorType !== 2 && colorType !== 6) || interlace !== 0) return null;
  const idat: Uint8Array[] = [];
  for (let offset = 8; offset + 8 <= bytes.length;) {
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    if (type === "IDAT") idat.push(bytes.subarray(offset + 8, offset + 8 + length));
    if (type === "IEND") break;
    offset += 12 + length;
  }
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch {
    return null;
  }
  const { width, height } = size;
  const channels = colorType === 6 ? 4 : 3;
  const stride = width * channels;
  if (raw.length < (stride + 1) * height) return null;
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels]! : 0;
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter] ?? 0;
      pixels[y * stride + x] = (line[x]! + predictor) & 0xff;
    }
  }
  if (channels === 4) return { width, height, rgba: pixels };
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) rgba.set([pixels[i * 3]!, pixels[i * 3 + 1]!, pixels[i * 3 + 2]!, 255], i * 4);
  return { width, height, rgba };
}
