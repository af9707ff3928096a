/**
 * Review of walkin/nextjs: what a client component does with something that is not the
 * `Preloaded` that `preloadQuery` resolves to (Next.js passes a Promise prop on as a Promise).
 */
import { renderToString } from "react-dom/server";
import { describe, expect, it, vi } from "vitest";
import { WalkinClient } from "../browser/index.js";
import { WalkinProvider, usePreloadedQuery, type Preloaded } from "../react/index.js";
import { makeFunctionReference } from "../server/index.js";
import { preloadQuery, preloadedQueryResult } from "./index.js";

const list = makeFunctionReference<"query", Record<string, never>, string[]>("tasks:list");
type PreloadedTasks = Preloaded<typeof list>;

function Tasks({ preloaded }: { preloaded: PreloadedTasks }) {
  return <p>{usePreloadedQuery(preloaded).join(",")}</p>;
}

function renderTasks(preloaded: unknown): string {
  const client = new WalkinClient("http://127.0.0.1:1", { skipConnect: true, webSocketConstructor: vi.fn() as never });
  try {
    return renderToString(
      <WalkinProvider client={client}>
        <Tasks preloaded={preloaded as PreloadedTasks} />
      </WalkinProvider>,
    );
  } finally {
    void client.close();
  }
}

describe("usePreloadedQuery given what preloadQuery hands over", () => {
  it("renders the preloaded value", () => {
    const preloaded = { _name: "tasks:list", _argsJSON: "{}", _valueJSON: '["a","b"]' } as PreloadedTasks;
    expect(renderTasks(preloaded)).toBe("<p>a,b</p>");
  });

  it("says that preloadQuery was not awaited when it gets a Promise, instead of a JSON syntax error", () => {
    // A Server Component's `preloaded={preloadQuery(api.tasks.list)}`: the client component receives the Promise.
    const pending = preloadQuery(list, {}, { url: "http://127.0.0.1:1", fetch: () => new Promise<Response>(() => {}) });
    expect(() => renderTasks(pending)).toThrow(
      expect.objectContaining({ code: "MISUSE", message: expect.stringMatching(/^usePreloadedQuery takes what preloadQuery returned .*got a Promise: await preloadQuery/) }),
    );
    expect(() => preloadedQueryResult(pending as unknown as PreloadedTasks)).toThrow(/^preloadedQueryResult takes what preloadQuery returned .*got a Promise: await preloadQuery/);
    expect(() => renderTasks(undefined)).toThrow(/^usePreloadedQuery takes what preloadQuery returned .*got undefined/);
    // Convex's preloadQuery holds JSON values, not JSON text, under these names.
    const convexShaped = { _name: "tasks:list", _argsJSON: {}, _valueJSON: ["a"] };
    expect(() => renderTasks(convexShaped)).toThrow(/got an object whose _name, _argsJSON and _valueJSON are not all text/);
  });
});
