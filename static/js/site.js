// Progressive enhancement only: every feature here also works without JavaScript.
"use strict";

// "Load more": fetch the next page's cards and append them in place.
document.addEventListener("click", async (event) => {
  const link = event.target.closest("a[data-load-more]");
  if (!link) return;
  event.preventDefault();
  if (link.getAttribute("aria-busy") === "true") return;
  link.setAttribute("aria-busy", "true");
  const url = new URL(link.href, window.location.href);
  url.searchParams.set("fragment", "1");
  try {
    const response = await fetch(url, { headers: { Accept: "text/html" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const fragment = document.createElement("template");
    fragment.innerHTML = await response.text();
    const list = document.querySelector("[data-post-list]");
    const newCards = fragment.content.querySelectorAll("[data-post-list] > article");
    list.append(...newCards);
    const oldPager = link.closest("[data-pager]");
    const newPager = fragment.content.querySelector("[data-pager]");
    if (newPager) oldPager.replaceWith(newPager);
    else oldPager.remove();
    if (newCards.length) newCards[0].querySelector("a")?.focus({ preventScroll: true });
  } catch {
    // Fall back to an ordinary page load.
    window.location.href = link.href;
  }
});

// Ask before destructive actions.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
