/**
 * Reassembles a Transition the server split into TransitionChunk messages (a Transition larger
 * than `PROTOCOL_LIMITS.maxServerMessageBytes`). Pieces of one transition arrive in order and
 * nothing else comes between them on the socket, so one buffer suffices; anything else is a
 * protocol violation and the connection is restarted (`reset()` on every new connection).
 */
import { parseServerMessage, type TransitionChunkMessage, type TransitionMessage } from "../transport/protocol.js";
import { ProtocolMismatch } from "./localSyncState.js";

export class TransitionChunks {
  private current: { transitionId: number; totalParts: number; parts: string[] } | null = null;

  /** Adds a piece; returns the whole Transition once its last piece arrived, else null. */
  add(chunk: TransitionChunkMessage): TransitionMessage | null {
    const { transitionId, partNumber, totalParts } = chunk;
    if (!Number.isSafeInteger(totalParts) || totalParts < 1) {
      throw new ProtocolMismatch(`TransitionChunk ${transitionId} has totalParts ${totalParts}`);
    }
    if (this.current === null) {
      this.current = { transitionId, totalParts, parts: [] };
    } else if (this.current.transitionId !== transitionId || this.current.totalParts !== totalParts) {
      throw new ProtocolMismatch(
        `TransitionChunk of transition ${transitionId} arrived before transition ${this.current.transitionId} was complete`,
      );
    }
    const expected = this.current.parts.length;
    if (partNumber !== expected) {
      throw new ProtocolMismatch(`TransitionChunk ${transitionId}: expected part ${expected}, got part ${partNumber}`);
    }
    this.current.parts.push(chunk.chunk);
    if (this.current.parts.length < totalParts) return null;

    const text = this.current.parts.join("");
    this.current = null;
    const parsed = parseServerMessage(text);
    if (!parsed.ok || parsed.message.type !== "Transition") {
      throw new ProtocolMismatch(`TransitionChunks of transition ${transitionId} do not form a Transition`);
    }
    return parsed.message;
  }

  /** Whether a transition is partly received (nothing else may arrive until it is complete). */
  inProgress(): boolean {
    return this.current !== null;
  }

  reset(): void {
    this.current = null;
  }
}
