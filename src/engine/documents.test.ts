/**
 * How documents are stored (documents.ts): a flat document is encoded by `JSON.stringify`
 * directly, and must come out as exactly the text the full encoder writes, so that bodies
 * stored before and after that shortcut compare, hash and decode alike.
 */
import { describe, expect, it } from "vitest";
import { decodeValueFromString, encodeValueToString, type Value } from "../values/index.js";
import { decodeDocument, encodeDocument, type Doc } from "./documents.js";

const system = { _id: "k57a2mq9w8x4v6c3b1n0p5r7t2y9z4h8", _creationTime: 1764800000000.25 };

describe("encodeDocument", () => {
  const documents: Record<string, Doc> = {
    "flat, every plain type": { ...system, text: "héllo \"quoted\" \\ \n \u2028 😀", n: -12.5, big: 2 ** 60, tiny: 5e-324, yes: true, no: false, none: null },
    "flat, with absent fields": { ...system, kept: 1, gone: undefined },
    "a field named __proto__": JSON.parse(`{"_id":"${system._id}","_creationTime":1,"__proto__":"own field"}`) as Doc,
    "numeric field names, which objects order first": { ...system, b: 1, 10: "ten", 2: "two" },
    "-0": { ...system, n: -0 },
    NaN: { ...system, n: Number.NaN },
    Infinity: { ...system, n: Number.POSITIVE_INFINITY, m: Number.NEGATIVE_INFINITY },
    int64: { ...system, n: 5n },
    bytes: { ...system, data: new Uint8Array([1, 2, 3]).buffer },
    nested: { ...system, tags: ["a", "b"], address: { city: "Oslo", zip: null } },
  };

  for (const [name, doc] of Object.entries(documents)) {
    it(`writes the full encoder's text: ${name}`, () => {
      expect(encodeDocument(doc)).toBe(encodeValueToString(doc as Value));
    });
  }

  it("keeps the values JSON numbers cannot hold through a store and a read", () => {
    const doc: Doc = { ...system, negativeZero: -0, nan: Number.NaN, inf: Number.POSITIVE_INFINITY };
    const read = decodeDocument(encodeDocument(doc));
    expect(Object.is(read.negativeZero, -0)).toBe(true);
    expect(read.nan).toBeNaN();
    expect(read.inf).toBe(Number.POSITIVE_INFINITY);
  });

  it("writes a flat document that decodes to itself by plain JSON", () => {
    const doc: Doc = { ...system, text: "a", n: 3, ok: true, none: null };
    const body = encodeDocument(doc);
    expect(JSON.parse(body)).toEqual(doc);
    expect(decodeValueFromString(body)).toEqual(doc);
  });
});
