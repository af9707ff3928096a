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

function encodedId(id: string): Uint8Array {
  let bytes = encodedIds.get(id);
  if (bytes === undefined) {
    if (encodedIds.size >= MAX_ENCODED_IDS) encodedIds.clear();
    encodedIds.set(id, (bytes = encoder.encode(id)));
  }
  return bytes;
}

export function encodeWriteSet(writes: WriteSet): Uint8Array {
  const ids = Array.from(writes.keys(), encodedId);
  let size = 1;
  let i = 0;
  for (const keys of writes.values()) {
    size += 2 + ids[i++]!.length + 4;
    for (const key of keys) size += 4 + key.length;
  }
  // A slice of Node's shared pool (for sizes under 4 KiB) rather than an ArrayBuffer of its
  // own, and Buffer's integer writes rather than a DataView over it: one commit's write set is
  // some tens of bytes, and allocating those two objects cost more than writing the bytes.
  const bytes = Buffer.allocUnsafe(size);
  let at = 0;
  bytes[at++] = VERSION;
  i = 0;
  for (const keys of writes.values()) {
    const id = ids[i++]!;
    at = bytes.writeUInt16BE(id.length, at);
    bytes.set(id, at);
    at = bytes.writeUInt32BE(keys.length, at + id.length);
    for (const key of keys) {
      at = bytes.writeUInt32BE(key.length, at);
      bytes.set(key, at);
      at += key.length;
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
