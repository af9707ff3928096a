import { sessionBuilders } from "walkin/sessions";
import { action, mutation, query } from "../_generated/server.js";

/** `ctx.sessionId`: a one-way digest of the tab's session ID (per tab: sessionStorage). */
export const { queryWithSession, mutationWithSession, actionWithSession } = sessionBuilders({ query, mutation, action });
