/* The cart of a client's gallery (billing/templates/billing/gallery/_cart.html): the count and total of the portraits
   ticked for buying (or of the package chosen), kept up to date as the client ticks. The price per portrait (minor
   units) and the currency come from the form's data-price and data-currency attributes; the words, in the page's
   language, from its data-one and data-many ("{n} portrait(s)", picked with the language's plural rules). Amounts
   read the locale's own way, as the server writes them (studio_tags.money): "€12.50" in English, "12,50 €" in
   French, "¥88.00" in Chinese. */
(() => {
  const form = document.getElementById("buy-form");
  if (!form) return;
  const unit = Number(form.dataset.price), cur = form.dataset.currency;
  const lang = document.documentElement.lang || "en";
  const plural = new Intl.PluralRules(lang);
  const words = (n) => (plural.select(n) === "one" ? form.dataset.one : form.dataset.many).replace("{n}", String(n));
  const money = (amount) => new Intl.NumberFormat(lang, { style: "currency", currency: cur }).format(amount);
  const boxes = () => document.querySelectorAll('input[form="buy-form"][name="portrait"]');
  const pkg = form.querySelector("[data-cart-package]");
  const update = () => {
    const n = [...boxes()].filter((b) => b.checked).length;
    const opt = pkg && pkg.selectedOptions[0];
    const all = opt && opt.value && opt.dataset.count === "0";
    const count = all ? boxes().length : n;
    const total = opt && opt.value ? Number(opt.dataset.price) : (n * unit) / 100;
    form.querySelector("[data-cart-count]").textContent = words(count);
    form.querySelector("[data-cart-total]").textContent = money(total);
  };
  // A coupon code: what it takes off the cart, asked of the server (which checks it again at checkout).
  const coupon = form.querySelector("[data-cart-coupon]"), note = form.querySelector("[data-cart-coupon-note]");
  const check = () => {
    if (!coupon || !note) return;
    const code = coupon.value.trim();
    if (!code) { note.textContent = ""; return; }
    const params = new URLSearchParams({ code, count: String([...boxes()].filter((b) => b.checked).length) });
    if (pkg && pkg.value) params.set("package", pkg.value);
    fetch(`${coupon.dataset.checkUrl}?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => r.json()).then((data) => { note.textContent = data.message || ""; }).catch(() => { note.textContent = ""; });
  };
  document.addEventListener("change", (e) => {
    if (e.target.matches('input[form="buy-form"], [data-cart-package]')) { update(); check(); }
    else if (e.target.matches("[data-cart-coupon]")) check();
  });
  update();
})();
