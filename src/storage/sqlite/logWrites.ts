/**
 * The `writes` column of a commit-log row: a commit's documents, index entries and receipts,
 * kept there until they are written to their own tables (`sqliteStorage.ts`, "Deferred
 * versions"). Every lone commit encodes one, so its cost is part of every insert's.
 *
 * Layout (a BLOB; integers unsigned big-endian, strings UTF-8 after their u32 byte length):
 *
 *     u8 FORMAT, f64 writtenAt,
 *     u32 n, n × (u8 flags, str id, str table, str body unless DELETED),
 *     u32 n, n × (u8 flags, str indexId, u32 length + key bytes, str docId unless DELETED),
 *     u32 n, n × (str key, str body)
 *
 * with flags FRESH (the write's `fresh` hint) and DELETED (a `null` body or docId).
 *
 * Why binary: it used to be JSON text with index keys as latin1 strings. Keys are mostly small
 * bytes (type tags, lengths), which JSON escapes six bytes each, and the document body, itself
 * JSON, was escaped again inside it: encoding took 5.4% of a one-document insert's CPU profile
 * under synchronous=NORMAL, and this layout takes 2.5%. Rows from before (TEXT) are still read,
 * so a file with versions waiting in its log opens after an upgrade (schema 7).
 */
import type { Commit, IndexWrite, Receipt, Timestamp } from "../types.js";

/** A logged commit and the time its receipts were written (what `pruneReceipts` goes by). */
export interface PendingCommit {
  commit: Commit;
  writtenAt: number;
  /** About how much memory it holds, to bound the overlay. */
  bytes: number;
}

const FORMAT = 1;
const FRESH = 1;
const DELETED = 2;

/**
 * One buffer reused by every encoding: the row is bound (and copied by SQLite) right away, so
 * a commit allocates nothing for it. A larger commit (a mutation may write 16 MiB) grows it
 * for its own encoding only: past `KEPT_BYTES` the next encoding starts from a fresh one.
 */
const INITIAL_BYTES = 16 * 1024;
const KEPT_BYTES = 256 * 1024;
let scratch = Buffer.allocUnsafe(INITIAL_BYTES);
let at = 0;

function reserve(bytes: number): void {
  if (at + bytes <= scratch.length) return;
  const grown = Buffer.allocUnsafe(Math.max(scratch.length * 2, at + bytes));
  scratch.copy(grown, 0, 0, at);
  scratch = grown;
}

function putU8(value: number): void {
  reserve(1);
  scratch[at++] = value;
}

function putU32(value: number): void {
  reserve(4);
  scratch.writeUInt32BE(value, at);
  at += 4;
}

function putString(value: string): void {
  // A UTF-16 code unit takes at most 3 bytes in UTF-8 (a surrogate pair, two units, takes 4);
  // a long string is measured instead, so as not to reserve three times a large document.
  reserve(4 + (value.length <= 4096 ? value.length * 3 : Buffer.byteLength(value, "utf8")));
  // IDs, table and index names are short and ASCII: copied here, they skip a native call.
  if (value.length <= 64) {
    let i = 0;
    for (; i < value.length; i++) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) break;
      scratch[at + 4 + i] = code;
    }
    if (i === value.length) {
      scratch.writeUInt32BE(i, at);
      at += 4 + i;
      return;
    }
  }
  const length = scratch.write(value, at + 4, "utf8");
  scratch.writeUInt32BE(length, at);
  at += 4 + length;
}

function putBytes(value: Uint8Array): void {
  reserve(4 + value.length);
  scratch.writeUInt32BE(value.length, at);
  scratch.set(value, at + 4);
  at += 4 + value.length;
}

/**
 * The `writes` of `commit`'s log row. The bytes are a view of a shared buffer, valid until the
 * next call: bind them at once (SQLite copies a bound BLOB).
 */
export function encodeWrites(commit: Commit, writtenAt: number): Uint8Array {
  at = 0;
  putU8(FORMAT);
  reserve(8);
  scratch.writeDoubleBE(writtenAt, at);
  at += 8;
  putU32(commit.documents.length);
  for (const doc of commit.documents) {
    putU8((doc.fresh === true ? FRESH : 0) | (doc.body === null ? DELETED : 0));
    putString(doc.id);
    putString(doc.table);
    if (doc.body !== null) putString(doc.body);
  }
  putU32(commit.indexes.length);
  for (const entry of commit.indexes) {
    putU8((entry.fresh === true ? FRESH : 0) | (entry.docId === null ? DELETED : 0));
    putString(entry.indexId);
    putBytes(entry.key);
    if (entry.docId !== null) putString(entry.docId);
  }
  const receipts = commit.receipts ?? [];
  putU32(receipts.length);
  for (const receipt of receipts) {
    putString(receipt.key);
    putString(receipt.body);
  }
  const bytes = scratch.subarray(0, at);
  if (scratch.length > KEPT_BYTES) scratch = Buffer.allocUnsafe(INITIAL_BYTES);
  return bytes;
}

/**
 * The commit a log row holds (its `log` bytes are not needed to write or read its versions).
 * `writes` is the row's column as read: bytes (`encodeWrites`), or text from a Walk-in before
 * schema 7. Throws, naming the commit, on bytes this code did not write.
 */
export function decodeWrites(ts: Timestamp, id: string, writes: Uint8Array | string): PendingCommit {
  if (typeof writes === "string") return decodeJsonWrites(ts, id, writes);
  const bytes = Buffer.from(writes.buffer, writes.byteOffset, writes.byteLength);
  let read = 0;
  const damaged = (what: string) => new Error(`the log row of commit ${ts} is damaged: ${what}`);
  const need = (n: number) => {
    if (read + n > bytes.length) throw damaged(`it ends ${read + n - bytes.length} bytes short`);
  };
  const u8 = () => {
    need(1);
    return bytes[read++]!;
  };
  const u32 = () => {
    need(4);
    read += 4;
    return bytes.readUInt32BE(read - 4);
  };
  const string = () => {
    const length = u32();
    need(length);
    read += length;
    return bytes.toString("utf8", read - length, read);
  };
  const key = () => {
    const length = u32();
    need(length);
    read += length;
    return new Uint8Array(bytes.subarray(read - length, read));
  };

  const format = u8();
  if (format !== FORMAT) throw damaged(`unknown format ${format} (was it written by a newer Walk-in?)`);
  need(8);
  const writtenAt = bytes.readDoubleBE(read);
  read += 8;
  const commit: Commit = { ts, id, log: new Uint8Array(0), documents: [], indexes: [], receipts: [] };
  for (let n = u32(); n > 0; n--) {
    const flags = u8();
    const docId = string();
    const table = string();
    const body = flags & DELETED ? null : string();
    commit.documents.push(flags & FRESH ? { id: docId, table, body, fresh: true } : { id: docId, table, body });
  }
  for (let n = u32(); n > 0; n--) {
    const flags = u8();
    const entry: IndexWrite = { indexId: string(), key: key(), docId: null };
    if (!(flags & DELETED)) entry.docId = string();
    if (flags & FRESH) entry.fresh = true;
    commit.indexes.push(entry);
  }
  const receipts: Receipt[] = [];
  for (let n = u32(); n > 0; n--) receipts.push({ key: string(), body: string() });
  commit.receipts = receipts;
  if (read !== bytes.length) throw damaged(`${bytes.length - read} bytes follow its last receipt`);
  return { commit, writtenAt, bytes: bytes.length };
}

/**
 * Schema 6's `writes`: JSON text, index keys as latin1 strings (one character per byte).
 *
 *     [writtenAt, [[id, table, body, fresh]...], [[indexId, key, docId, fresh]...], [[key, body]...]]
 */
type JsonWrites = [
  writtenAt: number,
  documents: Array<[string, string, string | null, 0 | 1]>,
  indexes: Array<[string, string, string | null, 0 | 1]>,
  receipts: Array<[string, string]>,
];

function decodeJsonWrites(ts: Timestamp, id: string, writes: string): PendingCommit {
  const [writtenAt, documents, indexes, receipts] = JSON.parse(writes) as JsonWrites;
  const commit: Commit = {
    ts,
    id,
    log: new Uint8Array(0),
    documents: documents.map(([docId, table, body, fresh]) => (fresh === 1 ? { id: docId, table, body, fresh: true } : { id: docId, table, body })),
    indexes: indexes.map(([indexId, key, docId, fresh]) => {
      const entry: IndexWrite = { indexId, key: new Uint8Array(Buffer.from(key, "latin1")), docId };
      if (fresh === 1) entry.fresh = true;
      return entry;
    }),
    receipts: receipts.map(([key, body]): Receipt => ({ key, body })),
  };
  return { commit, writtenAt, bytes: writes.length };
}
