/**
 * Document ID types.
 *
 * An ID is a string at runtime. Its type carries the table name as a brand so that an ID of
 * `users` cannot be passed where an ID of `messages` is expected; the brand exists only in the
 * type system (`__tableName` is never present at runtime).
 */

/**
 * The ID of a document in table `TableName`.
 *
 * @example
 * function greet(userId: Id<"users">) {}
 * greet(message.author); // ok when `author: v.id("users")`
 */
export type Id<TableName extends string> = string & { __tableName: TableName };

/**
 * An ID of some table; `GenericId<string>` accepts the ID of any table.
 *
 * @example
 * function logId(id: GenericId<string>) { console.log(id); }
 */
export type GenericId<TableName extends string> = Id<TableName>;
