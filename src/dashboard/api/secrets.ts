/**
 * What the dashboard never shows or sends: auth token hashes, password hashes, code hashes,
 * OAuth verifier state, and client session-ID digests (any field validated by `vSessionId`).
 * A digest or hash is what a leaked row would be replayed or cracked with, so these fields
 * are cut from every document before it leaves the server, cannot be filtered on (a filter
 * would let one probe their values), and keep their stored values when a document is edited.
 */
import type { TableInfo } from "../../engine/catalog.js";
import { ANY_TOKEN } from "../../auth/tokens.js";

const SECRET_FIELDS: Record<string, readonly string[]> = {
  authSessions: ["keyHash", "secretHash", "clientSessionId"],
  authAccounts: ["secret"],
  authVerificationCodes: ["codeHash"],
  authVerifiers: ["keyHash", "value"],
};

/** The top-level fields of `table` the dashboard hides. */
export function secretFields(table: TableInfo): string[] {
  const fields = new Set(SECRET_FIELDS[table.name] ?? []);
  const shape = table.validator as Shape | null;
  if (shape?.kind === "object" && shape.fields) {
    for (const [name, field] of Object.entries(shape.fields)) {
      if (holdsSessionId(field)) fields.add(name);
    }
  }
  return [...fields];
}

type Shape = { kind?: string; format?: { name?: string }; fields?: Record<string, Shape>; members?: readonly Shape[]; element?: Shape; key?: Shape; value?: Shape };

/** A validator that is, or holds anywhere (nullable, union, object, array, a record's keys or values), a `vSessionId`. */
function holdsSessionId(shape: Shape): boolean {
  if (shape.format?.name === "a session ID") return true;
  switch (shape.kind) {
    case "union":
      return (shape.members ?? []).some(holdsSessionId);
    case "object":
      return Object.values(shape.fields ?? {}).some(holdsSessionId);
    case "array":
      return shape.element !== undefined && holdsSessionId(shape.element);
    case "record":
      // A record keyed by session (`v.record(vSessionId, …)`) holds a digest in every key.
      return (shape.key !== undefined && holdsSessionId(shape.key)) || (shape.value !== undefined && holdsSessionId(shape.value));
    default:
      return false;
  }
}

/** A copy of `doc` without the hidden fields. */
export function withoutSecrets<T extends Record<string, unknown>>(doc: T, hidden: readonly string[]): T {
  if (hidden.length === 0) return doc;
  const copy: Record<string, unknown> = { ...doc };
  for (const field of hidden) delete copy[field];
  return copy as T;
}

/** True when a field path (`a.b`) starts at a hidden field. */
export function touchesSecret(path: string, hidden: readonly string[]): boolean {
  const top = path.split(".")[0]!;
  return hidden.includes(top);
}

/** A session-ID digest (sessions/sessionId.ts), as server code passes them and app code may print them. */
const SESSION_DIGEST = /sd1_[A-Za-z0-9_-]{43}/g;

/**
 * Free text for the page (a job's arguments and error, a run's console lines and error):
 * session digests and auth tokens masked, as hidden fields are cut from documents.
 */
export function maskSecrets(text: string): string {
  return text.replace(SESSION_DIGEST, "sd1_[hidden]").replace(ANY_TOKEN, "$1.[redacted]");
}
