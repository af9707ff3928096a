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
import type { Expand } from "./dataModel.js";
import type { ArgsOf, FunctionBuilder, FunctionType, FunctionVisibility, RegisteredFunction } from "./registration.js";

/** `T` with the keys of `U` replaced by `U`'s. */
export type Overwrite<T, U> = Expand<Omit<T, keyof U> & U>;

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

/**
 * Function args may not reuse a custom arg's name: a type error here (its message names the fix),
 * a MISUSE at definition time for untyped callers.
 */
type NotCustomArgs<CustomArgsValidator> = {
  [K in keyof CustomArgsValidator & string]?: `"${K}" is already an argument of the custom builder; remove it from args`;
};

type ReturnsOf<R, Returned> = R extends Validator<infer T, any, any> ? T : Awaited<Returned>;

/** The builder a customization produces. */
export interface CustomBuilder<
  Type extends FunctionType,
  Visibility extends FunctionVisibility,
  InputCtx,
  CustomArgsValidator extends PropertyValidators,
  CustomCtx extends Record<string, any>,
  CustomMadeArgs extends Record<string, any>,
  ExtraArgs extends Record<string, any>,
> {
  <
    ArgsValidator extends PropertyValidators | VObject<any, any, "required", any> = Record<never, never>,
    ReturnsValidator extends Validator<any, any, any> | undefined = undefined,
    Returned extends ReturnsValidator extends Validator<infer T, any, any> ? T | Promise<T> : unknown = any,
  >(
    definition: {
      args?: ArgsValidator & NotCustomArgs<CustomArgsValidator>;
      returns?: ReturnsValidator;
      handler: (
        ctx: Overwrite<InputCtx, CustomCtx>,
        args: Overwrite<ArgsOf<ArgsValidator>, CustomMadeArgs>,
      ) => Returned;
    } & ExtraArgs,
  ): RegisteredFunction<
    Type,
    Visibility,
    Expand<ArgsOf<ArgsValidator> & ObjectType<CustomArgsValidator>>,
    ReturnsOf<ReturnsValidator, Returned>
  >;
}

/** A customization that only adds to ctx (no args). */
export function customCtx<InputCtx, CustomCtx extends Record<string, any>>(
  fn: (ctx: InputCtx) => CustomCtx | Promise<CustomCtx>,
): Customization<InputCtx, Record<never, never>, CustomCtx, Record<never, never>> {
  return { args: {}, input: async (ctx) => ({ ctx: await fn(ctx), args: {} }) };
}

function makeCustomBuilder(type: FunctionType) {
  return (builder: FunctionBuilder<any, any, any>, customization: Customization<any, any, any, any, any>) => {
    const custom = customization ?? { args: {}, input: async () => ({ ctx: {}, args: {} }) };
    if (typeof custom.input !== "function" || typeof custom.args !== "object" || custom.args === null) {
      throw walkinError("MISUSE", `custom${capitalize(type)}(builder, { args, input }) needs args (an object of validators) and an input function.`);
    }
    const customKeys = Object.keys(custom.args);
    const customValidator = asObjectValidator(custom.args);
    return (definition: Record<string, any>): RegisteredFunction => {
      if (typeof definition === "function") definition = { handler: definition };
      const { args, returns, handler, ...extra } = definition;
      if (typeof handler !== "function") throw walkinError("MISUSE", "A custom function needs a handler: { args, handler }.");
      // Declared object args are validated together with the custom ones. Without declared
      // args (or with v.any()) the function's own args are unchecked, but the custom ones
      // still are, inside the wrapper.
      const declared = args === undefined ? undefined : (asObjectValidator(args) as { kind: string; fields?: Record<string, unknown> });
      const declaredFields = declared?.kind === "object" ? declared.fields : undefined;
      for (const key of customKeys) {
        if (declaredFields && key in declaredFields) {
          throw walkinError("MISUSE", `The argument "${key}" is already added by the custom builder; remove it from args.`);
        }
      }
      const mergedArgs = declaredFields ? { ...custom.args, ...declaredFields } : undefined;
      const wrapped = async (ctx: any, allArgs: Record<string, unknown>) => {
        const customArgs: Record<string, unknown> = {};
        const rest: Record<string, unknown> = { ...allArgs };
        for (const key of customKeys) {
          customArgs[key] = allArgs[key];
          delete rest[key];
        }
        let inputArgs = customArgs;
        if (!mergedArgs) {
          // The engine did not see these args, so check and normalize them here, as a
          // client's (the stricter reading: formats such as session IDs refuse digests).
          const isIdOfTable = ctx.db ? (table: string, id: string) => ctx.db.normalizeId(table, id) !== null : undefined;
          validate(customValidator, customArgs, { path: "args", isIdOfTable });
          inputArgs = normalizeValue(customValidator, customArgs as Value) as Record<string, unknown>;
        }
        const added = await custom.input(ctx, inputArgs, extra);
        const result = await handler({ ...ctx, ...added.ctx }, { ...rest, ...added.args });
        if (added.onSuccess) await added.onSuccess({ ctx, args: allArgs, result });
        return result;
      };
      const register = builder as unknown as (definition: Record<string, unknown>) => RegisteredFunction;
      return register({ ...(mergedArgs ? { args: mergedArgs } : {}), ...(returns ? { returns } : {}), handler: wrapped });
    };
  };
}

function capitalize(text: string) {
  return text[0]!.toUpperCase() + text.slice(1);
}

type BuilderCtx<B> = B extends FunctionBuilder<any, any, infer Ctx> ? Ctx : never;
type BuilderVisibility<B> = B extends FunctionBuilder<any, infer V, any> ? V : never;

/**
 * A query builder with extra args and ctx. See the module docs for the contract.
 */
export function customQuery<
  B extends FunctionBuilder<"query", any, any>,
  CustomArgsValidator extends PropertyValidators,
  CustomCtx extends Record<string, any>,
  CustomMadeArgs extends Record<string, any>,
  ExtraArgs extends Record<string, any> = Record<never, never>,
>(
  query: B,
  customization: Customization<BuilderCtx<B>, CustomArgsValidator, CustomCtx, CustomMadeArgs, ExtraArgs>,
): CustomBuilder<"query", BuilderVisibility<B>, BuilderCtx<B>, CustomArgsValidator, CustomCtx, CustomMadeArgs, ExtraArgs> {
  return makeCustomBuilder("query")(query, customization) as never;
}

/** A mutation builder with extra args and ctx. */
export function customMutation<
  B extends FunctionBuilder<"mutation", any, any>,
  CustomArgsValidator extends PropertyValidators,
  CustomCtx extends Record<string, any>,
  CustomMadeArgs extends Record<string, any>,
  ExtraArgs extends Record<string, any> = Record<never, never>,
>(
  mutation: B,
  customization: Customization<BuilderCtx<B>, CustomArgsValidator, CustomCtx, CustomMadeArgs, ExtraArgs>,
): CustomBuilder<"mutation", BuilderVisibility<B>, BuilderCtx<B>, CustomArgsValidator, CustomCtx, CustomMadeArgs, ExtraArgs> {
  return makeCustomBuilder("mutation")(mutation, customization) as never;
}

/** An action builder with extra args and ctx. */
export function customAction<
  B extends FunctionBuilder<"action", any, any>,
  CustomArgsValidator extends PropertyValidators,
  CustomCtx extends Record<string, any>,
  CustomMadeArgs extends Record<string, any>,
  ExtraArgs extends Record<string, any> = Record<never, never>,
>(
  action: B,
  customization: Customization<BuilderCtx<B>, CustomArgsValidator, CustomCtx, CustomMadeArgs, ExtraArgs>,
): CustomBuilder<"action", BuilderVisibility<B>, BuilderCtx<B>, CustomArgsValidator, CustomCtx, CustomMadeArgs, ExtraArgs> {
  return makeCustomBuilder("action")(action, customization) as never;
}
