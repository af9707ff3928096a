// @vitest-environment jsdom
/** Token storages: the named Web Storages, page memory, and the fallback to memory when one throws. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { openTokenStorage, type StorageLike } from "./tokenStorage.js";

afterEach(() => {
  vi.restoreAllMocks();
  localStorage.clear();
});

describe("openTokenStorage", () => {
  it("reads, writes and removes in localStorage (the default)", () => {
    const storage = openTokenStorage();
    expect(storage.kind).toBe("localStorage");
    storage.set("k", "t");
    expect(localStorage.getItem("k")).toBe("t");
    storage.remove("k");
    expect(storage.get("k")).toBe(null);
  });

  it('"memory" is shared by the page and gone on reload', () => {
    openTokenStorage("memory").set("k", "t");
    expect(openTokenStorage("memory").get("k")).toBe("t");
    expect(localStorage.getItem("k")).toBe(null);
    openTokenStorage("memory").remove("k");
  });

  it("a storage that throws falls back to memory, keeping what was written, with one warning and no token in it", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    let broken = false;
    const values = new Map<string, string>();
    const flaky: StorageLike = {
      getItem: (key) => (broken ? fail() : (values.get(key) ?? null)),
      setItem: (key, value) => (broken ? fail() : void values.set(key, value)),
      removeItem: (key) => (broken ? fail() : void values.delete(key)),
    };
    const storage = openTokenStorage(flaky);
    storage.set("k", "secret-token");
    broken = true;
    expect(storage.get("k")).toBe("secret-token");
    storage.set("k", "secret-2");
    storage.remove("v");
    expect(storage.get("k")).toBe("secret-2");
    storage.remove("k");
    expect(storage.get("k")).toBe(null);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/not usable \(quota exceeded\).*in memory/);
    expect(JSON.stringify(warn.mock.calls)).not.toMatch(/secret/);
  });

  it("a storage that cannot even be opened is memory from the start", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    vi.spyOn(window, "sessionStorage", "get").mockImplementation(() => fail());
    const storage = openTokenStorage("sessionStorage");
    storage.set("k", "t");
    expect(storage.get("k")).toBe("t");
    expect(warn).toHaveBeenCalledTimes(1);
  });
});

function fail(): never {
  throw new Error("quota exceeded");
}
