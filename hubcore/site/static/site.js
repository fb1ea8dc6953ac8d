// hubcore catalog: tag, framework and text filters on the index; copy buttons on code.
// Works from file:// (no fetch): the search text comes from search-index.js.
(function () {
  "use strict";
  var cards = document.getElementById("cards");
  if (cards) {
    var items = Array.prototype.slice.call(cards.querySelectorAll(".card"));
    var search = document.getElementById("search");
    var framework = document.getElementById("framework");
    var buttons = Array.prototype.slice.call(document.querySelectorAll(".tag-filter"));
    var count = document.getElementById("count");
    var empty = document.getElementById("empty");
    var texts = window.HUBCORE_SEARCH || {};
    var apply = function () {
      var words = (search ? search.value : "").toLowerCase().split(/\s+/).filter(Boolean);
      var fw = framework ? framework.value : "";
      var tags = buttons.filter(function (b) { return b.getAttribute("aria-pressed") === "true"; })
        .map(function (b) { return b.getAttribute("data-tag"); });
      var shown = 0;
      items.forEach(function (item) {
        var own = JSON.parse(item.getAttribute("data-tags") || "[]");  // tags may hold spaces
        var text = texts[item.getAttribute("data-slug")] || item.textContent.toLowerCase();
        var ok = (!fw || item.getAttribute("data-framework") === fw) &&
          tags.every(function (t) { return own.indexOf(t) >= 0; }) &&
          words.every(function (w) { return text.indexOf(w) >= 0; });
        item.hidden = !ok;
        if (ok) { shown += 1; }
      });
      if (count) { count.textContent = shown + (shown === 1 ? " model" : " models"); }
      if (empty) { empty.hidden = shown !== 0; }
    };
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        var pressed = button.getAttribute("aria-pressed") === "true";
        button.setAttribute("aria-pressed", pressed ? "false" : "true");
        apply();
      });
    });
    if (search) { search.addEventListener("input", apply); }
    if (framework) { framework.addEventListener("change", apply); }
    var params = new URLSearchParams(window.location.search);
    if (search && params.get("q")) { search.value = params.get("q"); }
    apply();
  }

  var copyText = function (text, done) {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { done(false); });
      return;
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    done(ok);
  };
  Array.prototype.forEach.call(document.querySelectorAll("pre.highlight"), function (pre) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy code to clipboard");
    button.addEventListener("click", function () {
      var code = pre.querySelector("code");
      copyText((code || pre).textContent, function (ok) {
        button.textContent = ok === false ? "Select and copy" : "Copied";
        window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
      });
    });
    pre.appendChild(button);
  });
})();
