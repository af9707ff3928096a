/**
 * Splitting Transitions too large for one message. The JSON text of the Transition is cut
 * into slices sent as TransitionChunk messages (`partNumber` 0 .. `totalParts - 1`, in order,
 * nothing else of the same connection in between); the client concatenates the `chunk`
 * strings and parses the result as the TransitionMessage.
 *
 * Each chunk message stays within `maxBytes`: a UTF-16 code unit of the Transition's text
 * takes at most 3 bytes once JSON-escaped inside `chunk` and UTF-8 encoded (`"` and `\` become
 * 2 bytes, other BMP characters at most 3, a surrogate pair 4 for two units), and slices never
 * end between the two halves of a surrogate pair.
 */
import { sharedJsonText } from "../values/sharedJson.js";
import { encodeMessage, type TransitionMessage } from "./protocol.js";

/** Room for the chunk message's own fields. */
const ENVELOPE_BYTES = 256;

/** The messages that carry `transition`: itself if it fits in `maxBytes`, else its chunks. */
export function encodeTransition(transition: TransitionMessage, maxBytes: number, transitionId: number): string[] {
  const text = transitionText(transition);
  // Length in UTF-16 units is a lower bound of the UTF-8 length: most messages skip the count.
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text, "utf8") <= maxBytes) return [text];
  const sliceUnits = Math.max(2, Math.floor((maxBytes - ENVELOPE_BYTES) / 3));
  const slices: string[] = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(start + sliceUnits, text.length);
    if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end -= 1;
    slices.push(text.slice(start, end));
    start = end;
  }
  return slices.map((chunk, partNumber) =>
    encodeMessage({ type: "TransitionChunk", transitionId, partNumber, totalParts: slices.length, chunk }),
  );
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * The last Transition encoded and its text. One flush usually sends many connections the same
 * Transition (same versions, same queries, the same shared result objects: subscribers of a
 * popular query with the same history); they then share one text instead of each building
 * its own copy. Results are never modified once encoded (see `sharedJson.ts`), so equal
 * references mean equal text.
 */
let lastEncoded: { transition: TransitionMessage; text: string } | null = null;

/** The JSON text of a Transition: the same as `encodeMessage(transition)`, parsed back. */
export function transitionText(transition: TransitionMessage): string {
  if (lastEncoded !== null && sameTransition(lastEncoded.transition, transition)) return lastEncoded.text;
  const text = buildTransitionText(transition);
  lastEncoded = { transition, text };
  return text;
}

function sameTransition(a: TransitionMessage, b: TransitionMessage): boolean {
  if (!sameVersion(a.startVersion, b.startVersion) || !sameVersion(a.endVersion, b.endVersion)) return false;
  if (a.modifications.length !== b.modifications.length) return false;
  for (let i = 0; i < a.modifications.length; i++) {
    const x = a.modifications[i]!;
    const y = b.modifications[i]!;
    if (x.type !== y.type || x.queryId !== y.queryId) return false;
    if (x.type === "QueryUpdated" && x.value !== (y as typeof x).value) return false;
    if (x.type === "QueryFailed" && x.error !== (y as typeof x).error) return false;
  }
  return true;
}

function sameVersion(a: TransitionMessage["startVersion"], b: TransitionMessage["startVersion"]): boolean {
  return a.querySet === b.querySet && a.identity === b.identity && a.ts === b.ts;
}

/**
 * A shared live query hands the same encoded result object to every subscriber, so its JSON
 * text is computed once per result (`sharedJsonText`), not once per connection: fan-out to
 * thousands of clients otherwise spends most of its time re-stringifying the same value.
 */
function buildTransitionText(transition: TransitionMessage): string {
  const modifications = transition.modifications.map((m) =>
    m.type === "QueryUpdated" ? `{"type":"QueryUpdated","queryId":${m.queryId},"value":${sharedJsonText(m.value)}}` : encodeMessage(m as never),
  );
  return (
    `{"type":"Transition","startVersion":${JSON.stringify(transition.startVersion)},` +
    `"endVersion":${JSON.stringify(transition.endVersion)},"modifications":[${modifications.join(",")}]}`
  );
}
