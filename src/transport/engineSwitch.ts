/**
 * The engine the server currently serves, and the one rule that makes swapping it safe (hot
 * reload): no mutation runs on the old engine once the new one is in place. A swap closes a
 * gate that new mutations wait at, waits for the running ones, switches, and opens the gate;
 * so after `swap` resolves the old engine can be closed without cutting a mutation in half.
 * Queries and actions run through `use`: one already running finishes on the engine it started
 * on, and `drained(previous)` says when the last of them has, so that the old engine is closed
 * only then (an action's `ctx.runMutation` on a closed engine would fail, its write lost).
 */
import type { Engine } from "../engine/engine.js";

export class EngineSwitch {
  private gate: Promise<void> | null = null;
  private readonly running = new Set<Promise<unknown>>();
  /** Queries and actions in progress, by the engine they run on. */
  private readonly users = new Map<Engine, Set<Promise<unknown>>>();

  constructor(private engine: Engine) {}

  get current(): Engine {
    return this.engine;
  }

  /** Runs a mutation on the current engine, after any swap in progress. */
  async mutate<T>(run: (engine: Engine) => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    const mutation = run(this.engine);
    this.running.add(mutation);
    try {
      return await mutation;
    } finally {
      this.running.delete(mutation);
    }
  }

  /** Runs a query or an action (or an HTTP action) on the current engine, tracked until it settles. */
  async use<T>(run: (engine: Engine) => Promise<T>): Promise<T> {
    const engine = this.engine;
    let users = this.users.get(engine);
    if (users === undefined) this.users.set(engine, (users = new Set()));
    const work = run(engine);
    users.add(work);
    try {
      return await work;
    } finally {
      users.delete(work);
      if (users.size === 0) this.users.delete(engine);
    }
  }

  /** Resolves once nothing started through `use` on `engine` is running. */
  async drained(engine: Engine): Promise<void> {
    for (let users = this.users.get(engine); users !== undefined && users.size > 0; users = this.users.get(engine)) {
      await Promise.allSettled([...users]);
    }
  }

  /** Resolves once no mutation is running (used by shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Switches to `next` once running mutations are done; `switched` runs while the gate is closed. */
  async swap(next: Engine, switched: (previous: Engine) => void): Promise<void> {
    while (this.gate) await this.gate;
    let open!: () => void;
    this.gate = new Promise((resolve) => (open = resolve));
    try {
      await this.idle();
      const previous = this.engine;
      this.engine = next;
      switched(previous);
    } finally {
      this.gate = null;
      open();
    }
  }
}
