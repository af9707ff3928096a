import { defineSchema, defineTable, v } from "walkin/server";
import { sessionTables } from "walkin/sessions";

export default defineSchema({
  // Visitors get a user at their first message or rename; `logins` ties sessions to users.
  users: defineTable({ name: v.string(), isAnonymous: v.optional(v.boolean()) }),
  ...sessionTables,
  // Messages point at users, so a rename shows on old messages too.
  messages: defineTable({ author: v.id("users"), body: v.string() }),
});
