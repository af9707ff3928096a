/**
 * Order-preserving binary keys for indexes: `compareBytes(encodeIndexKey(A), encodeIndexKey(B))`
 * has the sign of comparing the tuples A and B element by element with `compareValues`.
 * Storage compares keys with memcmp, so a range of values is a range of keys.
 *
 * Layout: each value is a type tag byte (tags ascend in type order) then its payload:
 * - int64: 8 bytes big-endian, sign bit flipped (negatives then sort below positives);
 * - float64: 8 bytes big-endian IEEE 754, sign bit flipped for positives and every bit flipped
 *   for negatives (so larger magnitudes sort lower), NaN made canonical so it sorts last;
 * - boolean: its own tag for false and for true, no payload; null and undefined: tag only;
 * - string: UTF-8 (lone surrogates as their 3-byte form, keeping code point order), bytes:
 *   raw; both with 0x00 written 0x00 0xFF and ended by 0x00 0x00, so a prefix sorts first;
 * - array: elements, then END; object: (key as a string value, value) pairs by key, then END.
 *   END (0x00) is below every tag, so a shorter array or object sorts first.
 *
 * Every value's encoding is self-delimiting (none is a prefix of another), and a tuple is just
 * its values' encodings concatenated, so `encodeIndexKey([x])` is a byte prefix of
 * `encodeIndexKey([x, y])`: `q.eq("a", x)` scans the prefix range of `encodeIndexKey([x])`.
 */
import { presentKeys } from "./compare.js";
import { walkinError } from "./errors.js";
import { INT64_MAX, INT64_MIN, type Value } from "./value.js";

export { compareBytes } from "./compare.js";

const END = 0x00;
const TAG_UNDEFINED = 0x08;
const TAG_NULL = 0x10;
const TAG_INT64 = 0x18;
const TAG_FLOAT64 = 0x20;
const TAG_FALSE = 0x28;
const TAG_TRUE = 0x29;
const TAG_STRING = 0x30;
const TAG_BYTES = 0x38;
const TAG_ARRAY = 0x40;
const TAG_OBJECT = 0x48;
const ESCAPED_NUL = 0xff;

// Keys are built in one reused buffer and copied out once, at their final length.
let buffer = new Uint8Array(256);
let length = 0;
const scratch = new DataView(new ArrayBuffer(8));

function reserve(bytes: number): void {
  if (length + bytes <= buffer.length) return;
  const grown = new Uint8Array(Math.max(buffer.length * 2, length + bytes));
  grown.set(buffer.subarray(0, length));
  buffer = grown;
}

/**
 * Encodes a tuple of values as a key whose byte order is the values' order.
 *
 * @example
 * const a = encodeIndexKey(["ada", 36]);
 * const b = encodeIndexKey(["ada", 40]);
 * compareBytes(a, b); // -1, as compareValues(36, 40)
 */
export function encodeIndexKey(values: readonly (Value | undefined)[]): Uint8Array {
  length = 0;
  for (const value of values) writeValue(value, 0);
  return buffer.slice(0, length);
}

function writeValue(value: Value | undefined, depth: number): void {
  reserve(9);
  switch (typeof value) {
    case "undefined":
      buffer[length++] = TAG_UNDEFINED;
      return;
    case "boolean":
      buffer[length++] = value ? TAG_TRUE : TAG_FALSE;
      return;
    case "bigint":
      if (value < INT64_MIN || value > INT64_MAX) throw walkinError("INVALID_VALUE", `cannot index ${value}n: outside int64`);
      buffer[length++] = TAG_INT64;
      scratch.setBigInt64(0, value);
      writeScratch(0x80, 0);
      return;
    case "number": {
      buffer[length++] = TAG_FLOAT64;
      if (Number.isNaN(value)) {
        // A NaN's payload and sign are arbitrary: write the one canonical NaN, above +Infinity.
        scratch.setUint32(0, 0x7ff80000);
        scratch.setUint32(4, 0);
      } else {
        scratch.setFloat64(0, value);
      }
      const negative = scratch.getUint8(0) >= 0x80;
      writeScratch(negative ? 0xff : 0x80, negative ? 0xff : 0);
      return;
    }
    case "string":
      buffer[length++] = TAG_STRING;
      writeString(value);
      return;
    case "object":
      if (value === null) {
        buffer[length++] = TAG_NULL;
      } else if (value instanceof ArrayBuffer) {
        buffer[length++] = TAG_BYTES;
        writeBytes(new Uint8Array(value));
      } else {
        // Values are at most 64 deep (checkValue); this guards against cycles in unchecked input.
        if (depth >= 64) throw walkinError("INVALID_VALUE", "cannot index a value nested deeper than 64 levels");
        if (Array.isArray(value)) {
          buffer[length++] = TAG_ARRAY;
          for (const element of value) writeValue(element, depth + 1);
        } else {
          buffer[length++] = TAG_OBJECT;
          for (const key of presentKeys(value)) {
            reserve(1);
            buffer[length++] = TAG_STRING;
            writeString(key);
            writeValue(value[key], depth + 1);
          }
        }
        reserve(1);
        buffer[length++] = END;
      }
      return;
    default:
      throw walkinError("INVALID_VALUE", `cannot index a ${typeof value}: it is not a value`);
  }
}

// Writes the 8 scratch bytes, XOR-ing the first with `firstMask` and the others with `restMask`.
function writeScratch(firstMask: number, restMask: number): void {
  buffer[length++] = scratch.getUint8(0) ^ firstMask;
  for (let i = 1; i < 8; i++) buffer[length++] = scratch.getUint8(i) ^ restMask;
}

function writeString(text: string): void {
  // At most 3 bytes per UTF-16 unit (a pair takes 4 for 2 units), plus the terminator.
  reserve(text.length * 3 + 2);
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code < 0x80) {
      buffer[length++] = code;
      if (code === 0) buffer[length++] = ESCAPED_NUL;
    } else if (code < 0x800) {
      buffer[length++] = 0xc0 | (code >> 6);
      buffer[length++] = 0x80 | (code & 0x3f);
    } else {
      const next = text.charCodeAt(i + 1);
      if (code >= 0xd800 && code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
        i++;
        buffer[length++] = 0xf0 | (code >> 18);
        buffer[length++] = 0x80 | ((code >> 12) & 0x3f);
      } else {
        // Includes lone surrogates: their 3-byte form sorts between U+D7FF and U+E000.
        buffer[length++] = 0xe0 | (code >> 12);
      }
      buffer[length++] = 0x80 | ((code >> 6) & 0x3f);
      buffer[length++] = 0x80 | (code & 0x3f);
    }
  }
  buffer[length++] = END;
  buffer[length++] = END;
}

function writeBytes(bytes: Uint8Array): void {
  reserve(bytes.length * 2 + 2);
  for (const byte of bytes) {
    buffer[length++] = byte;
    if (byte === 0) buffer[length++] = ESCAPED_NUL;
  }
  buffer[length++] = END;
  buffer[length++] = END;
}

/**
 * The smallest key greater than every key starting with `prefix`, to end a prefix range scan;
 * `null` when there is none (the prefix is empty or all 0xFF).
 *
 * @example
 * prefixSuccessor(new Uint8Array([0x30, 0x61, 0xff])); // Uint8Array [0x30, 0x62]
 */
export function prefixSuccessor(prefix: Uint8Array): Uint8Array | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] !== 0xff) {
      const successor = prefix.slice(0, i + 1);
      successor[i]! += 1;
      return successor;
    }
  }
  return null;
}

/**
 * True when `key` starts with `prefix`: the key's first values are the prefix's values.
 *
 * @example
 * hasPrefix(encodeIndexKey(["a", 1]), encodeIndexKey(["a"])); // true
 */
export function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}
