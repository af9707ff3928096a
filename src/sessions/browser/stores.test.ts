// @vitest-environment jsdom
import { afterEach, describe, expect, it, vi } from "vitest";
import { createSessionIdSource } from "./source.js";
import { cookieStore, localStorageStore, memoryStore, sessionStorageStore } from "./stores.js";

afterEach(() => {
  vi.restoreAllMocks();
  sessionStorage.clear();
  localStorage.clear();
  for (const c of document.cookie.split(";")) document.cookie = `${c.split("=")[0]!.trim()}=; Max-Age=0; Path=/`;
});

describe("stores", () => {
  it.each([
    ["sessionStorage", sessionStorageStore, () => sessionStorage.getItem("k1")],
    ["localStorage", localStorageStore, () => localStorage.getItem("k1")],
    ["cookie", (key: string) => cookieStore(key), () => /k1=([^;]+)/.exec(document.cookie)?.[1]],
  ] as const)("%s keeps the value under its key", (_name, make, raw) => {
    const store = make("k1");
    expect(store.get()).toBeUndefined();
    store.set("abc");
    expect(store.get()).toBe("abc");
    expect(raw()).toBe("abc");
    expect(make("k2").get()).toBeUndefined(); // another app's key does not clash
  });

  it("memory is shared by stores of one key in the page", () => {
    memoryStore("m").set("x");
    expect(memoryStore("m").get()).toBe("x");
    expect(memoryStore("other").get()).toBeUndefined();
  });

  it("writes the cookie with Path=/, SameSite=Lax, a long Max-Age, and Secure when asked", () => {
    const writes: string[] = [];
    const descriptor = Object.getOwnPropertyDescriptor(Document.prototype, "cookie")!;
    vi.spyOn(document, "cookie", "set").mockImplementation((value) => {
      writes.push(value);
      descriptor.set!.call(document, value.replace("; Secure", "")); // jsdom drops Secure cookies on http
    });
    cookieStore("c", { secure: true }).set("v");
    cookieStore("c").set("w");
    expect(writes[0]).toMatch(/^c=v; Path=\/; Max-Age=\d{8}; SameSite=Lax; Secure$/);
    expect(writes[1]).not.toMatch(/Secure/); // jsdom pages are http
  });

  it("falls back to memory with one warning when the storage throws", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    vi.spyOn(Storage.prototype, "setItem").mockImplementation(() => {
      throw new DOMException("quota", "QuotaExceededError");
    });
    const store = sessionStorageStore("q");
    store.set("first");
    expect(store.get()).toBe("first");
    store.set("second");
    expect(store.get()).toBe("second");
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/sessionStorage is not usable \(.*quota\).*memory/);
  });

  it("falls back when reading the storage throws (private mode, sandboxed frames)", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    vi.spyOn(Storage.prototype, "getItem").mockImplementation(() => {
      throw new DOMException("denied", "SecurityError");
    });
    const source = createSessionIdSource({ store: localStorageStore("r"), scope: "browser", channel: null });
    expect(source.current).toMatch(/^[0-9a-f-]{36}$/);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it("falls back when cookies are disabled", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    vi.spyOn(navigator, "cookieEnabled", "get").mockReturnValue(false);
    const store = cookieStore("d");
    store.set("v");
    expect(store.get()).toBe("v");
    expect(document.cookie).not.toMatch(/d=/);
    expect(warn).toHaveBeenCalledTimes(1);
  });
});
