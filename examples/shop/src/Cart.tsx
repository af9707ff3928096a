import { useState, type FormEvent } from "react";
import { useMutation } from "walkin/react";
import { useSessionMutation } from "walkin/sessions/react";
import type { FunctionReturnType } from "walkin/server";
import { api } from "../functions/_generated/api.js";
import { formatCents, messageOf } from "./format";
import { Tile } from "./Tile";

export type CartData = NonNullable<FunctionReturnType<typeof api.cart.get>>;
type Line = CartData["lines"][number];

/** The user's cart: the same in every tab of this browser, updated live. */
export function Cart({ cart, inCheckout }: { cart: CartData | null | undefined; inCheckout: boolean }) {
  const start = useSessionMutation(api.checkout.start);
  const [error, setError] = useState<string | null>(null);
  const onCheckout = async () => {
    setError(null);
    try {
      await start();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <section className="card cart" aria-labelledby="cart-title">
      <h2 id="cart-title">
        Your cart {cart && cart.count > 0 && <span className="count" data-testid="cart-count">{cart.count}</span>}
      </h2>
      {!cart ? (
        <p className="muted">Setting up your cart…</p>
      ) : cart.lines.length === 0 ? (
        <p className="muted empty">Your cart is empty. It follows you into every tab, no account needed.</p>
      ) : (
        <>
          <ul className="lines">
            {cart.lines.map((line) => (
              <CartLine key={`${line.sku}:${line.qty}`} line={line} />
            ))}
          </ul>
          <p className="subtotal">
            <span>Subtotal</span> <strong data-testid="subtotal">{formatCents(cart.subtotalCents)}</strong>
          </p>
          {inCheckout ? (
            <p className="muted small">This tab is checking out. Other tabs keep their own checkout.</p>
          ) : (
            <button type="button" className="primary wide" onClick={onCheckout}>
              Checkout
            </button>
          )}
        </>
      )}
      {error && (
        <p role="alert" className="field-error">
          {error}
        </p>
      )}
    </section>
  );
}

function CartLine({ line }: { line: Line }) {
  const setQty = useMutation(api.cart.setQty);
  const remove = useMutation(api.cart.remove);
  const [draft, setDraft] = useState(String(line.qty));
  const [error, setError] = useState<string | null>(null);
  const run = async (call: () => Promise<unknown>) => {
    setError(null);
    try {
      await call();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  // The server checks the quantity (1–99); an empty box is sent as 0 and refused there.
  const commit = (event?: FormEvent) => {
    event?.preventDefault();
    const qty = Number(draft.trim() === "" ? 0 : draft);
    if (qty !== line.qty) void run(() => setQty({ sku: line.sku, qty }));
  };
  return (
    <li className="cart-line" data-sku={line.sku}>
      <Tile name={line.name} hue={line.hue} size="small" />
      <div className="line-main">
        <span className="name">{line.name}</span>
        <span className="muted small">{formatCents(line.priceCents)} each</span>
      </div>
      <span className="line-total">{formatCents(line.lineCents)}</span>
      <div className="line-controls">
        <form className="qty" onSubmit={commit}>
          <button type="button" aria-label={`One fewer ${line.name}`} disabled={line.qty <= 1} onClick={() => void run(() => setQty({ sku: line.sku, qty: line.qty - 1 }))}>
            −
          </button>
          <input
            type="number"
            inputMode="numeric"
            aria-label={`Quantity of ${line.name}`}
            aria-invalid={error !== null}
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onBlur={() => commit()}
            onKeyDown={(e) => {
              // Escape puts the cart's quantity back and clears the error.
              if (e.key === "Escape") {
                setDraft(String(line.qty));
                setError(null);
              }
            }}
          />
          <button type="button" aria-label={`One more ${line.name}`} onClick={() => void run(() => setQty({ sku: line.sku, qty: line.qty + 1 }))}>
            +
          </button>
        </form>
        <button type="button" className="link remove" aria-label={`Remove ${line.name}`} onClick={() => void run(() => remove({ sku: line.sku }))}>
          Remove
        </button>
      </div>
      {error && (
        <span role="alert" className="field-error line-error">
          {error}
        </span>
      )}
    </li>
  );
}
