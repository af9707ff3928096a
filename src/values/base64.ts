/**
 * Standard base64 (RFC 4648, with padding), for the `$integer`, `$float` and `$bytes` forms of
 * the wire encoding.
 *
 * Our own small implementation because the values layer also runs in browsers (no `Buffer`),
 * and because decoding must be strict: malformed input from the wire yields `undefined` so the
 * caller can report it, instead of being silently skipped the way `atob` skips whitespace.
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ENCODE = new Uint8Array(64);
const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) {
  ENCODE[i] = ALPHABET.charCodeAt(i);
  DECODE[ALPHABET.charCodeAt(i)] = i;
}
const PAD = 0x3d; // "="
// String.fromCharCode.apply takes its arguments on the stack: convert big outputs in chunks.
const CHUNK = 0x2000;

/**
 * @example
 * bytesToBase64(new Uint8Array([1, 2, 3])); // "AQID"
 */
export function bytesToBase64(bytes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = ENCODE[n >> 18]!;
    out[o++] = ENCODE[(n >> 12) & 63]!;
    out[o++] = ENCODE[(n >> 6) & 63]!;
    out[o++] = ENCODE[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest > 0) {
    const n = (bytes[i]! << 16) | (rest === 2 ? bytes[i + 1]! << 8 : 0);
    out[o++] = ENCODE[n >> 18]!;
    out[o++] = ENCODE[(n >> 12) & 63]!;
    out[o++] = rest === 2 ? ENCODE[(n >> 6) & 63]! : PAD;
    out[o++] = PAD;
  }
  let text = "";
  for (let start = 0; start < out.length; start += CHUNK) {
    text += String.fromCharCode.apply(null, out.subarray(start, start + CHUNK) as unknown as number[]);
  }
  return text;
}

/**
 * Decodes padded standard base64; `undefined` when `text` is not exactly that.
 *
 * @example
 * base64ToBytes("AQID"); // Uint8Array [1, 2, 3]
 * base64ToBytes("AQI");  // undefined (missing padding)
 */
export function base64ToBytes(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0) return undefined;
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const bytes = new Uint8Array((text.length / 4) * 3 - padding);
  let b = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    const c0 = sextet(text, i);
    const c1 = sextet(text, i + 1);
    const c2 = last && padding === 2 ? 0 : sextet(text, i + 2);
    const c3 = last && padding >= 1 ? 0 : sextet(text, i + 3);
    if ((c0 | c1 | c2 | c3) < 0) return undefined;
    const n = (c0 << 18) | (c1 << 12) | (c2 << 6) | c3;
    bytes[b++] = n >> 16;
    if (b < bytes.length) bytes[b++] = (n >> 8) & 255;
    if (b < bytes.length) bytes[b++] = n & 255;
  }
  return bytes;
}

function sextet(text: string, index: number): number {
  const code = text.charCodeAt(index);
  return code < 128 ? DECODE[code]! : -1;
}
