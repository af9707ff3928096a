/**
 * The engine the server currently serves, and the one rule that makes swapping it safe (hot
 * reload): no mutation runs on the old engine once the new one is in place. A swap closes a
 * gate that new mutations wait at, waits for the running ones, switches, and opens the gate;
 * so after `swap` resolves the old engine can be closed without cutting a mutation in half.
 * Queries and actions read `current` directly (an action already running finishes on the
 * engine it started on).
 */
import type { Engine } from "../engine/engine.js";

export class EngineSwitch {
  private gate: Promise<void> | null = null;
  private readonly running = new Set<Promise<unknown>>();

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
