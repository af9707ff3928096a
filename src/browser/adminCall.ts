/**
 * Calls made with the server's admin key (`WalkinHttpClient.setAdminAuth`, Convex's name):
 * they go to the admin API's `POST /api/admin/functions/run`, the route the dashboard's
 * Functions screen uses, which may run internal functions and act as any identity. A server
 * has that API only when it has an admin key: `walkin start` with `WALKIN_ADMIN_KEY` set,
 * `walkin dev` (which prints its own), or `startServer({ dashboard })`.
 *
 * What each answer means here: 200 `{ value }` is the function's value; `{ error: { code,
 * message, data } }` is the function's own error (or the admin API's refusal of the request)
 * and becomes the same `WalkinError` a call over the HTTP API would; a 401 is a key the
 * server does not hold; a 404 without that shape is a server with no admin API at all.
 */
import type { UserIdentityAttributes } from "../server/registration.js";
import type { ErrorPayload } from "../transport/protocol.js";
import { walkinError, type WalkinErrorCode } from "../values/errors.js";
import { convertToJson } from "../values/json.js";
import type { JSONValue, Value } from "../values/value.js";
import { postJson } from "./postJson.js";
import { errorFromPayload } from "./queryResult.js";

/** The admin route's `as`: nobody, or exactly the identity given (`setAdminAuth`'s second argument). */
export type AdminActingAs = { kind: "nobody" } | { kind: "identity"; identity: JSONValue };

export interface AdminCall {
  /** The server's address, without a trailing slash. */
  base: string;
  kind: "query" | "mutation" | "action";
  path: string;
  /** The arguments, already JSON-encoded (`convertToJson`). */
  args: JSONValue;
  adminKey: string;
  as: AdminActingAs;
  fetch: typeof fetch;
  /** Names the call in errors: "query messages:list". */
  label: string;
}

/** One call through the admin API: the JSON of its value, or the `WalkinError` its answer carries. */
export async function postAdminCall(call: AdminCall): Promise<JSONValue> {
  const endpoint = `${call.base}/api/admin/functions/run`;
  // `type` makes the server refuse a query called as a mutation, as the HTTP API does, instead
  // of running whatever kind the path names.
  const request = { path: call.path, args: call.args, as: call.as, type: call.kind };
  const { status, body } = await postJson(endpoint, { Authorization: `Bearer ${call.adminKey}` }, request, call.fetch, `admin ${call.label}`);
  const answer = (typeof body === "object" && body !== null ? body : {}) as { value?: JSONValue; error?: { code?: unknown; message?: unknown; data?: JSONValue } };
  if (status === 200 && "value" in answer) return answer.value!;
  if (status === 401) {
    throw walkinError("UNAUTHENTICATED", `admin ${call.label}: the server refused the admin key given to setAdminAuth: it must be the server's WALKIN_ADMIN_KEY (walkin dev prints its own at start).`);
  }
  const error = answer.error;
  if (typeof error === "object" && error !== null && typeof error.message === "string") {
    const code = (typeof error.code === "string" ? error.code : "INTERNAL") as WalkinErrorCode;
    const payload: ErrorPayload = { code, message: error.message, ...(error.data === undefined || error.data === null ? {} : { data: error.data }) };
    throw errorFromPayload(payload);
  }
  if (status === 404) {
    throw walkinError(
      "MISUSE",
      `admin ${call.label}: ${call.base} has no admin API, so setAdminAuth calls cannot run there. Start the server with an admin key: ` +
        "WALKIN_ADMIN_KEY=<at least 24 characters> walkin start, or walkin dev, or startServer({ dashboard: new Dashboard({ adminKey }) }).",
    );
  }
  throw walkinError("INTERNAL", `admin ${call.label}: ${endpoint} answered ${status} with a body that is not a Walk-in answer.`);
}

/**
 * `setAdminAuth`'s `actingAsIdentity` as the admin route takes it; throws `MISUSE` for an
 * identity without a subject, with a `tokenIdentifier` (always made from issuer and subject),
 * or with a claim that is not a Walk-in value, before anything is sent.
 */
export function actingAs(identity: UserIdentityAttributes | undefined): AdminActingAs {
  if (identity === undefined) return { kind: "nobody" };
  const example = 'e.g. setAdminAuth(adminKey, { subject: userId }) or setAdminAuth(adminKey, { subject: "user_123", issuer: "https://auth.example.com" })';
  if (typeof identity !== "object" || identity === null || Array.isArray(identity)) {
    throw walkinError("MISUSE", `setAdminAuth(adminKey, actingAsIdentity): actingAsIdentity must be an object of identity claims, ${example}.`);
  }
  if (typeof identity.subject !== "string" || identity.subject.length === 0) {
    throw walkinError("MISUSE", `setAdminAuth(adminKey, actingAsIdentity): actingAsIdentity.subject must be a non-empty string (who the calls act as), ${example}.`);
  }
  if (identity.issuer !== undefined && (typeof identity.issuer !== "string" || identity.issuer.length === 0)) {
    throw walkinError("MISUSE", "setAdminAuth(adminKey, actingAsIdentity): actingAsIdentity.issuer must be a non-empty string, or left out for walkin/auth's own.");
  }
  if ("tokenIdentifier" in identity) {
    throw walkinError("MISUSE", 'setAdminAuth(adminKey, actingAsIdentity): leave tokenIdentifier out; it is made from the issuer and the subject ("<issuer>|<subject>").');
  }
  return { kind: "identity", identity: convertToJson(identity as Record<string, Value>, "actingAsIdentity") };
}
