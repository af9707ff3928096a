import { describe, expect, it } from "vitest";
import { asyncLocalStorageContext, nativeContinuationContext, type ContinuationContext } from "./continuationContext.js";
import { sandboxContextKind } from "./determinism.js";

const nodeMajor = Number(process.versions.node.split(".")[0]);
const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

describe("the continuation context this checkout runs on", () => {
  it("is the native one where Node's AsyncLocalStorage still runs on promise hooks (npm install builds it)", () => {
    // If this fails, `npm install` did not build native/continuation_context.cc: its output says why.
    expect(sandboxContextKind).toBe(nodeMajor >= 24 ? "async-local-storage" : "native");
  });
});

const implementations: Array<[string, () => ContinuationContext<string> | null]> = [
  ["native", () => nativeContinuationContext<string>("test")],
  ["AsyncLocalStorage", () => asyncLocalStorageContext<string>()],
];

// The same contract for both: what the determinism sandbox relies on.
describe.each(implementations)("continuation context: %s", (_name, open) => {
  // On Node 24 the native one is not used (and not built): nothing to check there.
  const context = open();
  const maybe = context ? it : it.skip;

  maybe("is empty outside every run, and holds the value during a synchronous call", () => {
    expect(context!.get()).toBeUndefined();
    expect(context!.run("a", (x: number) => `${context!.get()}${x}`, 1)).toBe("a1");
    expect(context!.get()).toBeUndefined();
  });

  maybe("gives each of two interleaved async calls its own value after every await", async () => {
    const trail: string[] = [];
    const handler = async (name: string) => {
      trail.push(`${name}:${context!.get()}`);
      await null;
      trail.push(`${name}:${context!.get()}`);
      await tick(); // a macrotask in between: other code runs while this one is suspended
      trail.push(`${name}:${context!.get()}`);
      await Promise.all([Promise.resolve(), tick()]);
      return context!.get();
    };
    const a = context!.run("A", handler, "a");
    const b = context!.run("B", handler, "b");
    expect(context!.get()).toBeUndefined();
    expect(await Promise.all([a, b])).toEqual(["A", "B"]);
    expect(trail.filter((entry) => entry.startsWith("a:"))).toEqual(["a:A", "a:A", "a:A"]);
    expect(trail.filter((entry) => entry.startsWith("b:"))).toEqual(["b:B", "b:B", "b:B"]);
  });

  maybe("leaves code outside the run empty while a run's continuations are pending", async () => {
    const inside = context!.run("A", async () => {
      await tick();
      return context!.get();
    });
    // Queued between the run's continuations, created outside it.
    const outside = Promise.resolve().then(() => context!.get());
    const outsideLater = tick().then(() => context!.get());
    expect(await Promise.all([inside, outside, outsideLater])).toEqual(["A", undefined, undefined]);
  });

  maybe("nests, and a throwing call still puts the outer value back", async () => {
    const seen = await context!.run("outer", async () => {
      const inner = context!.run("inner", async () => {
        await null;
        return context!.get();
      });
      expect(() => context!.run("thrown", () => { throw new Error("boom"); })).toThrow("boom");
      const own = context!.get();
      await null;
      return [own, await inner, context!.get()];
    });
    expect(seen).toEqual(["outer", "inner", "outer"]);
    expect(context!.get()).toBeUndefined();
  });

  maybe("runs with an empty value inside another run (the storage calls of a handler)", async () => {
    const seen = await context!.run("A", async () => {
      const driver = context!.run(undefined, async () => {
        await tick();
        return context!.get();
      });
      return [await driver, context!.get()];
    });
    expect(seen).toEqual([undefined, "A"]);
  });
});

describe("two native contexts on the one slot", () => {
  const first = nativeContinuationContext<string>("first");
  const second = nativeContinuationContext<string>("second");
  const maybe = first && second ? it : it.skip;

  maybe("each keeps its own value, through nesting and awaits, and neither sees the other's", async () => {
    const seen = await first!.run("1", async () => {
      const inner = second!.run("2", async () => {
        await tick();
        return [first!.get(), second!.get()];
      });
      const outer = [first!.get(), second!.get()];
      await null;
      // An empty value for one leaves the other's in place (the storage calls of a logged handler).
      const emptied = first!.run(undefined, () => [first!.get(), second!.get()]);
      return [await inner, outer, emptied, [first!.get(), second!.get()]];
    });
    expect(seen).toEqual([["1", "2"], ["1", undefined], [undefined, undefined], ["1", undefined]]);
    expect([first!.get(), second!.get()]).toEqual([undefined, undefined]);
  });
});
