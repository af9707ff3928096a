import { describe, expect, it } from "vitest";
import { walkinTest } from "walkin/testing";
import { api } from "./_generated/api.js";
import schema from "./schema.js";
import * as messages from "./messages.js";
import * as users from "./users.js";

const modules = { messages, users };
const tab = () => crypto.randomUUID();

describe("the chat backend", () => {
  it("gives each session its own user, and a rename shows on old messages", async () => {
    const t = walkinTest(schema, modules);
    const [ada, grace] = [tab(), tab()];
    await t.mutation(api.users.setName, { sessionId: ada, name: "Ada" });
    await t.mutation(api.messages.send, { sessionId: ada, body: "hello" });
    await t.mutation(api.messages.send, { sessionId: grace, body: "hi Ada" });
    expect((await t.query(api.users.me, { sessionId: ada }))?.name).toBe("Ada");
    const graceName = (await t.query(api.users.me, { sessionId: grace }))!.name;
    expect(graceName).not.toBe("Ada");

    await t.mutation(api.users.setName, { sessionId: ada, name: "Ada L." });
    const list = await t.query(api.messages.list, {});
    expect(list.map((m) => [m.author, m.body])).toEqual([["Ada L.", "hello"], [graceName, "hi Ada"]]);
    await t.close();
  });

  it("refuses empty and over-long input with a clear message, writing nothing", async () => {
    const t = walkinTest(schema, modules);
    const me = tab();
    await expect(t.mutation(api.messages.send, { sessionId: me, body: "   " })).rejects.toThrow("Write something first.");
    await expect(t.mutation(api.messages.send, { sessionId: me, body: "x".repeat(1001) })).rejects.toThrow("at most 1000");
    await expect(t.mutation(api.users.setName, { sessionId: me, name: "" })).rejects.toThrow("Names are 1 to 40");
    await expect(t.mutation(api.messages.send, { sessionId: "not-a-session", body: "hi" })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(await t.query(api.messages.list, {})).toEqual([]);
    expect(await t.query(api.users.me, { sessionId: me })).toBeNull();
    await t.close();
  });

  it("never sends session IDs or their digests to clients", async () => {
    const t = walkinTest(schema, modules);
    const me = tab();
    await t.mutation(api.messages.send, { sessionId: me, body: "hello" });
    const results = JSON.stringify([await t.query(api.messages.list, {}), await t.query(api.users.me, { sessionId: me })]);
    expect(results).not.toContain(me);
    expect(results).not.toMatch(/sd1_/);
    await t.close();
  });
});
