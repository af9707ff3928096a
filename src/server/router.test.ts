import { describe, expect, it } from "vitest";
import { isWalkinError } from "../values/index.js";
import { httpAction, httpRouter, isHttpRouter } from "./router.js";

const ok = httpAction(async () => new Response("ok"));

function misuse(define: () => void): string {
  try {
    define();
  } catch (error) {
    expect(isWalkinError(error) && error.code).toBe("MISUSE");
    return (error as Error).message;
  }
  throw new Error("expected a MISUSE error");
}

describe("httpRouter", () => {
  it("matches exact paths first, then the longest prefix, per method", () => {
    const http = httpRouter();
    const exact = httpAction(async () => new Response("exact"));
    const short = httpAction(async () => new Response("short"));
    const long = httpAction(async () => new Response("long"));
    http.route({ path: "/files/special", method: "GET", handler: exact });
    http.route({ pathPrefix: "/files/", method: "GET", handler: short });
    http.route({ pathPrefix: "/files/deep/", method: "GET", handler: long });
    http.route({ path: "/hook", method: "POST", handler: ok });
    expect(http.match("GET", "/files/special")?.handler).toBe(exact);
    expect(http.match("GET", "/files/deep/x")?.handler).toBe(long);
    expect(http.match("GET", "/files/other")?.handler).toBe(short);
    expect(http.match("POST", "/files/other")).toBeNull();
    expect(http.match("GET", "/hook")).toBeNull();
    expect(http.methodsFor("/hook")).toEqual(["POST"]);
    expect(http.getRoutes()).toHaveLength(4);
    expect(isHttpRouter(http)).toBe(true);
    expect(isHttpRouter({})).toBe(false);
  });

  it("refuses bad routes when they are defined", () => {
    const http = httpRouter();
    expect(misuse(() => http.route({ path: "/api/thing", method: "GET", handler: ok }))).toMatch(/reserved/);
    expect(misuse(() => http.route({ path: "/api", method: "GET", handler: ok }))).toMatch(/reserved/);
    expect(misuse(() => http.route({ pathPrefix: "/api/", method: "GET", handler: ok }))).toMatch(/reserved/);
    expect(misuse(() => http.route({ path: "no-slash", method: "GET", handler: ok }))).toMatch(/starting with "\/"/);
    expect(misuse(() => http.route({ pathPrefix: "/files", method: "GET", handler: ok }))).toMatch(/must end with "\/"/);
    expect(misuse(() => http.route({ path: "/x", method: "FETCH" as "GET", handler: ok }))).toMatch(/method must be one of/);
    expect(misuse(() => http.route({ path: "/x", method: "GET", handler: (async () => new Response()) as never }))).toMatch(/Did you forget to wrap it/);
    expect(misuse(() => http.route({ path: "/x", pathPrefix: "/y/", method: "GET", handler: ok } as never))).toMatch(/exactly one of/);
    http.route({ path: "/x", method: "GET", handler: ok });
    expect(misuse(() => http.route({ path: "/x", method: "GET", handler: ok }))).toMatch(/already routed/);
    http.route({ path: "/x", method: "POST", handler: ok }); // another method is fine
    expect(misuse(() => httpAction("not a function" as never))).toMatch(/takes an async function/);
    expect(http.getRoutes()).toHaveLength(2);
  });

  it("calls the handler with ctx and request", async () => {
    const seen: unknown[] = [];
    const action = httpAction(async (ctx, request) => {
      seen.push(ctx, request.method);
      return new Response("done");
    });
    const response = await action.handler({ marker: true } as never, new Request("http://x/y", { method: "PUT" }));
    expect(await response.text()).toBe("done");
    expect(seen).toEqual([{ marker: true }, "PUT"]);
  });
});
