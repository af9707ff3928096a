/**
 * Document IDs: unguessable, tied to their table, checkable without a database read, and
 * roughly in creation order.
 *
 * An ID is the lowercase Crockford base32 encoding of
 *
 *     6-byte creation time (ms) | 9 random bytes | table number (varint) | 2-byte Fletcher-16 checksum
 *
 * - 72 random bits make IDs unguessable, so an ID alone never lets anyone find a document
 *   (even knowing the millisecond an ID was made, guessing one takes ~2^71 tries).
 * - The time comes first so that new documents sort after older ones: storage keeps documents
 *   and their `by_id` entries in ID order, so inserts land on the last pages of those B-trees
 *   (hot in every cache; a batch of 32 inserts shares a few pages) instead of one random page
 *   each. With fully random IDs, a table of a million documents paid a page-cache miss per
 *   insert (bench/engine case d). The cost is that an ID tells when its document was made,
 *   which `_creationTime` says anyway.
 * - The table number lets `ctx.db.get(id)` reject the ID of another table with a clear error
 *   instead of silently reading a wrong document, and lets `v.id("users")` check the table.
 * - The checksum turns a truncated or mistyped ID into "malformed ID" rather than "not found".
 *
 * IDs made before the time prefix (15 random bytes in its place) have the same length and
 * layout after it, and decode the same way. Table numbers come from the engine's catalog
 * (`catalog.ts`, kept in storage metadata) and never change.
 */
import { fillRandomBytes } from "./randomPool.js";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
/** The character code of each digit. */
const DIGITS = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));
/** Digit of each character code below 128, or -1: IDs are decoded on every `get` and `v.id` check. */
const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;
/** Creation time and random bytes together: where the table number starts. */
const PREFIX_BYTES = 15;
const TIME_BYTES = 6;
const RANDOM_BYTES = PREFIX_BYTES - TIME_BYTES;

/**
 * Where an ID is put together, and its text: one of each for the module (IDs are made one at a
 * time, synchronously). The varint of any safe integer takes at most 8 bytes.
 */
const idBytes = new Uint8Array(PREFIX_BYTES + 8 + 2);
const idText = Buffer.alloc(Math.ceil((idBytes.length * 8) / 5));

export function newDocumentId(tableNumber: number): string {
  // Milliseconds since 1970 fit 6 bytes until the year 10889. Inside a mutation Date.now() is
  // the transaction's fixed time, so one mutation's IDs share their prefix.
  let time = Math.max(0, Math.floor(Date.now()));
  for (let i = TIME_BYTES - 1; i >= 0; i--) {
    idBytes[i] = time % 256;
    time = Math.floor(time / 256);
  }
  fillRandomBytes(idBytes, TIME_BYTES, RANDOM_BYTES);
  const end = writeVarint(idBytes, PREFIX_BYTES, tableNumber);
  const sum = fletcher16(idBytes, end);
  idBytes[end] = sum >> 8;
  idBytes[end + 1] = sum & 0xff;
  return base32Encode(idBytes, end + 2);
}

/** The longest ID `tableNumberOfId` accepts, in characters. */
const MAX_ID_LENGTH = 40;
/** Where `tableNumberOfId` decodes an ID's bytes: one for the module, as `idBytes` (it runs synchronously). */
const decodedId = new Uint8Array(Math.floor((MAX_ID_LENGTH * 5) / 8));

/**
 * The table number an ID belongs to, or `null` if the string is not a well-formed ID.
 * Allocates nothing: it runs on every `db.get`, `v.id` check and ID normalized, several times
 * a call (a sign-in checks a dozen IDs), and decoding into a new array with a checksum pair
 * and a varint record beside it made four objects each time.
 */
export function tableNumberOfId(id: string): number | null {
  if (typeof id !== "string" || id.length < 28 || id.length > MAX_ID_LENGTH) return null;
  const length = base32Decode(id, decodedId);
  if (length < PREFIX_BYTES + 3) return null;
  const bodyLength = length - 2;
  const sum = fletcher16(decodedId, bodyLength);
  if (decodedId[bodyLength] !== sum >> 8 || decodedId[bodyLength + 1] !== (sum & 0xff)) return null;
  // The table number: a varint of at most 5 bytes that ends exactly where the checksum starts.
  let value = 0;
  let scale = 1;
  for (let i = PREFIX_BYTES; i < bodyLength && i < PREFIX_BYTES + 5; i++) {
    const byte = decodedId[i]!;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return i + 1 === bodyLength ? value : null;
    scale *= 128;
  }
  return null;
}

/** Writes `n` as a varint at `bytes[start]`; answers where it ends. */
function writeVarint(bytes: Uint8Array, start: number, n: number): number {
  let at = start;
  let rest = n;
  while (rest >= 0x80) {
    bytes[at++] = (rest & 0x7f) | 0x80;
    rest = Math.floor(rest / 128);
  }
  bytes[at++] = rest;
  return at;
}

/** The checksum of the first `length` bytes: its first byte in bits 8–15, its second in 0–7 (no pair to allocate). */
function fletcher16(bytes: Uint8Array, length: number): number {
  let sum1 = 0;
  let sum2 = 0;
  for (let i = 0; i < length; i++) {
    sum1 = (sum1 + bytes[i]!) % 255;
    sum2 = (sum2 + sum1) % 255;
  }
  return (sum1 << 8) | sum2;
}

/**
 * The first `length` bytes of `bytes` in base32. The digits go into a byte buffer decoded once
 * as latin1: adding characters to a string one by one built a chain of 36 partial strings per
 * ID, which every use of the ID then had to flatten.
 */
function base32Encode(bytes: Uint8Array, length: number): string {
  let n = 0;
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < length; i++) {
    buffer = (buffer << 8) | bytes[i]!;
    bits += 8;
    while (bits >= 5) {
      idText[n++] = DIGITS[(buffer >>> (bits - 5)) & 31]!;
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) idText[n++] = DIGITS[(buffer << (5 - bits)) & 31]!;
  return idText.toString("latin1", 0, n);
}

/** Decodes `text` into `out` (room for `text.length * 5 / 8` bytes); answers how many bytes, or -1 if it is not base32 as the encoder writes it. */
function base32Decode(text: string, out: Uint8Array): number {
  let n = 0;
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const digit = code < 128 ? DECODE[code]! : -1;
    if (digit < 0) return -1;
    buffer = (buffer << 5) | digit;
    bits += 5;
    if (bits >= 8) {
      out[n++] = (buffer >>> (bits - 8)) & 0xff;
      bits -= 8;
      buffer &= (1 << bits) - 1;
    }
  }
  // Leftover bits must be the zero padding the encoder wrote (fewer than 5 of them); anything
  // else is a typo or an extra character, and each ID has exactly one spelling.
  if (buffer !== 0 || bits >= 5) return -1;
  return n;
}
