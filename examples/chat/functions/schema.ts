import { defineSchema, defineTable, v } from "walkin/server";
import { authTables } from "walkin/auth";

export default defineSchema({
  // users (name, email, isAnonymous), accounts, auth sessions (hashed tokens), rate limits …
  ...authTables,
  // Messages point at users, so a rename shows on old messages too.
  messages: defineTable({ author: v.id("users"), body: v.string() }).index("by_author", ["author"]),
});
