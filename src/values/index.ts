/**
 * `walkin/values`: validators (`v`) and the types they infer, the values Walk-in stores and
 * sends, their wire encoding, their total order, and the one public error class.
 *
 * @example
 * import { v, type Infer } from "walkin/values";
 * const message = v.object({ author: v.id("users"), body: v.string() });
 * type Message = Infer<typeof message>;
 */
export { v, asObjectValidator, isValidator } from "./validator.js";
export type {
  AsObjectValidator,
  FieldPaths,
  GenericValidator,
  Infer,
  LiteralValue,
  ObjectFieldPaths,
  ObjectType,
  ObjectValidatorInput,
  OptionalProperty,
  PropertyValidators,
  RecordType,
  VAny,
  VArray,
  VBoolean,
  VBytes,
  VFloat64,
  VId,
  VInt64,
  VLiteral,
  VNull,
  VObject,
  VOptional,
  VRecord,
  VString,
  VUnion,
  Validator,
  ValidatorKind,
} from "./validator.js";
export type { GenericId, Id } from "./id.js";
export { checkValue, type JSONValue, type Value } from "./value.js";
export { validate, validateResult, type ValidateOptions, type ValidateResult } from "./validate.js";
export { normalizeValue, hasNormalizer } from "./normalize.js";
export { convertFromJson, convertToJson, decodeValueFromString, encodeValueToString } from "./json.js";
export { compareValues } from "./compare.js";
export { compareBytes, encodeIndexKey, prefixSuccessor } from "./indexKey.js";
export { WalkinError, isWalkinError, walkinError, type WalkinErrorCode, type WalkinErrorOptions } from "./errors.js";
