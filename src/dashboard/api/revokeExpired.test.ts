/**
 * The admin API's `sessions/revoke` ends a session that is past its expiry but not ended for
 * good, as walkin/auth's own revocation does (`endedForGood` in auth/authSessions.ts): a call
 * made just before that expiry may still have its activity write on the way, and that write
 * would otherwise extend the session again after the admin revoked it.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { AuthSessionDoc } from "../../auth/authSessions.js";
import { startAdminBackend, type AdminBackend } from "./fixtures/adminBackend.js";

const KEY = "test-admin-key-for-expired-sessions-0123";
let backend: AdminBackend;

beforeAll(async () => {
  backend = await startAdminBackend(KEY);
});
afterAll(() => backend.close());

it("ends a session past its expiry, and leaves one ended for good as it is", async () => {
  const { engine, user } = backend;
  const authSessionId = (await backend.call("users/get", { userId: user.userId })).json.sessions[0]._id as string;
  const session = () => engine.read(async (txn) => (await txn.get(authSessionId)) as AuthSessionDoc | null);
  // Past its expiry by a second, as an idle session is just after its limit.
  await engine.runSystemMutation((txn) => txn.patch(authSessionId, { expiresAt: Date.now() - 1000 }));

  expect((await backend.call("sessions/revoke", { authSessionId })).json).toEqual({ revoked: true });
  // An anonymous session ends by expiring at 0: nothing can extend it from there.
  expect((await session())?.expiresAt).toBe(0);
  expect((await backend.call("sessions/revoke", { authSessionId })).json).toEqual({ revoked: false });
});
