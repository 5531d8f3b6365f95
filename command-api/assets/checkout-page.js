// The checkout page: reads the order named by the URL (/checkout/<order id>?key=<key>) and
// pays it with the signed-in buyer's wallet or with a card. Everything goes to this page's
// own origin.
(function () {
  "use strict";
  const orderId = location.pathname.split("/").filter(Boolean)[1] || "";
  const key = new URLSearchParams(location.search).get("key") || "";
  const api = "/v1/checkout/orders/" + encodeURIComponent(orderId);
  const q = "?key=" + encodeURIComponent(key);
  const $ = (id) => document.getElementById(id);
  let order = null;
  let token = sessionStorage.getItem("etr.checkout.token") || "";
  let pending = null; // a wallet payment waiting for its SMS code

  function say(text, error) {
    $("message").textContent = text;
    $("message").className = error ? "error" : "";
  }

  function idempotencyKey() {
    return (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
  }

  async function call(method, url, body, bearer) {
    const headers = { "content-type": "application/json" };
    if (method === "POST") headers["idempotency-key"] = idempotencyKey();
    if (bearer) headers.authorization = "Bearer " + bearer;
    const r = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined });
    let json = null;
    try { json = await r.json(); } catch (_) { json = null; }
    return { status: r.status, json };
  }

  function problem(res) {
    const j = res.json || {};
    const e = j.error || j;
    return (e.message || "ошибка") + (e.code ? " (" + e.code + ")" : "");
  }

  function clientOf(bearer) {
    try {
      const part = bearer.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part)).sub || "";
    } catch (_) { return ""; }
  }

  function show(o) {
    order = o;
    $("order").hidden = false;
    $("merchant").textContent = o.merchant;
    $("number").textContent = o.number;
    $("description").textContent = o.description || "—";
    $("amount").textContent = o.amount + " " + o.currency;
    const statuses = { awaiting_payment: "ожидает оплаты", paid: "оплачен", notified: "оплачен" };
    $("status").textContent = o.expired ? "срок оплаты истёк" : (statuses[o.status] || o.status);
    $("return").hidden = false;
    if (o.payment) {
      $("pay").hidden = true;
      $("done").hidden = false;
      $("paid-with").textContent = o.payment.source === "card"
        ? "Картой " + (o.payment.masked_pan || "")
        : "Из кошелька";
      $("receipt").href = o.receipt_url;
      say("Заказ оплачен.");
    } else if (o.expired) {
      $("pay").hidden = true;
      say("Срок оплаты заказа истёк.", true);
    } else {
      $("pay").hidden = false;
      say("Выберите способ оплаты.");
    }
  }

  async function load() {
    const res = await call("GET", api + q);
    if (res.status !== 200) { say(problem(res), true); return; }
    show(res.json);
  }

  async function waitPaid() {
    for (let i = 0; i < 100; i++) {
      const res = await call("GET", api + q);
      if (res.status === 200 && res.json.payment) { show(res.json); return; }
      await new Promise((ok) => setTimeout(ok, 200));
    }
    say("Оплата ещё обрабатывается; обновите страницу позже.");
  }

  async function signIn() {
    token = $("token").value.trim();
    const res = await call("GET", api + "/wallets" + q, null, token);
    if (res.status !== 200) { say(problem(res), true); return; }
    sessionStorage.setItem("etr.checkout.token", token);
    const box = $("wallets");
    box.querySelectorAll("label").forEach((l) => l.remove());
    res.json.forEach((w, i) => {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "wallet";
      input.value = w.wallet_id;
      input.checked = i === 0;
      label.append(input, " " + w.wallet_id.slice(0, 8) + "… — доступно " + w.available + " " + w.currency);
      box.append(label);
    });
    box.hidden = false;
    $("pay-wallet").disabled = res.json.length === 0;
    say(res.json.length ? "Выберите кошелёк." : "Нет открытого кошелька в валюте заказа.", !res.json.length);
  }

  async function payWithWallet(event) {
    event.preventDefault();
    const chosen = document.querySelector("input[name=wallet]:checked");
    if (!chosen) { say("Выберите кошелёк.", true); return; }
    say("Оплата…");
    const res = await call("POST", api + "/wallet-payment" + q + "&wait=10", { wallet_id: chosen.value }, token);
    if (res.status >= 400) { say(problem(res), true); return; }
    if (res.json && res.json.confirmation && res.json.confirmation.required) {
      pending = { wallet: chosen.value, payment: res.json.payment_id };
      $("otp").hidden = false;
      say("Введите код из SMS.");
      return;
    }
    await waitPaid();
  }

  async function confirm() {
    if (!pending) return;
    const url = "/v1/clients/" + clientOf(token) + "/wallets/" + pending.wallet + "/payments/" + pending.payment + "/confirmation?wait=10";
    const res = await call("POST", url, { code: $("otp-code").value.trim() }, token);
    if (res.status >= 400) { say(problem(res), true); return; }
    $("otp").hidden = true;
    pending = null;
    await waitPaid();
  }

  async function payWithCard(event) {
    event.preventDefault();
    say("Оплата картой…");
    const res = await call("POST", api + "/card-payment" + q, {
      number: $("card-number").value.trim(),
      expiry: $("card-expiry").value.trim(),
      cvc: $("card-cvc").value.trim(),
    });
    if (res.status >= 400) { say(problem(res), true); return; }
    await waitPaid();
  }

  // Back to the shop: a navigation the buyer chooses, not a link the page loads.
  $("return").addEventListener("click", () => { if (order) location.assign(order.return_url); });
  $("token").value = token;
  $("sign-in").addEventListener("click", signIn);
  $("wallet-form").addEventListener("submit", payWithWallet);
  $("confirm").addEventListener("click", confirm);
  $("card-form").addEventListener("submit", payWithCard);
  load();
})();
