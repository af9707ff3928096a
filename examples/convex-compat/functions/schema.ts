// Written for Convex (convex/server, convex/values, @convex-dev/auth/server,
// convex-helpers/server/sessions); only the import paths were changed to walkin/*.
import { defineSchema, defineTable } from "walkin/server";
import { v } from "walkin/values";
import { authTables } from "walkin/auth";
import { vSessionId } from "walkin/sessions";

export default defineSchema({
  ...authTables,
  // Convex Auth's users table, plus a name chosen in the app, the session that created a
  // guest profile, and a flag the ban check reads.
  users: defineTable({
    name: v.optional(v.string()),
    email: v.optional(v.string()),
    image: v.optional(v.string()),
    emailVerificationTime: v.optional(v.number()),
    isAnonymous: v.optional(v.boolean()),
    sessionId: v.optional(vSessionId),
    banned: v.optional(v.boolean()),
  })
    .index("email", ["email"])
    .index("by_sessionId", ["sessionId"]),
  messages: defineTable({ author: v.id("users"), body: v.string() }).searchIndex("search_body", {
    searchField: "body",
    filterFields: ["author"],
  }),
});
