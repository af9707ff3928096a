/**
 * Query outcomes in wire form, encoded once per outcome however many connections subscribe
 * to it: the engine hands every subscriber of a shared live query the same outcome object,
 * whose value it has already converted (`sharedJsonOf`).
 */
import type { QueryOutcome } from "../engine/engine.js";
import { sharedJsonOf } from "../values/sharedJson.js";
import type { QueryResult } from "./connectionState.js";
import { errorPayload, type ErrorReporting } from "./errors.js";

export class ResultEncoder {
  private readonly cache = new WeakMap<QueryOutcome, QueryResult>();

  constructor(private readonly reporting: ErrorReporting) {}

  of(outcome: QueryOutcome, udfPath: string): QueryResult {
    let result = this.cache.get(outcome);
    if (!result) {
      result = this.encode(outcome, udfPath);
      this.cache.set(outcome, result);
    }
    return result;
  }

  private encode(outcome: QueryOutcome, udfPath: string): QueryResult {
    if (!outcome.ok) return { type: "QueryFailed", error: errorPayload(outcome.error, `query ${udfPath}`, this.reporting) };
    try {
      // The engine already converted it to tell whether it changed (sharedJson.ts).
      return { type: "QueryUpdated", value: sharedJsonOf(outcome) };
    } catch (error) {
      return { type: "QueryFailed", error: errorPayload(error, `query ${udfPath}`, this.reporting) };
    }
  }
}
