import { describe, expect, it } from "vitest";
import { shutdownOnSignals } from "./signals.js";

describe("shutdownOnSignals", () => {
  function setup() {
    let clock = 0;
    const calls: string[] = [];
    const onSignal = shutdownOnSignals({
      stop: (s) => calls.push(`stop ${s}`),
      forceExit: (s) => calls.push(`exit ${s}`),
      now: () => clock,
    });
    return { calls, onSignal, advance: (ms: number) => (clock += ms) };
  }

  it("treats the copies of one Ctrl-C (terminal + a forwarding parent such as npm) as one", () => {
    const { calls, onSignal, advance } = setup();
    onSignal("SIGINT");
    advance(3);
    onSignal("SIGINT");
    advance(40);
    onSignal("SIGINT");
    expect(calls).toEqual(["stop SIGINT"]);
  });

  it("exits at once on a second signal sent later, and only once", () => {
    const { calls, onSignal, advance } = setup();
    onSignal("SIGINT");
    advance(800);
    onSignal("SIGINT");
    advance(800);
    onSignal("SIGTERM");
    expect(calls).toEqual(["stop SIGINT", "exit SIGINT"]);
  });
});
