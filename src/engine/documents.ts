/**
 * Documents as the engine handles them: decoded values with system fields, their encoded
 * form in storage, and the index keys they produce.
 */
import { encodeIndexKey } from "../values/indexKey.js";
import { decodeValueFromString, encodeValueToString } from "../values/json.js";
import type { Value } from "../values/index.js";
import type { IndexInfo } from "./catalog.js";

export interface Doc {
  _id: string;
  _creationTime: number;
  [field: string]: Value | undefined;
}

/**
 * A document's stored text. A document whose fields are all strings, booleans, null or numbers
 * JSON holds exactly (finite, and not -0) is already its own JSON form, so `JSON.stringify`
 * encodes it directly: the same text as `encodeValueToString`, without building the JSON form
 * as a second object first (for case (a)'s document of the engine benchmark: 540 ns against
 * 810-890, and every insert and patch encodes one). Anything else (nesting, int64, bytes,
 * NaN, -0) takes the full encoder.
 *
 * Why reading each field once to check it and once more to encode it is safe: every document
 * the engine encodes was built by the engine (`Transaction.checkUserFields` copies each field
 * into an object of its own, and the system fields are assigned), so its fields are data
 * properties that give the same value on every read, never getters.
 */
export function encodeDocument(doc: Doc): string {
  return isFlatJson(doc) ? JSON.stringify(doc) : encodeValueToString(doc as Value);
}

/** True when every field of `doc` is a string, boolean, null, absent, or a number JSON holds exactly. */
function isFlatJson(doc: Doc): boolean {
  for (const key in doc) {
    const field = doc[key];
    switch (typeof field) {
      case "string":
      case "boolean":
      case "undefined":
        continue;
      case "number":
        // NaN and the infinities have no JSON number, and JSON.stringify(-0) is "0".
        if (Number.isFinite(field) && (field !== 0 || 1 / field > 0)) continue;
        return false;
      case "object":
        if (field === null) continue;
        return false;
      default:
        return false;
    }
  }
  return true;
}

/**
 * The size a document counts against the 1 MiB limit, measured on its values as Convex measures
 * documents (https://docs.convex.dev/database/types): strings as UTF-8, bytes by their length,
 * numbers as 8 bytes, plus a little per value and field name. Not the stored JSON's length, in
 * which bytes are base64 (4/3 as large) and `"`, `\` and control characters are escaped (2 to
 * 6 bytes each), so documents well under the limit would be refused.
 */
export function documentSize(value: Value | undefined): number {
  switch (typeof value) {
    case "undefined":
      return 0;
    case "boolean":
      return 1;
    case "number":
    case "bigint":
      return 9;
    case "string":
      return Buffer.byteLength(value) + 2;
    default: {
      if (value === null) return 1;
      if (value instanceof ArrayBuffer) return value.byteLength + 2;
      let size = 2;
      if (Array.isArray(value)) {
        for (const element of value) size += documentSize(element);
        return size;
      }
      for (const key of Object.keys(value)) {
        const field = value[key];
        if (field !== undefined) size += key.length + 1 + documentSize(field);
      }
      return size;
    }
  }
}

/**
 * Decodes a stored document. Bodies were encoded by the engine from checked values, and a body
 * with no `"$` anywhere holds no special object (`$integer`, `$float`, `$bytes`: the only keys
 * starting with `$`), so plain `JSON.parse` gives the value as is: no second walk over every
 * field on the hottest read path. Anything else takes the full decoder. (A string value
 * starting with `$` also sends the body there: slower, never wrong.)
 */
export function decodeDocument(body: string): Doc {
  return (body.includes('"$') ? decodeValueFromString(body) : JSON.parse(body)) as Doc;
}

/**
 * The value at a dotted path, or `undefined` when any step is missing or not an object. Only a
 * document's own fields count: read as a plain property, a missing field named `constructor`,
 * `toString` or `valueOf` was Object.prototype's function, so an index on such a field refused
 * every insert ("cannot index a function") and `q.field("constructor")` was not undefined.
 */
export function getFieldPath(doc: Record<string, Value | undefined>, path: string): Value | undefined {
  if (!path.includes(".")) return Object.hasOwn(doc, path) ? doc[path] : undefined;
  let current: Value | undefined = doc as Value;
  for (const step of path.split(".")) {
    if (current === null || typeof current !== "object" || Array.isArray(current) || current instanceof ArrayBuffer || !Object.hasOwn(current, step)) {
      return undefined;
    }
    current = (current as Record<string, Value | undefined>)[step];
  }
  return current;
}

export function indexKeyOf(index: IndexInfo, doc: Doc): Uint8Array {
  return encodeIndexKey(index.fields.map((field) => getFieldPath(doc, field)));
}

/** The `by_id` key of an ID: what `get(id)` records in the read set. */
export function idKey(id: string): Uint8Array {
  return encodeIndexKey([id]);
}

/**
 * The ID a `by_id` key was made from (`idKey`), or null for a key of any other shape. IDs are
 * ASCII, so the key is the string tag, the characters as bytes, and the two-byte terminator
 * (values/indexKey.ts).
 */
export function idOfByIdKey(key: Uint8Array): string | null {
  const last = key.length - 2;
  if (last < 1 || key[0] !== ID_KEY_TAG || key[last] !== 0 || key[last + 1] !== 0) return null;
  let id = "";
  for (let i = 1; i < last; i++) {
    const byte = key[i]!;
    if (byte === 0 || byte >= 0x80) return null;
    id += String.fromCharCode(byte);
  }
  return id;
}

/** The first byte of a string's index key (values/indexKey.ts, TAG_STRING). */
const ID_KEY_TAG = encodeIndexKey(["x"])[0];
