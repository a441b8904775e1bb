// The dashboard's only script (served from our origin; the CSP allows no
// other). Everything works without it except copying and the live wait for
// a payment: copy buttons, confirmation before revoking, and polling the
// top-up status until the webhook has credited the account.
"use strict";

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const text = document.getElementById(button.dataset.copy)?.textContent ?? "";
  const status = button.parentElement.querySelector(".copied");
  try {
    await navigator.clipboard.writeText(text);
    if (status) status.textContent = "Copied.";
  } catch {
    if (status) status.textContent = "Copy failed: select the key and copy it by hand.";
  }
});

document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

const pending = document.getElementById("topup-pending");
if (pending) {
  const session = pending.dataset.session;
  let tries = 0;
  const poll = async () => {
    tries += 1;
    try {
      const res = await fetch(`/dashboard/settings/billing/status?session_id=${encodeURIComponent(session)}`, { credentials: "same-origin" });
      const body = await res.json();
      if (body.status !== "pending") {
        window.location.reload();
        return;
      }
    } catch {
      // Keep waiting; the Refresh link is there too.
    }
    if (tries < 120) {
      setTimeout(poll, 1000);
    } else {
      pending.querySelector("p").textContent = "This is taking longer than usual. Refresh in a minute; your payment is safe.";
    }
  };
  setTimeout(poll, 1000);
}
