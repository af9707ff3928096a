/**
 * The wire (and storage) encoding of values: JSON, with the values JSON cannot hold written as
 * one-key objects whose key starts with "$":
 *
 * - int64 `5n`                 → `{ "$integer": base64 of 8-byte little-endian two's complement }`
 * - bytes `ArrayBuffer`        → `{ "$bytes": base64 }`
 * - NaN, ±Infinity and -0      → `{ "$float": base64 of 8-byte little-endian IEEE 754 }`
 *
 * Field names may not start with "$" (see `fieldNameProblem`), so these objects cannot be
 * confused with user data. Absent (`undefined`) fields are left out and stay absent after the
 * round trip. Encoding checks the value as it goes, in the same pass, so a bad value fails with
 * `INVALID_VALUE` and its path without a separate `checkValue` walk; decoding rejects malformed
 * input the same way. The engine stores every document with `encodeValueToString`.
 */
import { base64ToBytes, bytesToBase64 } from "./base64.js";
import { walkinError } from "./errors.js";
import {
  INT64_MAX,
  INT64_MIN,
  INT64_RANGE_PROBLEM,
  UNDEFINED_IN_ARRAY_PROBLEM,
  UNDEFINED_PROBLEM,
  ValueWalk,
  fieldNameProblem,
  isPlainObject,
  nonValueProblem,
  setField,
  type JSONValue,
  type Value,
} from "./value.js";

// One 8-byte scratch buffer for every int64 and float: no allocation per number.
const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);

/**
 * The JSON form of `value`; throws `INVALID_VALUE` (naming the path) if it is not a `Value`.
 *
 * @example
 * convertToJson({ n: 1n, x: -0, ok: true });
 * // { n: { $integer: "AQAAAAAAAAA=" }, x: { $float: "AAAAAAAAAIA=" }, ok: true }
 */
export function convertToJson(value: Value, path = "value"): JSONValue {
  const walk = new ValueWalk(path);
  if (value === undefined) walk.fail(UNDEFINED_PROBLEM);
  return toJson(value, walk);
}

function toJson(value: unknown, walk: ValueWalk): JSONValue {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      // Finite and not -0 (1/-0 is -Infinity): plain JSON holds it exactly.
      if (Number.isFinite(value) && (value !== 0 || 1 / value > 0)) return value;
      return { $float: encodeFloat64(value) };
    case "bigint":
      if (value < INT64_MIN || value > INT64_MAX) walk.fail(INT64_RANGE_PROBLEM);
      scratch.setBigInt64(0, value, true);
      return { $integer: bytesToBase64(scratchBytes) };
    case "object": {
      if (value === null) return null;
      if (value instanceof ArrayBuffer) return { $bytes: bytesToBase64(new Uint8Array(value)) };
      if (Array.isArray(value)) {
        walk.enter(value);
        const out: JSONValue[] = new Array<JSONValue>(value.length);
        for (let i = 0; i < value.length; i++) {
          const element: unknown = value[i];
          walk.keys.push(i);
          if (element === undefined) walk.fail(UNDEFINED_IN_ARRAY_PROBLEM);
          out[i] = toJson(element, walk);
          walk.keys.pop();
        }
        walk.leave();
        return out;
      }
      if (!isPlainObject(value)) walk.fail(nonValueProblem(value));
      walk.enter(value);
      const out: { [key: string]: JSONValue } = {};
      for (const key of Object.keys(value)) {
        const field: unknown = (value as Record<string, unknown>)[key];
        if (field === undefined) continue; // absent: left out, and so absent after decoding
        walk.keys.push(key);
        const problem = fieldNameProblem(key);
        if (problem !== undefined) walk.fail(problem);
        setField(out, key, toJson(field, walk));
        walk.keys.pop();
      }
      walk.leave();
      return out;
    }
    default:
      return walk.fail(nonValueProblem(value));
  }
}

function encodeFloat64(value: number): string {
  if (Number.isNaN(value)) {
    // One canonical NaN (0x7FF8000000000000), so equal values always encode equally.
    scratch.setUint32(0, 0, true);
    scratch.setUint32(4, 0x7ff80000, true);
  } else {
    scratch.setFloat64(0, value, true);
  }
  return bytesToBase64(scratchBytes);
}

/**
 * The value a JSON form stands for; throws `INVALID_VALUE` for malformed input, such as a
 * `$integer` that is not the base64 of 8 bytes, an unknown `$` key, or a bad field name.
 * The input is not modified.
 *
 * @example
 * convertFromJson({ n: { $integer: "AQAAAAAAAAA=" } }); // { n: 1n }
 */
export function convertFromJson(json: JSONValue, path = "value"): Value {
  return fromJson(json, new ValueWalk(path), false);
}

/**
 * Encodes a value as a string, for storage: `JSON.stringify(convertToJson(value))`.
 *
 * @example
 * encodeValueToString({ a: 1n }); // '{"a":{"$integer":"AQAAAAAAAAA="}}'
 */
export function encodeValueToString(value: Value): string {
  return JSON.stringify(convertToJson(value));
}

/**
 * Decodes a string made by `encodeValueToString`; throws `INVALID_VALUE` if it is not one.
 *
 * @example
 * decodeValueFromString('{"a":{"$integer":"AQAAAAAAAAA="}}'); // { a: 1n }
 */
export function decodeValueFromString(text: string): Value {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw walkinError("INVALID_VALUE", `value: not valid JSON (${(error as Error).message})`, undefined, error);
  }
  // The parsed tree is ours alone, so special objects are replaced in place instead of copied.
  return fromJson(json, new ValueWalk("value"), true);
}

function fromJson(json: unknown, walk: ValueWalk, inPlace: boolean): Value {
  switch (typeof json) {
    case "string":
    case "boolean":
    case "number":
      return json;
    case "object": {
      if (json === null) return null;
      if (Array.isArray(json)) {
        walk.enter(json);
        const out: Value[] = inPlace ? (json as Value[]) : new Array<Value>(json.length);
        for (let i = 0; i < json.length; i++) {
          walk.keys.push(i);
          out[i] = fromJson(json[i], walk, inPlace);
          walk.keys.pop();
        }
        walk.leave();
        return out;
      }
      if (!isPlainObject(json)) return walk.fail(`${nonValueProblem(json)} (in JSON input)`);
      const keys = Object.keys(json);
      if (keys.length === 1 && keys[0]!.charCodeAt(0) === 0x24) {
        return decodeSpecial(keys[0]!, (json as Record<string, unknown>)[keys[0]!], walk);
      }
      walk.enter(json);
      const source = json as Record<string, unknown>;
      const out: Record<string, Value> = inPlace ? (source as Record<string, Value>) : {};
      for (const key of keys) {
        const field = source[key];
        if (field === undefined) continue;
        walk.keys.push(key);
        const problem = fieldNameProblem(key);
        if (problem !== undefined) walk.fail(problem);
        const decoded = fromJson(field, walk, inPlace);
        if (!inPlace || decoded !== field) setField(out, key, decoded);
        walk.keys.pop();
      }
      walk.leave();
      return out;
    }
    default:
      return walk.fail(`${typeof json} is not JSON`);
  }
}

function decodeSpecial(key: string, encoded: unknown, walk: ValueWalk): Value {
  const expectedBytes = key === "$bytes" ? undefined : 8;
  if (key !== "$integer" && key !== "$float" && key !== "$bytes") {
    walk.fail(`unknown special object key ${JSON.stringify(key)}: only $integer, $float and $bytes exist`);
  }
  const bytes = typeof encoded === "string" ? base64ToBytes(encoded) : undefined;
  if (bytes === undefined || (expectedBytes !== undefined && bytes.length !== expectedBytes)) {
    const what = expectedBytes === undefined ? "a base64 string" : "the base64 of 8 bytes";
    walk.fail(`malformed {"${key}": ...}: expected ${what}`);
  }
  if (key === "$bytes") return bytes.buffer as ArrayBuffer;
  scratchBytes.set(bytes);
  return key === "$integer" ? scratch.getBigInt64(0, true) : scratch.getFloat64(0, true);
}
