/**
 * The bytes an engine stores in the commit log with each commit (`Commit.log`): the commit's
 * write set, so that every engine sharing the database can check its transactions and its
 * subscriptions against commits it did not make itself.
 *
 * Layout (all integers unsigned, big-endian): a version byte, then per index
 * `u16 idLength, id (UTF-8), u32 keyCount`, then per key `u32 keyLength, key`. A version byte
 * lets a later layout coexist with rows written by this one.
 */
import type { WriteSet } from "./readSet.js";

const VERSION = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Index IDs as UTF-8, encoded once: every commit names the same few indexes. Bounded anyway
 * (cleared when full), since index IDs come and go with schema changes.
 */
const encodedIds = new Map<string, Uint8Array>();
const MAX_ENCODED_IDS = 4096;

/** Byte runs up to this long are copied in a loop; longer ones by `set`. */
const SHORT_RUN = 64;

function encodedId(id: string): Uint8Array {
  let bytes = encodedIds.get(id);
  if (bytes === undefined) {
    bytes = encoder.encode(id);
    // The layout gives an ID's length two bytes. Table and index names are far shorter.
    if (bytes.length > 0xffff) throw new RangeError(`index ID of ${bytes.length} bytes cannot be logged (at most 65535)`);
    if (encodedIds.size >= MAX_ENCODED_IDS) encodedIds.clear();
    encodedIds.set(id, bytes);
  }
  return bytes;
}

export function encodeWriteSet(writes: WriteSet): Uint8Array {
  let size = 1;
  for (const [id, keys] of writes) {
    size += 2 + encodedId(id).length + 4;
    for (const key of keys) size += 4 + key.length;
  }
  // A slice of Node's shared pool (for sizes under 4 KiB) rather than an ArrayBuffer of its
  // own: one commit's write set is some tens of bytes, and allocating an ArrayBuffer and a
  // DataView for it cost more than writing the bytes. Lengths and short byte runs are written a
  // byte at a time: `writeUInt32BE` and `set` each cost a call with checks, more than the few
  // bytes they write (a one-insert write set of three keys: 570-640 ns against 730-800).
  const bytes = Buffer.allocUnsafe(size);
  bytes[0] = VERSION;
  let at = 1;
  const put = (source: Uint8Array) => {
    const length = source.length;
    if (length > SHORT_RUN) {
      bytes.set(source, at);
      at += length;
    } else {
      for (let i = 0; i < length; i++) bytes[at++] = source[i]!;
    }
  };
  const putUint32 = (n: number) => {
    bytes[at++] = n >>> 24;
    bytes[at++] = (n >>> 16) & 0xff;
    bytes[at++] = (n >>> 8) & 0xff;
    bytes[at++] = n & 0xff;
  };
  for (const [idText, keys] of writes) {
    const id = encodedId(idText);
    bytes[at++] = id.length >>> 8;
    bytes[at++] = id.length & 0xff;
    put(id);
    putUint32(keys.length);
    for (const key of keys) {
      putUint32(key.length);
      put(key);
    }
  }
  // A plain Uint8Array over the same bytes: a Buffer's `slice` would share memory where
  // readers of the log expect a copy.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, size);
}

/** Decodes `encodeWriteSet`'s bytes; throws on anything else (a corrupt or foreign log row). */
export function decodeWriteSet(bytes: Uint8Array): WriteSet {
  if (bytes.length === 0 || bytes[0] !== VERSION) {
    throw new Error(`commit log entry has unknown format ${bytes[0] ?? "(empty)"}; was it written by a newer Walk-in?`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const writes: WriteSet = new Map();
  let at = 1;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new Error("commit log entry is truncated");
  };
  while (at < bytes.length) {
    need(2);
    const idLength = view.getUint16(at);
    need(2 + idLength + 4);
    const id = decoder.decode(bytes.subarray(at + 2, at + 2 + idLength));
    at += 2 + idLength;
    const count = view.getUint32(at);
    at += 4;
    const keys: Uint8Array[] = [];
    for (let k = 0; k < count; k++) {
      need(4);
      const length = view.getUint32(at);
      need(4 + length);
      keys.push(bytes.slice(at + 4, at + 4 + length));
      at += 4 + length;
    }
    writes.set(id, keys);
  }
  return writes;
}

/** The tables a write set touched (index IDs are `table.index`). */
export function tablesOfWriteSet(writes: WriteSet): Set<string> {
  const tables = new Set<string>();
  for (const indexId of writes.keys()) tables.add(indexId.slice(0, indexId.lastIndexOf(".")));
  return tables;
}
