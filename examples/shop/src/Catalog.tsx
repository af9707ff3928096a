import { useState } from "react";
import { useMutation } from "walkin/react";
import { api } from "../functions/_generated/api.js";
import type { Product } from "../functions/lib/catalog.js";
import { formatCents, messageOf } from "./format";
import { Tile } from "./Tile";

export function Catalog({ products, ready }: { products: readonly Product[] | undefined; ready: boolean }) {
  return (
    <section aria-labelledby="catalog-title">
      <h2 id="catalog-title">Products</h2>
      {products === undefined ? (
        <p className="muted">Loading the catalog…</p>
      ) : (
        <ul className="products">
          {products.map((product) => (
            <ProductCard key={product.sku} product={product} ready={ready} />
          ))}
        </ul>
      )}
    </section>
  );
}

function ProductCard({ product, ready }: { product: Product; ready: boolean }) {
  const add = useMutation(api.cart.add);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const onAdd = async () => {
    setError(null);
    setBusy(true);
    try {
      await add({ sku: product.sku, qty: 1 });
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <li className="product" data-sku={product.sku}>
      <Tile name={product.name} hue={product.hue} size="large" />
      <h3>{product.name}</h3>
      <p className="muted">{product.blurb}</p>
      <div className="buy">
        <span className="price">{formatCents(product.priceCents)}</span>
        <button type="button" onClick={onAdd} disabled={!ready || busy} aria-label={`Add ${product.name} to cart`}>
          Add to cart
        </button>
      </div>
      {error && (
        <p role="alert" className="field-error">
          {error}
        </p>
      )}
    </li>
  );
}
