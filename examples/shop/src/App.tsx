import { useEffect, useState } from "react";
import { useConnectionState, useQuery } from "walkin/react";
import { useAuth, useAuthActions } from "walkin/auth/react";
import { useSessionQuery } from "walkin/sessions/react";
import { api } from "../functions/_generated/api.js";
import { Account } from "./Account";
import { Cart } from "./Cart";
import { Catalog } from "./Catalog";
import { Checkout } from "./Checkout";
import { messageOf } from "./format";
import { Logo } from "./Tile";

export function App() {
  const { isLoading, isAuthenticated } = useAuth();
  const { signIn } = useAuthActions();
  const connection = useConnectionState();
  const catalog = useQuery(api.products.list);
  const cart = useQuery(api.cart.get);
  const checkout = useSessionQuery(api.checkout.current);
  const [error, setError] = useState<string | null>(null);

  // Every visitor is a (guest) user from the first visit: no sign-up wall. Once per browser:
  // the token is in localStorage, so other tabs are signed in already.
  useEffect(() => {
    if (!isLoading && !isAuthenticated) signIn("anonymous").catch((e: unknown) => setError(messageOf(e)));
  }, [isLoading, isAuthenticated, signIn]);

  return (
    <div className="shop">
      <header className="topbar">
        <h1>
          <Logo /> Walk-in shop
        </h1>
        <span className={`status ${connection.isWebSocketConnected ? "online" : "offline"}`}>
          {connection.isWebSocketConnected ? "live" : "reconnecting…"}
        </span>
      </header>
      {error && (
        <p role="alert" className="banner error">
          {error}
        </p>
      )}
      <div className="layout">
        <main>
          {checkout ? (
            <Checkout checkout={checkout} cart={cart ?? null} delivery={catalog?.delivery ?? []} />
          ) : (
            <Catalog products={catalog?.products} ready={cart !== undefined && cart !== null} />
          )}
        </main>
        <aside>
          <Account hasCart={(cart?.count ?? 0) > 0} />
          <Cart cart={cart} inCheckout={checkout !== undefined && checkout !== null && checkout.step !== "placed"} />
        </aside>
      </div>
    </div>
  );
}
