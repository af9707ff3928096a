/**
 * The identity half of the sync protocol, per connection and without I/O: which token each
 * Authenticate carries, how it is numbered, and when the next one may go.
 *
 * The server runs each Mutation as the caller of the last Authenticate it received before it
 * (src/transport/connection.ts), so the client decides who runs a request purely by message
 * order. Two tokens matter:
 *  - the token the client wants the server to hold (`want`, from `setAuth`/`clearAuth`): the
 *    queries and the requests made from now on run under it;
 *  - the token of the last Authenticate sent on this connection (`sentToken`, null on a new
 *    one): the token a request sent now is sent under. The request manager records it with
 *    each request, and a request re-sent after a reconnect goes out after an Authenticate with
 *    that token again (client.ts, `flush`), not under whatever the client holds by then.
 *
 * One Authenticate at a time. The server numbers identities: an Authenticate must name the
 * identity version the server holds (`baseVersion`), and one it refuses (AuthError) leaves the
 * version where it was. Numbering a second Authenticate before the first is answered would
 * assume the first was accepted; if it was refused, the server treats the second as a
 * protocol violation and closes the connection. So:
 *   1. `authenticate` returns null while an Authenticate is unanswered (`inFlight`): the
 *      caller waits, with the requests and query-set changes that must follow it;
 *   2. the Transition that reaches its identity version (`onTransition`) or its AuthError
 *      (`onAuthError`, undoing the step) answers it;
 *   3. the next Authenticate is then numbered from the version the server confirmed.
 */
import type { AuthenticateMessage } from "../transport/protocol.js";

interface InFlight {
  readonly baseVersion: number;
  /** Sent for the token the client wanted then (not for requests re-sent under an earlier one). */
  readonly wanted: boolean;
}

export class IdentitySync {
  /** The identity version once every Authenticate sent on this connection is accepted. */
  private version = 0;
  private inFlight: InFlight | null = null;
  private sent: string | null = null;
  private wanted: string | null = null;
  /** `wanted` changed (or the connection is new) and its Authenticate has not gone out on this connection yet. */
  private wantedUnsent = false;
  /** The identity version at which the wanted token is in force on this connection (null: not yet; see `isWantedVersion`). */
  private wantedVersion: number | null = null;

  /** Records the token the server should hold (null: signed out). */
  want(token: string | null): void {
    if (token === null && this.wanted === null) return; // nothing to sign out of
    this.wanted = token;
    this.wantedUnsent = true;
    this.wantedVersion = null;
  }

  /** The token the client wants the server to hold. */
  wantedToken(): string | null {
    return this.wanted;
  }

  /** The token of the last Authenticate sent on this connection (refused or not): what requests sent now run under. */
  sentToken(): string | null {
    return this.sent;
  }

  /** Whether an Authenticate for the wanted token is still to be sent on this connection. */
  needsWantedToken(): boolean {
    return this.wantedUnsent || this.sent !== this.wanted;
  }

  /**
   * The Authenticate that puts `token` in force for what is sent after it, or null while an
   * earlier one is unanswered (send nothing that must follow it; `flush` runs again once it is).
   */
  authenticate(token: string | null): { message: AuthenticateMessage; identityVersion: number; wanted: boolean } | null {
    if (this.inFlight !== null) return null;
    const wanted = token === this.wanted;
    this.inFlight = { baseVersion: this.version, wanted };
    this.sent = token;
    if (wanted) this.wantedUnsent = false;
    const message: AuthenticateMessage = { type: "Authenticate", baseVersion: this.version, token };
    this.version++;
    if (wanted) this.wantedVersion = this.version;
    return { message, identityVersion: this.version, wanted };
  }

  /** The wanted token is in force on this connection without a new Authenticate (none was needed). */
  wantedInPlace(): void {
    this.wantedVersion ??= this.version;
  }

  /** A Transition at `identity` was applied. Returns true if it answered the Authenticate in flight. */
  onTransition(identity: number): boolean {
    if (this.inFlight === null || identity <= this.inFlight.baseVersion) return false;
    this.inFlight = null;
    return true;
  }

  /**
   * An AuthError arrived: the server refused the Authenticate in flight and kept its identity
   * version. Returns true if that Authenticate carried the token the client still wants (the
   * app must get a new one); false for one sent under an earlier token, or a stale answer.
   */
  onAuthError(baseVersion: number): boolean {
    const refused = this.inFlight;
    if (refused === null || refused.baseVersion !== baseVersion) return false;
    this.inFlight = null;
    this.version = baseVersion;
    if (this.wantedVersion === baseVersion + 1) this.wantedVersion = null;
    return refused.wanted && !this.wantedUnsent;
  }

  hasInFlight(): boolean {
    return this.inFlight !== null;
  }

  /** The identity version of the last Authenticate sent on this connection (0: none). */
  latestVersion(): number {
    return this.version;
  }

  /** Whether `identityVersion` is the wanted token's version on this connection, with no Authenticate pending after it. */
  isWantedVersion(identityVersion: number): boolean {
    return this.wantedVersion === identityVersion && this.version === identityVersion;
  }

  /** A new connection: it starts signed out at version 0, and the wanted token (if any) is to be sent again. */
  restart(): void {
    this.version = 0;
    this.inFlight = null;
    this.sent = null;
    this.wantedUnsent = this.wanted !== null;
    this.wantedVersion = null;
  }
}
