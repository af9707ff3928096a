/** How `walkin dev` / `walkin start` decide whether to serve the dashboard, and what they print. */
import { describe, expect, it } from "vitest";
import { dashboardForServer, dashboardLine } from "./forServer.js";

describe("dashboardForServer", () => {
  it("dev: a fresh key each time, printed in the URL fragment", () => {
    const [one, two] = [dashboardForServer(true, {}), dashboardForServer(true, {})];
    if (!one.ok || !two.ok) throw new Error("expected a dashboard");
    expect(one.key).not.toBe(two.key);
    expect(one.key!.length).toBeGreaterThanOrEqual(40);
    expect(dashboardLine("http://127.0.0.1:3210", one)).toBe(`http://127.0.0.1:3210/_dashboard#key=${one.key}`);
    one.dashboard?.close();
    two.dashboard?.close();
  });

  it("start: no dashboard without WALKIN_ADMIN_KEY", () => {
    const setup = dashboardForServer(false, {});
    expect(setup).toEqual({ ok: true, dashboard: null, key: null, generated: false });
    expect(dashboardLine("http://x", setup)).toBeNull();
  });

  it("start: WALKIN_ADMIN_KEY enables it and is never printed", () => {
    const key = "k".repeat(40);
    const setup = dashboardForServer(false, { WALKIN_ADMIN_KEY: key });
    if (!setup.ok) throw new Error(setup.problem);
    expect(setup.dashboard).not.toBeNull();
    expect(dashboardLine("http://x", setup)).toBe("http://x/_dashboard (sign in with WALKIN_ADMIN_KEY)");
    setup.dashboard?.close();
  });

  it("refuses a weak key, saying how to make a good one", () => {
    expect(dashboardForServer(false, { WALKIN_ADMIN_KEY: "short" })).toEqual({ ok: false, problem: expect.stringContaining("too short (5 characters): use at least 24") });
    expect(dashboardForServer(true, { WALKIN_ADMIN_KEY: `${"k".repeat(30)} x` })).toEqual({ ok: false, problem: expect.stringContaining("whitespace") });
  });
});
