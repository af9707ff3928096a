/**
 * Which `walkinAuth()` configuration a server-side account helper (`createAccount`,
 * `retrieveAccount`, `modifyAccountCredentials`: accounts.ts) acts for.
 *
 * The helpers take only a `ctx`, as Convex Auth's do, but need the configuration: its
 * providers' hashing, its callbacks, its limits. What the ctx reaches is the app's `store`
 * mutation, made by one `walkinAuth()` call. So every configuration is given an ID here when it
 * is made, `store` answers that ID (`{ type: "instance" }`), and the helper looks it up. An ID,
 * not "the last configuration made": one process may hold several apps (two engines, a test
 * file's apps), each with its own configuration behind the same function path `auth:store`.
 *
 * Held weakly: a configuration no app uses any more can be collected, and its ID then finds
 * nothing (the helper says so).
 */
import { randomUUID } from "node:crypto";
import type { ResolvedAuthConfig } from "./config.js";

const byId = new Map<string, WeakRef<ResolvedAuthConfig>>();
const idOf = new WeakMap<ResolvedAuthConfig, string>();
const forget = new FinalizationRegistry<string>((id) => byId.delete(id));

/** The ID of `config`, given the first time it is asked. */
export function authInstanceId(config: ResolvedAuthConfig): string {
  let id = idOf.get(config);
  if (id === undefined) {
    id = randomUUID();
    idOf.set(config, id);
    byId.set(id, new WeakRef(config));
    forget.register(config, id);
  }
  return id;
}

/** The configuration with this ID, if it is still in use in this process. */
export function authConfigById(id: string): ResolvedAuthConfig | undefined {
  return byId.get(id)?.deref();
}
