import { describe, expect, test } from "vitest";
import * as values from "./index.js";

describe("walkin/values", () => {
  test("exports the public API", () => {
    for (const name of [
      "v",
      "asObjectValidator",
      "isValidator",
      "checkValue",
      "validate",
      "validateResult",
      "convertToJson",
      "convertFromJson",
      "encodeValueToString",
      "decodeValueFromString",
      "compareValues",
      "compareBytes",
      "encodeIndexKey",
      "prefixSuccessor",
      "WalkinError",
      "isWalkinError",
      "walkinError",
    ]) {
      expect(typeof (values as Record<string, unknown>)[name], name).not.toBe("undefined");
    }
  });

  test("errors thrown by the values layer are WalkinErrors with a code", () => {
    const error = (() => {
      try {
        values.validate(values.v.string(), 1, { path: "args" });
      } catch (e) {
        return e;
      }
    })();
    expect(values.isWalkinError(error)).toBe(true);
    expect(error).toBeInstanceOf(values.WalkinError);
    expect((error as values.WalkinError).code satisfies values.WalkinErrorCode).toBe("INVALID_ARGUMENT");
  });
});
