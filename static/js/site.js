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

// Preview of a chosen picture, before it is uploaded.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || !input.dataset.preview) return;
  const preview = document.getElementById(input.dataset.preview);
  if (!preview) return;
  if (preview.src) URL.revokeObjectURL(preview.src);
  const file = input.files && input.files[0];
  if (file && file.type.startsWith("image/")) {
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
  } else {
    preview.removeAttribute("src");
    preview.hidden = true;
  }
});

// Upload progress: send forms with a chosen file by XMLHttpRequest, which
// reports how much has been sent, then show whatever page the server answers.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented || !form.matches("form[data-upload]")) return;
  // A preview shows the form again: nothing to upload, an ordinary submit.
  if (event.submitter && event.submitter.name === "preview") return;
  const hasFile = [...form.querySelectorAll("input[type=file]")].some((i) => i.files.length);
  if (!hasFile) return;
  event.preventDefault();
  const progress = form.querySelector(".upload-progress");
  const button = event.submitter || form.querySelector("button[type=submit]");
  const request = new XMLHttpRequest();
  request.open("POST", form.action);
  request.upload.addEventListener("progress", (e) => {
    if (!progress || !e.lengthComputable) return;
    progress.hidden = false;
    progress.value = Math.round((e.loaded / e.total) * 100);
  });
  request.addEventListener("load", () => {
    // Show the page the server answered with: after a redirect (post/redirect/get)
    // the page it led to, with its flash message; else the form with its messages.
    // The request has already fetched it, so it is shown rather than loaded again.
    const page = new DOMParser().parseFromString(request.responseText, "text/html");
    if (request.responseURL && request.responseURL !== window.location.href) {
      window.history.replaceState(null, "", request.responseURL);
    }
    document.title = page.title;
    document.body.replaceWith(page.body);
    window.scrollTo(0, 0);
  });
  request.addEventListener("error", () => form.submit());
  if (button) button.setAttribute("aria-busy", "true");
  request.send(new FormData(form, event.submitter));
});
