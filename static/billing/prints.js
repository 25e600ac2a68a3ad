/* The print page (billing/templates/billing/gallery/print.html): the crop's frame follows the zoom and position
   controls, with the same geometry as the server (engine/prints.py crop_for: at zoom 1 the largest box of the
   print's ratio inside the portrait, smaller by the zoom, placed across the room left), and the sharpness and the
   total follow too. The values posted are the controls': the server computes the crop again and checks it. */
(() => {
  const form = document.getElementById("print-form");
  if (!form) return;
  const d = form.dataset;
  const W = Number(d.width), H = Number(d.height), ratio = Number(d.ratio);
  const VW = Number(d.viewWidth), VH = Number(d.viewHeight), imageMm = Number(d.imageMm);
  const price = Number(d.price), shipping = Number(d.shipping), cur = d.currency;
  const lang = document.documentElement.lang || "en";
  const money = (amount) => new Intl.NumberFormat(lang, { style: "currency", currency: cur }).format(amount);
  const shade = form.querySelector("[data-crop-shade]"), box = form.querySelector("[data-crop-box]");
  const dpi = form.querySelector("[data-print-dpi]");
  const value = (name) => Number(form.elements[name].value);
  const update = () => {
    const zoom = Math.max(1, value("zoom")), x = value("x"), y = value("y");
    let bw = W, bh = W / ratio;
    if (W / H > ratio) { bw = H * ratio; bh = H; }
    bw /= zoom; bh /= zoom;
    const left = ((W - bw) * x) / W, top = ((H - bh) * y) / H;
    const r = [left * VW, top * VH, (bw / W) * VW, (bh / H) * VH].map((v) => v.toFixed(2));
    box.setAttribute("x", r[0]); box.setAttribute("y", r[1]);
    box.setAttribute("width", r[2]); box.setAttribute("height", r[3]);
    shade.setAttribute("d", `M0 0H${VW}V${VH}H0Z M${r[0]} ${r[1]}h${r[2]}v${r[3]}h-${r[2]}Z`);
    dpi.textContent = dpi.dataset.template.replace("{dpi}", String(Math.round(bw / (imageMm / 25.4))));
    const n = Math.max(1, Math.round(value("quantity")) || 1);
    form.querySelector("[data-print-subtotal]").textContent = `${money(price)} × ${n}`;
    form.querySelector("[data-print-total]").textContent = money(price * n + shipping);
  };
  // A coupon code: what it takes off this print, asked of the server (which checks it again at checkout).
  const coupon = form.querySelector("[data-print-coupon]"), note = form.querySelector("[data-print-coupon-note]");
  const check = () => {
    const code = coupon.value.trim();
    if (!code) { note.textContent = ""; return; }
    const params = new URLSearchParams({ code, product: form.elements.product.value, quantity: form.elements.quantity.value });
    fetch(`${coupon.dataset.checkUrl}?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => r.json()).then((data) => { note.textContent = data.message || ""; }).catch(() => { note.textContent = ""; });
  };
  form.addEventListener("input", update);
  form.addEventListener("change", (e) => { if (e.target === coupon || e.target.name === "quantity") check(); });
  update();
})();
