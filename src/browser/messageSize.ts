/**
 * The client's side of the server's message-size limit (`maxClientMessageBytes`): the server
 * closes a connection that sends a larger message (4001), and the client re-sends what a
 * connection lost (its mutations, its whole query set) after every reconnect, so a message
 * over the limit would close every connection after it, forever, with every call behind it
 * stuck. What cannot fit is refused before it is sent (`LIMIT_EXCEEDED`), and what fits one
 * item at a time is sent in as many messages as it takes (`LocalSyncState` splits its
 * ModifyQuerySets on `MAX_ARGS_BYTES`). The same holds for a function path longer than the
 * server accepts (`maxPathLength`): the server answers it with a FatalError and closes the
 * connection, so it is refused here too (`pathTooLong`).
 */
import { encodeMessage, PROTOCOL_LIMITS, type ActionMessage, type MutationMessage } from "../transport/protocol.js";
import { walkinError, type WalkinError } from "../values/errors.js";

/** Room in a message for what surrounds the args (type, ids, versions, a udfPath of at most 512 characters). */
const MESSAGE_ENVELOPE_BYTES = 2048;

/** The most bytes of args (with their function paths, for a ModifyQuerySet) that one message may carry. */
export const MAX_ARGS_BYTES = PROTOCOL_LIMITS.maxClientMessageBytes - MESSAGE_ENVELOPE_BYTES;

/** The length of `text` in UTF-8, without encoding it. `text` is JSON, so its surrogates come in pairs. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    // 2 bytes below U+0800; each half of a surrogate pair 2 (the pair is 4); 3 otherwise.
    bytes += unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff) ? 1 : 2;
  }
  return bytes;
}

/** The error for a call whose args take `bytes` (over `MAX_ARGS_BYTES`). */
export function argsTooLarge(kind: "query" | "mutation" | "action", udfPath: string, bytes: number): WalkinError {
  return walkinError(
    "LIMIT_EXCEEDED",
    `The arguments of ${kind} ${udfPath} take ${bytes} bytes; the server accepts messages of at most ` +
      `${PROTOCOL_LIMITS.maxClientMessageBytes} bytes. Send less per call (store large content elsewhere and pass a reference).`,
  );
}

/** The error for a call whose function path is longer than the server accepts, or null if it is not. */
export function pathTooLong(kind: "query" | "mutation" | "action", udfPath: string): WalkinError | null {
  if (udfPath.length <= PROTOCOL_LIMITS.maxPathLength) return null;
  return walkinError(
    "LIMIT_EXCEEDED",
    `The path of ${kind} ${udfPath.slice(0, 60)}… is ${udfPath.length} characters long; the server accepts function ` +
      `paths of at most ${PROTOCOL_LIMITS.maxPathLength}. Use a shorter module path or export name.`,
  );
}

/**
 * The wire text of a Mutation or Action message, or throws `pathTooLong` or `argsTooLarge` for
 * one the server would refuse by closing the connection (which would re-send it after the
 * reconnect, and again). The text is made here once and then sent as it is, on every
 * connection (`requestManager.ts`): measuring the args used to stringify them a second time,
 * which took as long again as the encoding that is sent (bench/README.md, journal,
 * "2026-12-07 03:31").
 */
export function requestText(kind: "mutation" | "action", message: MutationMessage | ActionMessage): string {
  const refused = pathTooLong(kind, message.udfPath);
  if (refused) throw refused;
  const text = encodeMessage(message);
  // The args are part of the text, and a UTF-16 code unit takes at most 3 bytes in UTF-8: only
  // a text that might be over is measured.
  if (text.length * 3 <= MAX_ARGS_BYTES) return text;
  // The args' own bytes: the text's, less those of the same message with null for args (the
  // two texts differ only in the args' text standing where the other has "null").
  const textBytes = utf8Length(text);
  const bytes = textBytes - (utf8Length(encodeMessage({ ...message, args: null })) - "null".length);
  if (bytes > MAX_ARGS_BYTES) throw argsTooLarge(kind, message.udfPath, bytes);
  // MESSAGE_ENVELOPE_BYTES leaves room for a path of 512 characters of up to 3 bytes each, but
  // JSON writes a control character as 6 (\u0001): such a path can take the whole message over
  // the server's limit with args under theirs. (A query's path is measured with its args.)
  if (textBytes > PROTOCOL_LIMITS.maxClientMessageBytes) throw messageTooLarge(kind, message.udfPath, textBytes);
  return text;
}

/** The error for a call whose message is over the server's limit though its args are not (`requestText`). */
function messageTooLarge(kind: "mutation" | "action", udfPath: string, bytes: number): WalkinError {
  return walkinError(
    "LIMIT_EXCEEDED",
    `The message of ${kind} ${JSON.stringify(udfPath.slice(0, 40))}… takes ${bytes} bytes with its function path and ` +
      `arguments; the server accepts messages of at most ${PROTOCOL_LIMITS.maxClientMessageBytes} bytes. Its path is ` +
      `${utf8Length(JSON.stringify(udfPath))} bytes once JSON escapes it: use a path of plain characters, or send less per call.`,
  );
}
