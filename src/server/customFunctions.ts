/**
 * Custom function builders: the one extension point. Sessions and auth are built on it, the
 * way an app could build them.
 *
 * A customization declares extra `args` and an `input(ctx, customArgs, extra)` that returns
 * `{ ctx, args, onSuccess? }`: `ctx` fields are added to the handler's context, `args` to its
 * arguments. The custom args are validated with the function's own, and removed from what the
 * handler receives unless `input` returns them. `extra` holds any other fields written in the
 * function definition (`{ role: "admin", args, handler }`). `onSuccess` runs after the handler
 * returns, with the original ctx, all args and the result.
 *
 * @example
 * const mutationWithUser = customMutation(mutation, {
 *   args: { sessionId: v.string() },
 *   input: async (ctx, { sessionId }) => {
 *     const user = await ctx.db.query("users").withIndex("by_session", (q) => q.eq("sessionId", sessionId)).first();
 *     return { ctx: { user }, args: {} };
 *   },
 * });
 * export const rename = mutationWithUser({ args: { name: v.string() }, handler: async (ctx, { name }) => {
 *   if (ctx.user) await ctx.db.patch(ctx.user._id, { name });
 * } });
 */
import { asObjectValidator, normalizeValue, validate, walkinError } from "../values/index.js";
import type { ObjectType, PropertyValidators, Validator, Value, VObject } from "../values/index.js";
import { mergeCustomArgs } from "./customArgs.js";
import type { Expand } from "./dataModel.js";
import type { ArgsOf, FunctionBuilder, FunctionType, FunctionVisibility, RegisteredFunction, ReturnedFor } from "./registration.js";

/** `T` with the keys of `U` replaced by `U`'s. */
export type Overwrite<T, U> = keyof U extends never ? T : Expand<Omit<T, keyof U> & U>;

export interface CustomInputResult<Ctx, CustomCtx, CustomMadeArgs> {
  ctx: CustomCtx;
  args: CustomMadeArgs;
  onSuccess?: (params: { ctx: Ctx; args: Record<string, unknown>; result: unknown }) => void | Promise<void>;
}

export interface Customization<
  Ctx,
  CustomArgsValidator extends PropertyValidators,
  CustomCtx extends Record<string, any>,
  CustomMadeArgs extends Record<string, any>,
  ExtraArgs extends Record<string, any> = Record<string, any>,
> {
  args: CustomArgsValidator;
  input: (
    ctx: Ctx,
    args: ObjectType<CustomArgsValidator>,
    extra: ExtraArgs,
  ) => CustomInputResult<Ctx, CustomCtx, CustomMadeArgs> | Promise<CustomInputResult<Ctx, CustomCtx, CustomMadeArgs>>;
}

type ReturnsOf<R, Returned> = R extends Validator<infer T, any, any> ? T : Awaited<Returned>;

/**
 * A function may redeclare a custom arg only with a validator of the same or a narrower type
 * (a wider one is a type error here, a MISUSE when defined).
 */
type NarrowerThan<CustomArgsValidator> = { [K in keyof CustomArgsValidator]?: { readonly type: TypeOf<CustomArgsValidator[K]> } };
type TypeOf<V> = V extends { readonly type: infer T } ? T : never;

/** Fields a definition may carry besides args, returns and handler (the customization's `extra`). */
type ExtraFields<ExtraArgs> = { [K in keyof ExtraArgs as K extends "args" | "returns" | "handler" ? never : K]: ExtraArgs[K] };

/**
 * The builder a customization produces. The type parameters are in convex-helpers' order, so
 * code that names this type (`CustomBuilder<"query", …>`) keeps working.
 *
 * A function may redeclare a custom argument with the same or a narrower validator (checked
 * when it is defined); the handler then receives it. Without custom args the builder is
 * assignable to the builder it wraps (`customQuery(query, customCtx(…)) satisfies typeof query`).
 */
export interface CustomBuilder<
  Type extends FunctionType,
  CustomArgsValidator extends PropertyValidators,
  CustomCtx extends Record<string, any>,
  CustomMadeArgs extends Record<string, any>,
  InputCtx,
  Visibility extends FunctionVisibility,
  ExtraArgs extends Record<string, any>,
> {
  <
    ArgsValidator extends PropertyValidators | VObject<any, any, "required", any> = Record<never, never>,
    ReturnsValidator extends Validator<any, any, any> | undefined = undefined,
    Returned extends ReturnsValidator extends Validator<infer T, any, any> ? ReturnedFor<T> | Promise<ReturnedFor<T>> : unknown = any,
  >(
    definition: {
      args?: ArgsValidator & NarrowerThan<CustomArgsValidator>;
      returns?: ReturnsValidator;
      handler: (ctx: Overwrite<InputCtx, CustomCtx>, args: MergeArgs<ArgsOf<ArgsValidator>, CustomMadeArgs>) => Returned;
    } & ArgsRequired<CustomArgsValidator> &
      ExtraFields<ExtraArgs>,
  ): RegisteredFunction<Type, Visibility, Expand<ArgsOf<ArgsValidator> & ObjectType<CustomArgsValidator>>, ReturnsOf<ReturnsValidator, Returned>>;
  /**
   * Without `args`, typed by the handler's own annotation (unchecked at run time): only on
   * builders whose customization declares no args (as in convex-helpers).
   */
  <Args extends Record<string, any> = Record<string, never>, Returned = unknown>(
    definition: WithoutCustomArgs<
      CustomArgsValidator,
      { args?: undefined; returns?: undefined; handler: (ctx: Overwrite<InputCtx, CustomCtx>, args: MergeArgs<Args, CustomMadeArgs>) => Returned } & ExtraFields<ExtraArgs>
    >,
  ): RegisteredFunction<Type, Visibility, Args, Awaited<Returned>>;
  /** A bare handler: likewise only without custom args. */
  <Args extends Record<string, any> = Record<string, never>, Returned = unknown>(
    handler: WithoutCustomArgs<CustomArgsValidator, (ctx: Overwrite<InputCtx, CustomCtx>, args: MergeArgs<Args, CustomMadeArgs>) => Returned>,
  ): RegisteredFunction<Type, Visibility, Args, Awaited<Returned>>;
  /** Type-only: what this builder adds, so a builder built on it (nesting) knows. */
  readonly __custom: { args: CustomArgsValidator; ctx: CustomCtx; inputCtx: InputCtx; visibility: Visibility };
}

/**
 * The handler's args: the declared ones with what `input` returned written over them (as at run
 * time), except that a declared arg narrower than the returned one keeps its narrower type
 * (`a: v.string()` declared, `a: string | undefined` returned: a string).
 */
type MergeArgs<Declared, Made> = keyof Made extends never
  ? Declared // nothing returned: `Declared` stays inferable from a handler's annotation
  : Expand<
      Omit<Declared, keyof Made> & {
        [K in keyof Made as K extends keyof Declared ? K : never]-?: K extends keyof Declared ? (Declared[K] extends Made[K] ? Declared[K] : Made[K]) : never;
      } & { [K in keyof Made as K extends keyof Declared ? never : K]: Made[K] }
    >;

/** A builder with custom args needs the function's own `args` (a MISUSE at run time without). */
type ArgsRequired<CustomArgsValidator> = keyof CustomArgsValidator extends never ? unknown : { args: unknown };
type WithoutCustomArgs<CustomArgsValidator, T> = keyof CustomArgsValidator extends never ? T : never;

/**
 * The ctx a custom builder's handlers receive, to type helpers that take it.
 * @example
 * const userQuery = customQuery(query, customCtx(async (ctx) => ({ user: await currentUser(ctx) })));
 * type UserQueryCtx = CustomCtx<typeof userQuery>;
 * function ownedBy(ctx: UserQueryCtx) { return ctx.db.query("notes").filter((q) => q.eq(q.field("owner"), ctx.user._id)).collect(); }
 */
export type CustomCtx<Builder> = Builder extends { readonly __custom: { ctx: infer Added; inputCtx: infer InputCtx } } ? Overwrite<InputCtx, Added> : never;

/**
 * A customization that adds nothing: `customQuery(query, NoOp)` is `query` again, which is
 * handy as the base of a builder chain or in tests.
 * @example
 * export const plainQuery = customQuery(query, NoOp);
 */
export const NoOp = {
  args: {},
  input() {
    return { args: {}, ctx: {} };
  },
};

/**
 * A customization with args, written once and reused by several builders; the same object
 * `customQuery` takes, typed on its own (convex-helpers' `customCtxAndArgs`).
 * @example
 * const withApiKey = customCtxAndArgs({ args: { apiKey: v.string() }, input: async (_ctx, { apiKey }) => ({ ctx: { caller: await checkKey(apiKey) }, args: {} }) });
 * export const apiMutation = customMutation(mutation, withApiKey);
 */
export function customCtxAndArgs<
  InputCtx,
  CustomArgsValidator extends PropertyValidators,
  CustomCtx extends Record<string, any>,
  CustomMadeArgs extends Record<string, any>,
  ExtraArgs extends Record<string, any> = Record<string, any>,
>(
  customization: Customization<InputCtx, CustomArgsValidator, CustomCtx, CustomMadeArgs, ExtraArgs>,
): Customization<InputCtx, CustomArgsValidator, CustomCtx, CustomMadeArgs, ExtraArgs> {
  return customization;
}

/**
 * A customization that only adds to ctx (no args); `extra` holds the definition's other fields.
 * @example
 * const userQuery = customQuery(query, customCtx(async (ctx) => ({ user: await currentUser(ctx) })));
 */
export function customCtx<InputCtx, CustomCtx extends Record<string, any>, ExtraArgs extends Record<string, any> = Record<string, any>>(
  fn: (ctx: InputCtx, extra: ExtraArgs) => CustomCtx | Promise<CustomCtx>,
): Customization<InputCtx, Record<never, never>, CustomCtx, Record<never, never>, ExtraArgs> {
  return { args: {}, input: async (ctx, _args, extra) => ({ ctx: await fn(ctx, extra), args: {} }) };
}

function makeCustomBuilder(type: FunctionType) {
  const name = `custom${capitalize(type)}`;
  return (builder: FunctionBuilder<any, any, any>, customization: Customization<any, any, any, any, any>) => {
    const custom = customization ?? NoOp;
    if (typeof custom.input !== "function" || typeof custom.args !== "object" || custom.args === null) {
      throw walkinError("MISUSE", `${name}(builder, { args, input }) needs args (an object of validators) and an input function.`);
    }
    const customKeys = Object.keys(custom.args);
    const customValidator = asObjectValidator(custom.args);
    return (definition: Record<string, any>): RegisteredFunction => {
      if (typeof builder !== "function") {
        // What a path-only port from Convex hits when a builder name does not exist here.
        // Checked when a function is defined, not when the builder is made: as in convex-helpers,
        // making a builder from a placeholder (in a type test, say) is not an error by itself.
        throw walkinError(
          "MISUSE",
          `${name}(builder, customization) takes a ${type} builder first (${type} or internal${capitalize(type)} from ./_generated/server, ` +
            `${type}Generic from walkin/server, or another custom builder); received ${builder === null ? "null" : typeof builder}. ` +
            "Check that the name you import it by exists.",
        );
      }
      if (typeof definition === "function") definition = { handler: definition };
      // `customArgs` comes from a custom builder built on this one, for `args: v.any()` (below).
      const { args, returns, handler, customArgs: outerCustomArgs, ...extra } = definition ?? {};
      if (typeof handler !== "function") throw walkinError("MISUSE", "A custom function needs a handler: { args, handler }, or the handler itself.");
      const declared = args === undefined ? undefined : (asObjectValidator(args) as { kind: string; fields?: PropertyValidators });
      if (declared === undefined && customKeys.length > 0) {
        // As convex-helpers does: without declared args the function's own would go unchecked.
        throw walkinError(
          "MISUSE",
          `This custom builder adds the argument${customKeys.length === 1 ? "" : "s"} ${customKeys.map((k) => `"${k}"`).join(", ")}, ` +
            "so its functions must declare their own args too: { args: {}, handler } when they take no others.",
        );
      }
      // Declared object args are validated together with the custom ones. With v.any() the
      // function's own args are unchecked, but the custom ones (this builder's and those of
      // builders built on it) are still checked by the engine: see `RegisteredFunction.customArgs`.
      const declaredFields = declared?.kind === "object" ? declared.fields : undefined;
      const mergedArgs = declaredFields ? mergeCustomArgs(custom.args, declaredFields) : undefined;
      const anyCustomArgs = declared?.kind === "any" ? mergeCustomArgs(custom.args, outerCustomArgs ?? {}) : undefined;
      /** Whether the engine checks the custom args (else the wrapper must); known once registered. */
      let engineChecksCustomArgs = mergedArgs !== undefined;
      const wrapped = async (ctx: any, allArgs: Record<string, unknown>) => {
        const customArgs: Record<string, unknown> = {};
        const rest: Record<string, unknown> = { ...allArgs };
        for (const key of customKeys) {
          customArgs[key] = allArgs[key];
          // A key the function redeclared is its argument too; the others are only the input's.
          if (!(declaredFields && key in declaredFields)) delete rest[key];
        }
        let inputArgs = customArgs;
        if (!engineChecksCustomArgs && customKeys.length > 0) {
          // Only when built on a builder that dropped `customArgs` (not one of Walk-in's): the
          // engine did not see these args, so check and normalize them here, as a client's (the
          // stricter reading: formats such as session IDs refuse digests).
          const isIdOfTable = ctx.db ? (table: string, id: string) => ctx.db.normalizeId(table, id) !== null : undefined;
          validate(customValidator, customArgs, { path: "args", isIdOfTable });
          inputArgs = normalizeValue(customValidator, customArgs as Value, false, isIdOfTable) as Record<string, unknown>;
        }
        const added = await custom.input(ctx, inputArgs, extra);
        if (typeof added !== "object" || added === null) {
          // Else a forgotten `return` reads as "Cannot read properties of undefined (reading 'ctx')".
          throw walkinError(
            "MISUSE",
            `${name}'s input returned ${added === null ? "null" : typeof added}; it must return { ctx, args } ` +
              "(empty objects when it adds nothing), or throw to refuse the call.",
          );
        }
        const result = await handler({ ...ctx, ...added.ctx }, { ...rest, ...added.args });
        if (added.onSuccess) await added.onSuccess({ ctx, args: allArgs, result });
        return result;
      };
      const register = builder as unknown as (definition: Record<string, unknown>) => RegisteredFunction;
      const keptArgs = mergedArgs ?? (args !== undefined ? args : undefined);
      const registered = register({
        ...(keptArgs !== undefined ? { args: keptArgs } : {}),
        ...(anyCustomArgs ? { customArgs: anyCustomArgs } : {}),
        ...(returns ? { returns } : {}),
        handler: wrapped,
      });
      const checkedByEngine = (registered.customArgs as { fields?: PropertyValidators } | null | undefined)?.fields;
      if (anyCustomArgs && checkedByEngine) engineChecksCustomArgs = customKeys.every((key) => key in checkedByEngine);
      return registered;
    };
  };
}

function capitalize(text: string) {
  return text[0]!.toUpperCase() + text.slice(1);
}

/** The ctx a builder's handlers get: a custom builder's own, with what it adds. */
type BuilderCtx<B> = 0 extends 1 & B // `any` (a placeholder builder): any ctx
  ? any
  : B extends { readonly __custom: { ctx: infer Added; inputCtx: infer InputCtx } }
    ? Overwrite<InputCtx, Added>
    : B extends FunctionBuilder<any, any, infer Ctx>
      ? Ctx
      : never;
/** The args a custom builder passed as the base already adds: they stay part of the registered args. */
type BuilderCustomArgs<B> = B extends { readonly __custom: { args: infer A } } ? A : Record<never, never>;
type BuilderVisibility<B> = 0 extends 1 & B
  ? any
  : B extends { readonly __custom: { visibility: infer V } } ? V : B extends FunctionBuilder<any, infer V, any> ? V : never;

/**
 * A query builder with extra args and ctx. See the module docs for the contract. The builder
 * may itself be a custom builder: customizations nest, the outer one's `input` seeing the
 * inner one's ctx.
 */
export function customQuery<
  B extends FunctionBuilder<"query", any, any> | CustomBuilder<"query", any, any, any, any, any, any>,
  CustomArgsValidator extends PropertyValidators,
  CustomCtx extends Record<string, any>,
  CustomMadeArgs extends Record<string, any>,
  ExtraArgs extends Record<string, any> = Record<never, never>,
>(
  query: B,
  customization: Customization<BuilderCtx<B>, CustomArgsValidator, CustomCtx, CustomMadeArgs, ExtraArgs>,
): CustomBuilder<"query", CustomArgsValidator & BuilderCustomArgs<B>, CustomCtx, CustomMadeArgs, BuilderCtx<B>, BuilderVisibility<B>, ExtraArgs> {
  return makeCustomBuilder("query")(query as never, customization) as never;
}

/** A mutation builder with extra args and ctx. */
export function customMutation<
  B extends FunctionBuilder<"mutation", any, any> | CustomBuilder<"mutation", any, any, any, any, any, any>,
  CustomArgsValidator extends PropertyValidators,
  CustomCtx extends Record<string, any>,
  CustomMadeArgs extends Record<string, any>,
  ExtraArgs extends Record<string, any> = Record<never, never>,
>(
  mutation: B,
  customization: Customization<BuilderCtx<B>, CustomArgsValidator, CustomCtx, CustomMadeArgs, ExtraArgs>,
): CustomBuilder<"mutation", CustomArgsValidator & BuilderCustomArgs<B>, CustomCtx, CustomMadeArgs, BuilderCtx<B>, BuilderVisibility<B>, ExtraArgs> {
  return makeCustomBuilder("mutation")(mutation as never, customization) as never;
}

/** An action builder with extra args and ctx. */
export function customAction<
  B extends FunctionBuilder<"action", any, any> | CustomBuilder<"action", any, any, any, any, any, any>,
  CustomArgsValidator extends PropertyValidators,
  CustomCtx extends Record<string, any>,
  CustomMadeArgs extends Record<string, any>,
  ExtraArgs extends Record<string, any> = Record<never, never>,
>(
  action: B,
  customization: Customization<BuilderCtx<B>, CustomArgsValidator, CustomCtx, CustomMadeArgs, ExtraArgs>,
): CustomBuilder<"action", CustomArgsValidator & BuilderCustomArgs<B>, CustomCtx, CustomMadeArgs, BuilderCtx<B>, BuilderVisibility<B>, ExtraArgs> {
  return makeCustomBuilder("action")(action as never, customization) as never;
}
