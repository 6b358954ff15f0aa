// Language switcher: point each language link in the header at the same page in that
// language. The Chinese site is at the root and the English one under en/, with the same
// page paths (tests/test_site.py checks both languages have the same pages).
//
// This runs on every page change, because Material's instant navigation swaps the content
// but not the header; the head's <link rel="alternate" hreflang> elements give the roots.
document$.subscribe(function () {
  var roots = {};
  document.querySelectorAll('head link[rel="alternate"][hreflang]').forEach(function (link) {
    roots[link.getAttribute("hreflang")] = link.href;
  });
  var here = location.href.split("#")[0].split("?")[0];
  var current = null;
  Object.keys(roots).forEach(function (lang) {
    var root = roots[lang];
    if (here.indexOf(root) === 0 && (current === null || root.length > roots[current].length)) {
      current = lang;
    }
  });
  if (current === null) {
    return;
  }
  var page = here.slice(roots[current].length);
  document.querySelectorAll(".md-select__link[hreflang]").forEach(function (link) {
    var root = roots[link.getAttribute("hreflang")];
    if (root) {
      link.href = root + page;
    }
  });
});

// Follow that link as it is. Material's own handler would look the page up in the other
// language's sitemap.xml, but matches URLs without their port (so never on a local
// server) and then falls back to the language's home page.
document.addEventListener(
  "click",
  function (event) {
    if (event.target instanceof Element && event.target.closest(".md-select__link[hreflang]")) {
      event.stopPropagation();
    }
  },
  true
);
