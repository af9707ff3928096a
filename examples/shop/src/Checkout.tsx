import { useState, type FormEvent } from "react";
import { useSessionMutation } from "walkin/sessions/react";
import type { FunctionReturnType } from "walkin/server";
import { api } from "../functions/_generated/api.js";
import { ADDRESS_FIELDS } from "../functions/lib/address.js";
import type { DeliveryOption } from "../functions/lib/catalog.js";
import type { Address, Delivery } from "../functions/lib/validators.js";
import type { CartData } from "./Cart";
import { fieldErrorsOf, formatCents, messageOf } from "./format";
import { CheckIcon } from "./Tile";

type CheckoutData = NonNullable<FunctionReturnType<typeof api.checkout.current>>;

const STEPS = [
  { id: "address", label: "Shipping address" },
  { id: "delivery", label: "Delivery" },
  { id: "review", label: "Review" },
] as const;

/** This tab's checkout, stored on the server under the tab's session ID. */
export function Checkout({ checkout, cart, delivery }: { checkout: CheckoutData; cart: CartData | null; delivery: readonly DeliveryOption[] }) {
  const close = useSessionMutation(api.checkout.close);
  if (checkout.step === "placed") {
    return (
      <section className="card placed" aria-labelledby="placed-title">
        <CheckIcon />
        <h2 id="placed-title">Thank you! Your order is placed.</h2>
        {checkout.order && (
          <p>
            Order <strong data-testid="order-number">#{checkout.order.number}</strong>: {checkout.order.itemCount} items,{" "}
            {formatCents(checkout.order.totalCents)}.
          </p>
        )}
        <button type="button" className="primary" onClick={() => void close()}>
          Continue shopping
        </button>
      </section>
    );
  }
  const current = STEPS.findIndex((s) => s.id === checkout.step);
  return (
    <section className="card checkout" aria-labelledby="checkout-title">
      <div className="checkout-head">
        <h2 id="checkout-title">Checkout</h2>
        <button type="button" className="link" onClick={() => void close()}>
          Cancel
        </button>
      </div>
      <p className="muted small">Progress is kept per tab: open another tab to run a second checkout.</p>
      <ol className="steps">
        {STEPS.map((step, i) => (
          <li key={step.id} className={i < current ? "done" : i === current ? "current" : ""} aria-current={i === current ? "step" : undefined}>
            <span className="dot">{i < current ? "✓" : i + 1}</span> {step.label}
          </li>
        ))}
      </ol>
      {checkout.step === "address" && <AddressStep initial={checkout.address} />}
      {checkout.step === "delivery" && <DeliveryStep address={checkout.address!} initial={checkout.delivery} options={delivery} />}
      {checkout.step === "review" && <ReviewStep checkout={checkout} cart={cart} options={delivery} />}
    </section>
  );
}

const EMPTY: Address = { name: "", street: "", city: "", postcode: "" };

function AddressStep({ initial }: { initial: Address | null }) {
  const save = useSessionMutation(api.checkout.saveAddress);
  const [address, setAddress] = useState<Address>(initial ?? EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  async function submit(event: FormEvent) {
    event.preventDefault();
    setErrors({});
    setError(null);
    try {
      await save({ address });
    } catch (e) {
      setErrors(fieldErrorsOf(e));
      setError(messageOf(e));
    }
  }
  // No `required`/`maxLength` here on purpose: the server is the one that checks.
  return (
    <form className="step-form" onSubmit={submit} noValidate aria-label="Shipping address">
      {(Object.keys(ADDRESS_FIELDS) as (keyof Address)[]).map((key) => (
        <label key={key} className={errors[key] ? "invalid" : ""}>
          {ADDRESS_FIELDS[key].label}
          <input
            name={key}
            value={address[key]}
            aria-invalid={errors[key] !== undefined}
            aria-describedby={errors[key] ? `${key}-error` : undefined}
            autoComplete={{ name: "name", street: "street-address", city: "address-level2", postcode: "postal-code" }[key]}
            onChange={(e) => setAddress({ ...address, [key]: e.target.value })}
          />
          {errors[key] && (
            <span id={`${key}-error`} className="field-error">
              {errors[key]}
            </span>
          )}
        </label>
      ))}
      {error && (
        <p role="alert" className="form-error">
          {error}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary">
          Continue to delivery
        </button>
      </div>
    </form>
  );
}

function AddressSummary({ address }: { address: Address }) {
  // Plain text nodes: whatever a visitor typed is shown as text, never as HTML.
  return (
    <address className="summary" data-testid="address-summary">
      {address.name}
      <br />
      {address.street}
      <br />
      {address.postcode} {address.city}
    </address>
  );
}

function DeliveryStep({ address, initial, options }: { address: Address; initial: Delivery | null; options: readonly DeliveryOption[] }) {
  const choose = useSessionMutation(api.checkout.chooseDelivery);
  const back = useSessionMutation(api.checkout.back);
  const [delivery, setDelivery] = useState<Delivery>(initial ?? "standard");
  const [error, setError] = useState<string | null>(null);
  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      await choose({ delivery });
    } catch (e) {
      setError(messageOf(e));
    }
  }
  return (
    <form className="step-form" onSubmit={submit} aria-label="Delivery">
      <div className="ship-to">
        <span className="muted small">Ship to</span>
        <AddressSummary address={address} />
        <button type="button" className="link" onClick={() => void back({ step: "address" })}>
          Edit address
        </button>
      </div>
      <fieldset className="options">
        <legend>Delivery option</legend>
        {options.map((option) => (
          <label key={option.id} className={`option ${delivery === option.id ? "chosen" : ""}`}>
            <input type="radio" name="delivery" value={option.id} checked={delivery === option.id} onChange={() => setDelivery(option.id)} />
            <span className="option-label">
              <strong>{option.label}</strong>
              <span className="muted small">{option.detail}</span>
            </span>
            <span className="price">{option.priceCents === 0 ? "Free" : formatCents(option.priceCents)}</span>
          </label>
        ))}
      </fieldset>
      {error && (
        <p role="alert" className="form-error">
          {error}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary">
          Continue to review
        </button>
      </div>
    </form>
  );
}

function ReviewStep({ checkout, cart, options }: { checkout: CheckoutData; cart: CartData | null; options: readonly DeliveryOption[] }) {
  const place = useSessionMutation(api.checkout.placeOrder);
  const back = useSessionMutation(api.checkout.back);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const option = options.find((o) => o.id === checkout.delivery);
  const subtotal = cart?.subtotalCents ?? 0;
  const shipping = option?.priceCents ?? 0;
  async function onPlace() {
    setError(null);
    setBusy(true);
    try {
      await place();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className="review">
      <div className="review-grid">
        <div>
          <h3>Ship to</h3>
          <AddressSummary address={checkout.address!} />
          <button type="button" className="link" onClick={() => void back({ step: "address" })}>
            Edit
          </button>
        </div>
        <div>
          <h3>Delivery</h3>
          <p data-testid="delivery-summary">
            {option?.label} <span className="muted small">({option?.detail})</span>
          </p>
          <button type="button" className="link" onClick={() => void back({ step: "delivery" })}>
            Change
          </button>
        </div>
      </div>
      <h3>Items</h3>
      {cart && cart.lines.length > 0 ? (
        <ul className="review-lines">
          {cart.lines.map((line) => (
            <li key={line.sku}>
              <span>
                {line.qty} × {line.name}
              </span>
              <span>{formatCents(line.lineCents)}</span>
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">Your cart is empty.</p>
      )}
      <dl className="totals">
        <dt>Subtotal</dt>
        <dd>{formatCents(subtotal)}</dd>
        <dt>Delivery</dt>
        <dd>{shipping === 0 ? "Free" : formatCents(shipping)}</dd>
        <dt className="total">Total</dt>
        <dd className="total" data-testid="order-total">
          {formatCents(subtotal + shipping)}
        </dd>
      </dl>
      {error && (
        <p role="alert" className="form-error">
          {error}
        </p>
      )}
      <div className="actions">
        <button type="button" className="primary" onClick={onPlace} disabled={busy}>
          {busy ? "Placing…" : "Place order"}
        </button>
      </div>
    </div>
  );
}
