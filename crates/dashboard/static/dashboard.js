// Progressive enhancement only: every page works without this file.
// Inputs with data-availability="<url prefix>" show whether a name is free as you type
// (the server checks again on submit).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-availability]")) {
    const out = document.getElementById(input.dataset.availabilityTarget);
    if (!out) continue;
    let timer = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      const name = input.value.trim();
      if (!name) { out.textContent = ""; out.className = "availability"; return; }
      timer = setTimeout(async () => {
        try {
          const res = await fetch(input.dataset.availability + encodeURIComponent(name),
            { headers: { "Accept": "application/json" } });
          const body = await res.json();
          if (input.value.trim() !== name) return;
          out.textContent = body.available ? "'" + name + "' is available" : (body.error || "'" + name + "' is taken");
          out.className = "availability " + (body.available ? "ok" : "taken");
        } catch (_) { out.textContent = ""; }
      }, 250);
    });
  }
});
