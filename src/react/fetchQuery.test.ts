import { describe, expect, it, vi } from "vitest";
import { makeFunctionReference as ref } from "../server/api.js";
import { isWalkinError } from "../values/errors.js";
import { fetchQuery, preloadQuery } from "./index.js";

function stubFetch(status: number, body: unknown) {
  return vi.fn(async (_url: string | URL | Request, _init?: RequestInit) => new Response(JSON.stringify(body), { status }));
}

describe("fetchQuery", () => {
  it("posts the path and encoded args, and decodes the value", async () => {
    const fetch = stubFetch(200, { status: "success", value: { n: { $integer: "AgAAAAAAAAA=" }, list: [1, "a"] } });
    const value = await fetchQuery(ref<"query">("counters:get"), { big: 1n }, { url: "ws://localhost:1234/", fetch });
    expect(value).toEqual({ n: 2n, list: [1, "a"] });
    const [url, init] = fetch.mock.calls[0]!;
    expect(url).toBe("http://localhost:1234/api/query");
    expect(init?.method).toBe("POST");
    expect(JSON.parse(init?.body as string)).toEqual({ path: "counters:get", args: { big: { $integer: "AQAAAAAAAAA=" } }, format: "json" });
  });

  it("throws the query's error as a WalkinError with code and data", async () => {
    const fetch = stubFetch(200, { status: "error", code: "APPLICATION", message: "nope", data: { why: "x" } });
    const error = await fetchQuery(ref<"query">("counters:get"), {}, { url: "http://h", fetch }).catch((e: unknown) => e);
    expect(isWalkinError(error)).toBe(true);
    expect(error).toMatchObject({ code: "APPLICATION", message: "nope", data: { why: "x" } });
  });

  it("explains a missing url, an unreachable server and a non-JSON answer", async () => {
    await expect(fetchQuery(ref<"query">("a:b"), {}, {} as { url: string })).rejects.toThrow(/Did you forget to pass \{ url/);
    const unreachable = vi.fn(async () => {
      throw new TypeError("fetch failed");
    });
    await expect(fetchQuery(ref<"query">("a:b"), {}, { url: "http://h", fetch: unreachable })).rejects.toMatchObject({ code: "DISCONNECTED" });
    const html = vi.fn(async () => new Response("<html>", { status: 502 }));
    await expect(fetchQuery(ref<"query">("a:b"), {}, { url: "http://h", fetch: html })).rejects.toThrow(/502 without a JSON body/);
  });
});

describe("preloadQuery", () => {
  it("returns strings only, so it survives JSON serialization", async () => {
    const fetch = stubFetch(200, { status: "success", value: { $integer: "AQAAAAAAAAA=" } });
    const preloaded = await preloadQuery(ref<"query">("counters:get"), { name: "a" }, { url: "http://h", fetch });
    expect(JSON.parse(JSON.stringify(preloaded))).toEqual({
      _name: "counters:get",
      _argsJSON: '{"name":"a"}',
      _valueJSON: '{"$integer":"AQAAAAAAAAA="}',
    });
  });
});
