import { describe, expect, it } from "vitest";
import { walkinError } from "../values/index.js";
import { errorPayload, type ErrorReporting } from "./errors.js";

function reporting(exposeInternalErrors: boolean): ErrorReporting & { logged: string[] } {
  const logged: string[] = [];
  return { exposeInternalErrors, log: (line) => logged.push(line), debug: () => {}, logged };
}

describe("errorPayload", () => {
  // What a storage outage looks like when it reaches a client: the engine's own error, whose
  // message names the database (password already redacted) and the driver's words.
  const outage = walkinError("INTERNAL", "Storage postgres://app@db.internal:5432/prod?schema=shop: scan failed: Connection terminated unexpectedly");

  it("keeps the server's own INTERNAL errors from clients in production, and logs them", () => {
    const production = reporting(false);
    expect(errorPayload(outage, "query messages:list", production)).toEqual({ code: "INTERNAL", message: "Internal server error" });
    expect(production.logged.join("\n")).toContain("db.internal:5432");
  });

  it("shows them in dev mode", () => {
    expect(errorPayload(outage, "query messages:list", reporting(true))).toEqual({ code: "INTERNAL", message: outage.message });
  });

  it("passes an app's WalkinError intact, data included", () => {
    const thrown = walkinError("APPLICATION", "That name is taken.", { field: "name" });
    expect(errorPayload(thrown, "mutation users:rename", reporting(false))).toEqual({ code: "APPLICATION", message: "That name is taken.", data: { field: "name" } });
  });
});
