/**
 * Engine hooks: the one way an opt-in part (auth, for one) plugs into the engine without the
 * engine knowing it. A module of `functions/` exports a value made by `defineEngineHooks`; the
 * engine finds it by brand when it opens, wherever it is exported, and:
 *  - uses `authenticate` to turn a client's token into an identity, inside each transaction;
 *  - calls `onLoad({ modulePath, exports })` with where it found them, so the part can name
 *    its own exported functions (to call them, or to run them as cron jobs it returns).
 */
import { walkinError } from "../values/errors.js";
import type { CronJob } from "./cron.js";
import type { DatabaseReader, DatabaseWriter } from "./database.js";
import type { AnyDataModel } from "./dataModel.js";
import type { UserIdentity } from "./registration.js";

export const HOOKS_BRAND: unique symbol = Symbol.for("walkin.engineHooks");

/** What an `authenticate` hook gets: a reader at the calling transaction's snapshot. */
export interface AuthenticateCtx {
  /** Reads are part of the calling function's read set: a later change re-runs its queries. */
  db: DatabaseReader<AnyDataModel>;
  /** The transaction's time (fixed for its whole run). */
  now: number;
  /**
   * Runs a small write after this call, in its own transaction (queries cannot write). Writes
   * with the same key that are still pending are folded into one: this is how sliding expiry
   * stays a bounded number of writes however many calls a session makes. Such a write is
   * bookkeeping: it gives way (is dropped) while a mutation that lost to one on the same key
   * is still trying, on any node, so it can never starve that mutation.
   */
  writeLater(key: string, work: (db: DatabaseWriter<AnyDataModel>) => Promise<void>): void;
}

export type AuthenticateHook = (ctx: AuthenticateCtx, token: string) => Promise<UserIdentity | null>;

export interface EngineHooksSpec {
  authenticate?: AuthenticateHook;
  onLoad?: (where: { modulePath: string; exports: Record<string, unknown> }) => { crons?: CronJob[] } | void;
}

export type EngineHooks = EngineHooksSpec & { readonly [HOOKS_BRAND]: true };

/** Brands hooks so the engine finds them in any module's exports (from any copy of the package). */
export function defineEngineHooks<T extends EngineHooksSpec>(spec: T): T & EngineHooks {
  return Object.assign(spec, { [HOOKS_BRAND]: true as const });
}

export function isEngineHooks(value: unknown): value is EngineHooks {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[HOOKS_BRAND] === true;
}

/** The hooks exported by `modules`, with the module path each was found at. */
export function findEngineHooks(modules: Record<string, Record<string, unknown>>): { authenticate?: AuthenticateHook; crons: CronJob[] } {
  let authenticate: { hook: AuthenticateHook; where: string } | undefined;
  const crons: CronJob[] = [];
  const seen = new Set<EngineHooks>();
  for (const [modulePath, exports] of Object.entries(modules)) {
    for (const [name, value] of Object.entries(exports)) {
      if (!isEngineHooks(value) || seen.has(value)) continue;
      seen.add(value); // re-exported from a second module: still one set of hooks
      if (value.authenticate) {
        if (authenticate) {
          throw walkinError("MISUSE", `Two auth configurations are exported (${authenticate.where} and ${modulePath}:${name}). ` +
            "Call walkinAuth() once, in functions/auth.ts, and import from there.");
        }
        authenticate = { hook: value.authenticate, where: `${modulePath}:${name}` };
      }
      crons.push(...(value.onLoad?.({ modulePath, exports })?.crons ?? []));
    }
  }
  return { authenticate: authenticate?.hook, crons };
}

