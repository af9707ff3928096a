import { describe, expect, it } from "vitest";
import { syncUrl } from "./syncUrl.js";

describe("syncUrl", () => {
  it("maps deployment addresses to the sync endpoint", () => {
    expect(syncUrl("http://127.0.0.1:3210")).toBe("ws://127.0.0.1:3210/api/sync");
    expect(syncUrl("https://example.com/")).toBe("wss://example.com/api/sync");
    expect(syncUrl("https://example.com/app/")).toBe("wss://example.com/app/api/sync");
    expect(syncUrl("ws://localhost:1/api/sync")).toBe("ws://localhost:1/api/sync");
    expect(syncUrl("wss://h")).toBe("wss://h/api/sync");
  });

  it("explains bad addresses", () => {
    expect(() => syncUrl("127.0.0.1:3210")).toThrow(/scheme|not a URL/);
    expect(() => syncUrl("localhost")).toThrow(/not a URL/);
    expect(() => syncUrl("ftp://x")).toThrow(/http\(s\):\/\/ or ws\(s\):\/\//);
  });
});
